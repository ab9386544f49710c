"""``python -m quality.bench``: speed and noise accuracy of :mod:`quality`, beside scikit-image.

Prints the single-core CPU time of ``measure`` on a 640x480 BGR image, the mean absolute relative
error of ``noise_sigma`` on natural photographs with added Gaussian noise (sigma 5, 10, 20, 30),
the same two figures for ``skimage.restoration.estimate_sigma`` when installed, and images/s of
``measure_batch`` at batch 64 on CUDA when present.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import cv2
import numpy as np

from quality.luma import to_luma
from quality.measure import measure
from quality.noise import noise_sigma
from quality.simulate import gaussian_noise

SIGMAS = (5, 10, 20, 30)
SKIMAGE_PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "coins", "moon")


def photographs() -> dict[str, np.ndarray]:
    """Natural photographs shipped by scikit-image and Ultralytics, as uint8 luma at analysis size."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import skimage.data
    from ultralytics.utils import ASSETS

    photos: dict[str, np.ndarray] = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        photos[name] = to_luma(cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image)
    for name in ("bus.jpg", "zidane.jpg"):
        photos[name] = to_luma(_read(ASSETS / name))
    return photos


def _read(path: os.PathLike[str]) -> np.ndarray:
    image = cv2.imread(os.fspath(path))
    if image is None:
        raise FileNotFoundError(path)
    return image


def median_seconds(fn: Callable[[], object], runs: int = 300) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def noise_errors(estimator: Callable[[np.ndarray], float], photos: dict[str, np.ndarray]) -> dict[int, float]:
    """Mean |estimate - sigma| / sigma per added sigma, over the photographs (fixed seeds)."""
    errors: dict[int, float] = {}
    for sigma in SIGMAS:
        rel = []
        for seed, luma in enumerate(photos.values()):
            noisy = gaussian_noise(luma, sigma, rng=np.random.default_rng(seed))
            rel.append(abs(estimator(noisy) - sigma) / sigma)
        errors[sigma] = float(np.mean(rel))
    return errors


def main() -> None:
    cv2.setNumThreads(1)
    photos = photographs()
    from ultralytics.utils import ASSETS

    bus = _read(ASSETS / "bus.jpg")
    frame = cv2.resize(bus, (640, 480), interpolation=cv2.INTER_AREA)
    print(f"photographs: {len(photos)} ({', '.join(photos)})")

    ours = median_seconds(lambda: measure(frame))
    print(f"quality.measure, all signals, 640x480 BGR, 1 core:  {ours * 1e3:.3f} ms/image")
    errors = noise_errors(noise_sigma, photos)
    row = "  ".join(f"s{s}: {e * 100:4.1f}%" for s, e in errors.items())
    print(f"quality noise_sigma mean abs rel error:  {row}  mean {np.mean(list(errors.values())) * 100:.1f}%")

    try:
        from skimage.restoration import estimate_sigma
    except ImportError:
        print("scikit-image not installed: no reference figures")
    else:
        square = cv2.resize(photos["camera"], (512, 512))
        sk = median_seconds(lambda: estimate_sigma(square), runs=30)
        ours_512 = median_seconds(lambda: noise_sigma(square))
        print(
            f"skimage estimate_sigma, 512x512, 1 core:  {sk * 1e3:.3f} ms  "
            f"(quality noise_sigma alone: {ours_512 * 1e3:.3f} ms)"
        )
        sk_errors = noise_errors(lambda g: float(estimate_sigma(g)), photos)
        row = "  ".join(f"s{s}: {e * 100:4.1f}%" for s, e in sk_errors.items())
        print(f"skimage estimate_sigma mean abs rel error:  {row}  mean {np.mean(list(sk_errors.values())) * 100:.1f}%")
        print(
            "time ratio, quality.measure (all six signals, 640x480) / skimage estimate_sigma (noise, 512x512): "
            f"{ours / sk:.2f}"
        )

    _bench_cuda(bus)


def _bench_cuda(bus: np.ndarray) -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: no batched figures")
        return
    if not torch.cuda.is_available():
        print("CUDA not available: measure_batch throughput not measured")
        return
    from quality.torch_batch import measure_batch

    batch = torch.from_numpy(np.stack([bus] * 64)).cuda()
    for _ in range(3):
        measure_batch(batch)
    torch.cuda.synchronize()
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        measure_batch(batch)
    torch.cuda.synchronize()
    rate = runs * 64 / (time.perf_counter() - start)
    print(f"measure_batch on {torch.cuda.get_device_name()}, batch 64 of 1080x810: {rate:.0f} images/s")


if __name__ == "__main__":
    main()
