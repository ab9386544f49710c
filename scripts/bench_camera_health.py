"""Per-frame cost of the camera-health signals on one CPU core (docs/benchmarks.md).

    python scripts/bench_camera_health.py [--runs 2000]

Prints the median (and 10th percentile) single-core time of what issue 18 adds to every frame:

* ``colourfulness``: the 64 px colour thumbnail (area resize of the BGR frame) and Hasler &
  Suesstrunk's formula (``quality.colour.colourfulness``), computed by the engine;
* ``scene thumbnail``: the analysis luma area-averaged to 64 px in float32
  (``quality.scene.thumbnail``), computed by the engine;
* ``camera health``: one ``CameraHealth.update`` per camera frame (gradient map, similarity to the
  reference, the three ratios, the frame change and the state machine), in the camera's stats;

and their sum, for a 640x480 BGR frame (the analysis size: the luma signals are computed at it)
and a 1920x1080 one (the colour thumbnail reads every pixel of the frame; the scene thumbnail
starts from the 640 px analysis luma either way). Also ``quality.measure`` with and without the
new work, for scale. ``cv2.setNumThreads(1)``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quality.bench import load_bgr, timing  # noqa: E402
from quality.colour import colourfulness  # noqa: E402
from quality.luma import analysis_luma  # noqa: E402
from quality.measure import measure_luma, measure_scene  # noqa: E402
from quality.scene import thumbnail  # noqa: E402
from quality.simulate import gaussian_noise  # noqa: E402
from vision_service.cameras.health import CameraHealth, HealthConfig  # noqa: E402
from vision_service.measurement import Measurement, StageTimes  # noqa: E402


def health_update_seconds(frame: np.ndarray, runs: int) -> tuple[float, float]:
    """One CameraHealth.update on a camera whose reference is learned, fed frames with fresh noise."""
    rng = np.random.default_rng(0)
    frames = [gaussian_noise(frame, 2.0, rng=rng) for _ in range(8)]
    measurements = []
    for image in frames:
        report, thumb = measure_scene(image)
        measurements.append(
            Measurement("bench", image.shape[1], image.shape[0], report, [], StageTimes(), "cpu", scene=thumb)
        )
    health = CameraHealth(HealthConfig(reference_frames=4))
    clock = iter(range(10**9))
    for m in measurements[:4]:
        health.update(m, now=float(next(clock)))
    cycle = iter(measurements * (runs + 200))
    return timing(lambda: health.update(next(cycle), now=float(next(clock))), runs=runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    frames = {
        "640x480": cv2.resize(load_bgr("bus.jpg"), (640, 480), interpolation=cv2.INTER_AREA),
        "1920x1080": cv2.resize(load_bgr("zidane.jpg"), (1920, 1080), interpolation=cv2.INTER_CUBIC),
    }
    print("== per-frame cost of the camera-health signals, 1 CPU core (cv2.setNumThreads(1)), median (p10) ==")
    for label, frame in frames.items():
        runs = args.runs if label == "640x480" else max(args.runs // 4, 100)
        luma = analysis_luma(frame)
        colour = timing(partial(colourfulness, frame), runs=runs)
        thumb = timing(partial(thumbnail, luma), runs=runs)
        health = health_update_seconds(frame, runs)
        total = colour[0] + thumb[0] + health[0]
        print(f"\n{label} BGR frame:")
        for name, (median, p10) in (
            ("colourfulness (64 px colour thumbnail + Hasler)", colour),
            ("scene thumbnail (analysis luma -> 64 px float)", thumb),
            ("camera health update (per camera frame)", health),
        ):
            print(f"  {name:<50} {median * 1e3:7.3f} ms  ({p10 * 1e3:.3f})")
        print(f"  {'total added per frame':<50} {total * 1e3:7.3f} ms")
        before = timing(partial(lambda f: measure_luma(analysis_luma(f)), frame), runs=runs)
        after = timing(partial(measure_scene, frame), runs=runs)
        print(f"  quality.measure without / with them (engine side): {before[0] * 1e3:.3f} -> {after[0] * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
