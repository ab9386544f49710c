"""``python -m quality.bench``: speed and noise accuracy of :mod:`quality`, beside scikit-image.

Prints

* the single-core CPU time of :func:`quality.measure` on a 640x480 BGR image (median of many runs,
  ``cv2.setNumThreads(1)``), and on a 1920x1080 frame (includes the area resize to 640 px);
* the mean absolute relative error of ``noise_sigma`` per added noise level (σ = 5, 10, 20, 30)
  on natural photographs, against the added σ as ground truth;
* the same two figures for ``skimage.restoration.estimate_sigma`` when installed (its time on a
  512x512 image), and the error of Immerkaer's (1996) plain fast estimator for reference;
* images/s of :func:`quality.measure_batch` at batch 64 where CUDA is present.

**Noise protocol.** Each photograph is converted to luma at analysis scale (what ``measure`` sees;
all are at most 640 px after this), then Gaussian noise of std σ is added and the result rounded
and clipped to uint8, as a camera's ADC would (:func:`quality.simulate.gaussian_noise`; seed =
photo index). Ground truth is the added σ. Clipping cuts the noise in black or white regions and
the photographs carry some noise of their own; both are left in, as they would be in real frames.
The same noisy images go to every estimator. Photographs: scikit-image's camera, astronaut, coffee,
chelsea, rocket, immunohistochemistry, coins, moon, and Ultralytics' bus.jpg and zidane.jpg. Three
texture images (grass, gravel, brick; not scenes, outside the target) are reported separately.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import cv2
import numpy as np

from quality.luma import analysis_luma
from quality.measure import measure
from quality.noise import noise_sigma
from quality.simulate import gaussian_noise

SIGMAS = (5, 10, 20, 30)
SKIMAGE_PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "coins", "moon")
ULTRALYTICS_PHOTOS = ("bus.jpg", "zidane.jpg")
TEXTURES = ("grass", "gravel", "brick")

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def photographs(names: tuple[str, ...] = SKIMAGE_PHOTOS + ULTRALYTICS_PHOTOS) -> dict[str, np.ndarray]:
    """Photographs by name (scikit-image ``data`` names or Ultralytics asset file names), as uint8
    luma at analysis scale (longer side <= 640)."""
    return {name: analysis_luma(load_bgr(name)) for name in names}


def load_bgr(name: str) -> np.ndarray:
    """A bundled photograph as uint8 BGR (or gray): an Ultralytics asset if ``name`` ends in .jpg,
    else ``skimage.data.<name>()``."""
    if name.endswith(".jpg"):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics.utils import ASSETS

        image = cv2.imread(os.fspath(ASSETS / name))
        if image is None:
            raise FileNotFoundError(ASSETS / name)
        return image
    import skimage.data

    image = getattr(skimage.data, name)()
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image


def noisy_versions(photos: dict[str, np.ndarray], sigma: float) -> list[np.ndarray]:
    """Each photo plus Gaussian noise ``sigma``, rounded and clipped to uint8 (seed = photo index)."""
    return [gaussian_noise(luma, sigma, rng=seed) for seed, luma in enumerate(photos.values())]


def noise_errors(estimator: Callable[[np.ndarray], float], photos: dict[str, np.ndarray]) -> dict[int, float]:
    """Mean ``|estimate - σ| / σ`` over the photos, per added σ in :data:`SIGMAS`."""
    errors: dict[int, float] = {}
    for sigma in SIGMAS:
        rel = [abs(float(estimator(noisy)) - sigma) / sigma for noisy in noisy_versions(photos, sigma)]
        errors[sigma] = float(np.mean(rel))
    return errors


def immerkaer(luma: np.ndarray) -> float:
    """Immerkaer (1996) fast noise estimate: ``sqrt(π/2) / (6 (W-2)(H-2)) · Σ|M * Y|`` (reference)."""
    residual = cv2.filter2D(luma, cv2.CV_32F, _IMMERKAER)[1:-1, 1:-1]
    return math.sqrt(math.pi / 2) / 6.0 * float(np.abs(residual).mean())


def median_seconds(fn: Callable[[], object], runs: int = 2000, warmup: int = 100) -> float:
    """Median wall time of ``fn()`` over ``runs`` calls, after ``warmup`` calls."""
    return timing(fn, runs, warmup)[0]


def timing(fn: Callable[[], object], runs: int = 2000, warmup: int = 100) -> tuple[float, float]:
    """(median, 10th percentile) wall time of ``fn()`` over ``runs`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.percentile(times, 10))


def _row(errors: dict[int, float]) -> str:
    cells = "  ".join(f"σ={s:>2}: {e * 100:5.1f}%" for s, e in errors.items())
    return f"{cells}   mean {np.mean(list(errors.values())) * 100:5.1f}%"


def main() -> None:
    cv2.setNumThreads(1)
    frame = cv2.resize(load_bgr("bus.jpg"), (640, 480), interpolation=cv2.INTER_AREA)
    full_hd = cv2.resize(load_bgr("zidane.jpg"), (1920, 1080), interpolation=cv2.INTER_CUBIC)

    print("== speed (1 CPU core, cv2.setNumThreads(1), median) ==")
    ours, fast = timing(lambda: measure(frame))
    print(f"quality.measure, all seven signals, 640x480 BGR:          {ours * 1e3:6.3f} ms/image", end="")
    print(f"  (10th percentile {fast * 1e3:.3f} ms; a shared host adds noise)")
    hd = median_seconds(lambda: measure(full_hd), runs=300)
    print(f"quality.measure, 1920x1080 BGR (incl. resize to 640x360):  {hd * 1e3:6.3f} ms/image")

    photos = photographs()
    textures = photographs(TEXTURES)
    print(f"\n== noise_sigma accuracy: mean |estimate - σ| / σ over {len(photos)} photographs ==")
    print(f"photographs: {', '.join(photos)}")
    print(f"quality.noise_sigma            {_row(noise_errors(noise_sigma, photos))}")
    print(f"Immerkaer 1996 (plain)         {_row(noise_errors(immerkaer, photos))}")
    sk_estimate = _skimage_estimator()
    if sk_estimate is not None:
        print(f"skimage estimate_sigma         {_row(noise_errors(sk_estimate, photos))}")
    print(f"textures ({', '.join(textures)}; outside the target, for information):")
    print(f"  quality.noise_sigma          {_row(noise_errors(noise_sigma, textures))}")
    if sk_estimate is not None:
        print(f"  skimage estimate_sigma       {_row(noise_errors(sk_estimate, textures))}")

    square = photos["camera"]  # 512x512
    print("\n== noise estimator time, 512x512 gray, 1 core ==")
    print(f"quality.noise_sigma:     {median_seconds(lambda: noise_sigma(square), runs=500) * 1e3:7.3f} ms")
    print(f"quality.measure (all 7): {median_seconds(lambda: measure(square), runs=500) * 1e3:7.3f} ms")
    if sk_estimate is not None:
        sk = median_seconds(lambda: sk_estimate(square), runs=30, warmup=3)
        print(f"skimage estimate_sigma:  {sk * 1e3:7.3f} ms")

    print("\n== measure_batch ==")
    _bench_cuda(load_bgr("bus.jpg"))


def _skimage_estimator() -> Callable[[np.ndarray], float] | None:
    """``skimage.restoration.estimate_sigma`` (needs PyWavelets), or None with a note printed."""
    try:
        from skimage.restoration import estimate_sigma

        estimate_sigma(np.arange(256, dtype=np.uint8).reshape(16, 16))
    except ImportError as exc:
        print(f"skimage estimate_sigma: not available ({exc})")
        return None
    return lambda luma: float(estimate_sigma(luma))


def _bench_cuda(bus: np.ndarray) -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: measure_batch not measured")
        return
    if not torch.cuda.is_available():
        print("CUDA not available: measure_batch throughput not measured")
        return
    from quality.torch_batch import measure_batch, measure_batch_tensor

    for label, image in (("1080x810 BGR (resized to 640x480)", bus), ("640x480 BGR", cv2.resize(bus, (640, 480)))):
        batch = torch.from_numpy(np.stack([image] * 64)).cuda()
        for fn, name in ((measure_batch_tensor, "measure_batch_tensor"), (measure_batch, "measure_batch")):
            for _ in range(3):
                fn(batch)
            torch.cuda.synchronize()
            runs = 20
            start = time.perf_counter()
            for _ in range(runs):
                fn(batch)
            torch.cuda.synchronize()
            rate = runs * 64 / (time.perf_counter() - start)
            print(f"{name} on {torch.cuda.get_device_name()}, batch 64 of {label}: {rate:8.0f} images/s")


if __name__ == "__main__":
    main()
