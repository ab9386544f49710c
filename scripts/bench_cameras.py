"""Camera ingestion soak: N cameras at F frames/s through the real model, memory and threads watched.

    python scripts/bench_cameras.py --duration 300            # 8 cameras x 2 fps, 5 minutes, CPU
    python scripts/bench_cameras.py --duration 60 --cameras 4 --url rtsp://127.0.0.1:8554/stream

What it does, in one process (no HTTP in between):

1. loads the model, starts the camera manager and the scheduler as the service does;
2. 100 add/remove cycles of a camera (``--cycles``): the thread count must come back;
3. the soak: ``--cameras`` cameras reading a looping video file built from real photographs
   (day and low-light night scenes) or ``--url``, sampled at ``--fps``, for ``--duration`` s;
   resident memory (RSS) is sampled every few seconds; growth is measured after ``--warmup``;
4. prints per-camera processed and dropped rates, the detector's throughput, memory and threads,
   and exits 1 if memory grew by more than ``--max-growth-mb`` or threads leaked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "yolo11n.pt"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def os_threads() -> int:
    """Threads of this process as the kernel sees them (FFmpeg and OpenMP threads included)."""
    return len(os.listdir("/proc/self/task"))


def make_video(folder: Path, fps: int = 10) -> Path:
    """A 12 s loop of real photographs: 6 s of day, 6 s of the same scenes at 2% of the light."""
    from quality.bench import load_bgr
    from quality.simulate import low_light

    rng = np.random.default_rng(0)
    photos = [
        cv2.resize(load_bgr(name), (640, 480), interpolation=cv2.INTER_AREA) for name in ("bus.jpg", "zidane.jpg")
    ]
    frames = [p for p in photos for _ in range(3 * fps)]
    frames += [low_light(p, 0.02, rng=rng) for p in photos for _ in range(3 * fps)]
    path = folder / "street-day-night.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def wait_threads(limit: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while threading.active_count() > limit and time.monotonic() < deadline:
        time.sleep(0.1)
    return threading.active_count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=300.0, help="soak length, seconds (default 300)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before memory is baselined (default: 20%%, at most 60)"
    )
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--fps", type=float, default=2.0, help="sample rate per camera")
    parser.add_argument("--cycles", type=int, default=100, help="add/remove cycles for the thread-leak check")
    parser.add_argument("--url", help="read this URL with every camera instead of a generated video file")
    parser.add_argument("--model", default=str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else "yolo11n.pt")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration * 0.2)

    from vision_service.api.main import build_state
    from vision_service.cameras.manager import CameraManager
    from vision_service.core.config import Settings

    settings = Settings(model=args.model, device=args.device, max_cameras=max(args.cameras, 1) + 1)
    state = build_state(settings)
    state.load_model()
    if not state.pipeline.ready:
        print(f"model did not load: {state.pipeline.load_error}", file=sys.stderr)
        return 2
    manager = CameraManager.from_settings(
        settings, pipeline=state.pipeline, telemetry=state.metrics, sources=state.sources
    )
    manager.start()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or str(make_video(Path(tmp)))
        loop = args.url is None
        shown = manager.parse({"id": "x", "url": url}).masked_url
        model = state.pipeline.engine.model
        print(f"model {model.name} on {model.device}; source {shown}")

        # -- thread leak: add/remove cycles --------------------------------------------------
        # Each cycle waits for the camera's first processed frame, so every reader really opened
        # its capture (FFmpeg's own threads included) before it is removed. One cycle first, so
        # threads created once per process (e.g. the scheduler's OpenMP team) are in the baseline.
        def cycle(i: int) -> None:
            camera_id = f"cycle-{i % 4}"
            manager.add({"id": camera_id, "url": url, "fps": args.fps, "loop": loop})
            deadline = time.monotonic() + 10
            while manager.get(camera_id)["frames"]["processed"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            manager.remove(camera_id)

        cycle(0)
        threads_before, os_threads_before = threading.active_count(), os_threads()
        rss_before_cycles = rss_mb()
        started = time.monotonic()
        for i in range(args.cycles):
            cycle(i)
        threads_after = wait_threads(threads_before, timeout=30)
        os_threads_after = os_threads()
        print(
            f"\n{args.cycles} add/remove cycles in {time.monotonic() - started:.1f} s: "
            f"Python threads {threads_before} -> {threads_after}, OS threads {os_threads_before} -> "
            f"{os_threads_after}, RSS {rss_before_cycles:.0f} -> {rss_mb():.0f} MB"
        )

        # -- soak ----------------------------------------------------------------------------
        ids = [f"cam-{i}" for i in range(args.cameras)]
        for camera_id in ids:
            manager.add({"id": camera_id, "url": url, "fps": args.fps, "loop": loop})
        soak_threads = threading.active_count()
        print(f"\nsoak: {args.cameras} cameras x {args.fps:g} fps for {args.duration:.0f} s (warm-up {warmup:.0f} s)")
        print(f"{'t (s)':>6} {'RSS MB':>8} {'threads':>8} {'processed/s':>12} {'dropped/s':>10} {'failed':>7}")
        start = time.monotonic()
        samples: list[tuple[float, float]] = []
        last_t, last_processed, last_dropped = 0.0, 0, 0
        while (elapsed := time.monotonic() - start) < args.duration:
            time.sleep(min(args.interval, max(args.duration - elapsed, 0.0)))
            elapsed = time.monotonic() - start
            views = [manager.get(c) for c in ids]
            processed = sum(v["frames"]["processed"] for v in views)
            dropped = sum(v["frames"]["dropped"] for v in views)
            failed = sum(v["frames"]["failed"] for v in views)
            rss = rss_mb()
            samples.append((elapsed, rss))
            span = max(elapsed - last_t, 1e-9)
            print(
                f"{elapsed:6.0f} {rss:8.1f} {threading.active_count():8d} "
                f"{(processed - last_processed) / span:12.2f} {(dropped - last_dropped) / span:10.2f} {failed:7d}",
                flush=True,
            )
            last_t, last_processed, last_dropped = elapsed, processed, dropped
        soak_seconds = time.monotonic() - start
        views = [manager.get(c) for c in ids]
        for camera_id in ids:
            manager.remove(camera_id)
        manager.stop()

    after_warmup = [(t, r) for t, r in samples if t >= warmup] or samples[-1:]
    base = after_warmup[0][1]
    growth = samples[-1][1] - base
    spread = max(r for _, r in after_warmup) - min(r for _, r in after_warmup)
    slope = 0.0
    if len(after_warmup) >= 2:
        ts = np.array([t for t, _ in after_warmup])
        rs = np.array([r for _, r in after_warmup])
        slope = float(np.polyfit(ts, rs, 1)[0] * 60)

    print(f"\nper camera over {soak_seconds:.0f} s (asked {args.fps:g} frames/s each):")
    print(f"{'camera':<8} {'processed/s':>12} {'dropped/s':>10} {'failed':>7} {'reconnects':>11} {'fps now':>8}")
    rows: list[dict[str, Any]] = []
    for v in views:
        f = v["frames"]
        row = {
            "camera": v["id"],
            "processed_per_s": f["processed"] / soak_seconds,
            "dropped_per_s": f["dropped"] / soak_seconds,
            "failed": f["failed"],
            "reconnects": v["reconnects"],
            "measured_fps": v["measured_fps"],
        }
        rows.append(row)
        print(
            f"{v['id']:<8} {row['processed_per_s']:12.3f} {row['dropped_per_s']:10.3f} {f['failed']:7d} "
            f"{v['reconnects']:11d} {v['measured_fps']:8.2f}"
        )
    total = sum(r["processed_per_s"] for r in rows)
    total_dropped = sum(r["dropped_per_s"] for r in rows)
    print(
        f"all      {total:12.3f} {total_dropped:10.3f}   "
        f"(detector throughput {total:.2f} frames/s of {args.cameras * args.fps:g} asked; "
        f"{100 * total_dropped / max(total + total_dropped, 1e-9):.0f}% dropped)"
    )
    leak = threads_after > threads_before or os_threads_after > os_threads_before
    memory_ok = growth < args.max_growth_mb
    print(
        f"\nmemory after warm-up: {base:.1f} -> {samples[-1][1]:.1f} MB (growth {growth:+.1f} MB, "
        f"spread {spread:.1f} MB, trend {slope:+.2f} MB/min) -> "
        f"{'OK' if memory_ok else 'FAIL'} (< {args.max_growth_mb:g} MB)"
    )
    print(
        f"threads: {threads_before} before cycles, {threads_after} after {args.cycles} cycles "
        f"(OS threads {os_threads_before} -> {os_threads_after}), "
        f"{soak_threads} during the soak ({args.cameras} readers + scheduler) -> {'FAIL' if leak else 'OK'}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "duration_s": soak_seconds,
                    "cameras": args.cameras,
                    "fps": args.fps,
                    "processed_per_s": total,
                    "dropped_per_s": total_dropped,
                    "rss_warm_mb": base,
                    "rss_end_mb": samples[-1][1],
                    "growth_mb": growth,
                    "trend_mb_per_min": slope,
                    "threads_before": threads_before,
                    "threads_after_cycles": threads_after,
                    "os_threads_before": os_threads_before,
                    "os_threads_after_cycles": os_threads_after,
                    "per_camera": rows,
                }
            )
        )
    return 0 if memory_ok and not leak else 1


if __name__ == "__main__":
    raise SystemExit(main())
