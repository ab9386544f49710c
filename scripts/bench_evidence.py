"""Evidence frames: the store stays under its size cap, and keeping frames costs little throughput.

    python scripts/bench_evidence.py soak --duration 600          # 8 cameras, 10 minutes, disk store capped
    python scripts/bench_evidence.py throughput --pairs 12        # CPU path, evidence on/off interleaved

**soak**: the service's own parts in one process (model, pipeline, camera manager, history,
conditions, evidence keeper with a *disk* store) read ``--cameras`` local video files in a loop,
each a different day -> night -> day sequence of real photographs (the honest low-light
simulation), at ``--fps`` frames per second each. Every ``--interval`` seconds it walks the
evidence directory and sums the size of every file in it (temporary ones included), and records
the store's own count; it prints the largest size seen against the cap (``--max-bytes``, small on
purpose so eviction runs all the time), frames per source against the slot limit, and the keeper's
and writer's counters. Exit status 1 if the cap or the slot limit was ever exceeded.

**throughput**: one engine (the CPU path, as the service picks it), one pipeline with the service's
sinks; rounds of 8 camera frames (one per source, like the camera scheduler) are pushed through as
fast as the engine takes them, in blocks of ``--block`` frames, alternating evidence **on** (the
keeper, with a disk store, in the pipeline) and **off** (no keeper) as ABBA pairs, so that whatever
else loads the machine meets both alike. Prints frames/s per block, the mean of each mode, the
ratio and the median of the per-pair ratios. ``--window`` sets the drift window (the evidence
blocks are half of it): the service's default 500, or small for a worst case that keeps a frame
far more often.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "yolo11n.pt"


def scenes(count: int, seed: int = 0) -> list[list[np.ndarray]]:
    """``count`` sequences of 640x480 frames: a photograph by day, dusk, night, dusk again (fresh noise)."""
    from quality.simulate import blur, gaussian_noise, low_light
    from tests.streams import photographs

    rng = np.random.default_rng(seed)
    photos = photographs()
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        lights = np.concatenate([np.geomspace(1.0, 0.002, 12), np.geomspace(0.002, 1.0, 12)])
        frames = []
        for light in lights:
            frame = low_light(photo, float(light), rng=rng) if light < 0.999 else photo.copy()
            if i % 3 == 1 and light < 0.05:
                frame = gaussian_noise(frame, 10.0, rng=rng)  # a cheap camera at high gain
            if i % 3 == 2 and light < 0.05:
                frame = blur(frame, 3.0)  # dew on the lens at night
            frames.append(frame)
        out.append(frames)
    return out


def write_videos(folder: Path, sequences: list[list[np.ndarray]], fps: int = 4) -> list[Path]:
    paths = []
    for i, frames in enumerate(sequences):
        path = folder / f"camera-{i}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (640, 480))
        for frame in frames:
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def disk_usage(directory: Path) -> tuple[int, int]:
    """(bytes, files) of everything under ``directory``; files may vanish while we look."""
    total = files = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return total, files


def soak(args: argparse.Namespace) -> int:
    from vision_service.api.main import build_state
    from vision_service.cameras.manager import CameraManager
    from vision_service.core.config import Settings
    from vision_service.evidence.rules import SLOTS_PER_SOURCE

    with tempfile.TemporaryDirectory() as tmp:
        evidence = Path(tmp) / "evidence"
        settings = Settings(
            model=args.model,
            device=args.device,
            max_cameras=args.cameras + 1,
            local_source_dirs=[Path(tmp)],  # the cameras read the videos written there
            evidence_dir=evidence,
            evidence_max_bytes=args.max_bytes,
            drift_window_frames=args.window,
            baseline_learn_frames=args.learn,
        )
        state = build_state(settings)
        state.load_model()
        if not state.pipeline.ready:
            print(f"model did not load: {state.pipeline.load_error}", file=sys.stderr)
            return 2
        keeper = state.evidence
        assert keeper is not None
        manager = CameraManager.from_settings(
            settings, pipeline=state.pipeline, telemetry=state.metrics, sources=state.sources
        )
        manager.start()
        videos = write_videos(Path(tmp), scenes(args.cameras))
        ids = [f"cam-{i}" for i in range(args.cameras)]
        for camera_id, video in zip(ids, videos, strict=True):
            manager.add({"id": camera_id, "url": str(video), "fps": args.fps, "loop": True})
        model = state.pipeline.engine.model
        print(
            f"soak: {args.cameras} cameras x {args.fps:g} fps for {args.duration:.0f} s, "
            f"{model.name} on {model.device}; "
            f"disk store capped at {args.max_bytes} bytes, frames up to {settings.evidence_max_side} px, "
            f"drift window {args.window} frames"
        )
        print(
            f"{'t (s)':>6} {'disk bytes':>11} {'files':>6} {'frames':>7} {'processed':>10} {'stored':>7} {'evicted':>8}"
        )
        start = time.monotonic()
        peak = peak_files = worst_per_source = 0
        samples: list[tuple[float, int]] = []
        next_print = 0.0
        while (elapsed := time.monotonic() - start) < args.duration:
            size, files = disk_usage(evidence)
            per_source = max((len(keeper.store.samples(s)) for s in keeper.store.sources()), default=0)
            peak, peak_files = max(peak, size), max(peak_files, files)
            worst_per_source = max(worst_per_source, per_source)
            samples.append((elapsed, size))
            if elapsed >= next_print:
                processed = sum(manager.get(c)["frames"]["processed"] for c in ids)
                print(
                    f"{elapsed:6.0f} {size:11d} {files:6d} {keeper.store.count():7d} {processed:10d} "
                    f"{keeper.writer.written:7d} {keeper.store.evicted:8d}",
                    flush=True,
                )
                next_print += args.print_every
            time.sleep(args.interval)
        views = [manager.get(c) for c in ids]
        for camera_id in ids:
            manager.remove(camera_id)
        manager.stop()
        state.pipeline.close(30)
        keeper.close()
        final, _ = disk_usage(evidence)
        peak = max(peak, final)
        processed = sum(v["frames"]["processed"] for v in views)
        onsets = sorted({k for s in keeper.store.sources() for x in keeper.store.samples(s) for k in x.kinds})
    ok = peak <= args.max_bytes and worst_per_source <= SLOTS_PER_SOURCE
    summary: dict[str, Any] = {
        "duration_s": args.duration,
        "cameras": args.cameras,
        "disk_samples": len(samples),
        "cap_bytes": args.max_bytes,
        "peak_disk_bytes": peak,
        "peak_files": peak_files,
        "peak_frames_per_source": worst_per_source,
        "slots_per_source": SLOTS_PER_SOURCE,
        "frames_processed": processed,
        "kept_stored": keeper.writer.written,
        "kept_dropped_queue_full": keeper.writer.dropped,
        "kept_failed": keeper.writer.failed,
        "skipped_over_budget": keeper.skipped,
        "evicted_for_size": keeper.store.evicted,
        "expired": keeper.store.expired,
        "kinds_seen_at_end": onsets,
    }
    print(
        f"\nlargest size on disk over {len(samples)} samples: {peak} bytes of {args.max_bytes} "
        f"({100 * peak / args.max_bytes:.1f} % of the cap), at most {peak_files} files; at most "
        f"{worst_per_source} frames per source (limit {SLOTS_PER_SOURCE}) -> {'OK' if ok else 'FAIL'}"
    )
    print(
        f"{processed} camera frames processed; evidence: {keeper.writer.written} stored, "
        f"{keeper.store.evicted} evicted for size, {keeper.writer.dropped} dropped (queue full), "
        f"{keeper.skipped} skipped (budget), {keeper.writer.failed} failed"
    )
    print(json.dumps(summary))
    return 0 if ok else 1


def throughput(args: argparse.Namespace) -> int:
    from tests.conftest import engine_for
    from vision_service.conditions import ConditionMonitor
    from vision_service.core.config import Settings
    from vision_service.drift import DriftTracker
    from vision_service.evidence import DiskStore, EvidenceKeeper
    from vision_service.history import SignalHistory
    from vision_service.metrics import Metrics
    from vision_service.pipeline import Pipeline
    from vision_service.thresholds import load_thresholds

    engine = engine_for(args.model)  # the service's own factory: the host engine on a CPU
    sources = [f"cam-{i}" for i in range(8)]
    sequences = scenes(len(sources), seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Metrics()
        drift = DriftTracker(window_frames=args.window)
        history = SignalHistory()
        conditions = ConditionMonitor(load_thresholds(), history, drift)
        store = DiskStore(Path(tmp) / "evidence", max_bytes=64 * 1024 * 1024, max_age_seconds=86400)
        keeper = EvidenceKeeper(store, block_frames=max(1, args.window // 2), active=conditions.active)
        defaults = Settings()
        pipeline = Pipeline(
            max_pending=64,
            max_batch=defaults.max_batch,
            max_batch_wait=defaults.max_batch_wait_ms / 1000,
            max_request_pixels=defaults.max_request_pixels,
            max_pixels_in_flight=defaults.max_pixels_in_flight,
            sinks=[metrics.record, drift.record, history.record, conditions.record],
        )
        pipeline.use(engine)
        step = 0

        def block(on: bool) -> float:
            nonlocal step
            pipeline.keepers = [keeper] if on else []
            done = 0
            started = time.perf_counter()
            while done < args.block:
                frames = [
                    engine.from_host(sequences[i][step % len(sequences[i])], source=source)
                    for i, source in enumerate(sources)
                ]
                step += 1
                for future in pipeline.submit(frames):
                    future.result()
                done += len(frames)
            if on:
                keeper.writer.flush(60)  # the background writing of this block is charged to it
            return done / (time.perf_counter() - started)

        block(True)  # warm-up: lazy imports, allocator, the writer thread
        block(False)
        decided_before, frames_on = keeper.decided, 0
        results: list[tuple[str, float]] = []
        pairs: list[float] = []
        print(f"throughput: {model_name(engine)}, blocks of {args.block} frames, drift window {args.window}")
        for pair in range(args.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)  # ABBA
            rates = {}
            for on in order:
                rates[on] = block(on)
                frames_on += args.block if on else 0
                results.append(("on" if on else "off", rates[on]))
                print(f"pair {pair + 1:2d} evidence {'on ' if on else 'off'} {rates[on]:7.3f} frames/s", flush=True)
            pairs.append(rates[True] / rates[False])
        pipeline.close(30)
        keeper.close()
        on_fps = [r for mode, r in results if mode == "on"]
        off_fps = [r for mode, r in results if mode == "off"]
        kept = keeper.decided - decided_before
    ratio = statistics.mean(on_fps) / statistics.mean(off_fps)
    print(
        f"\nevidence on: {statistics.mean(on_fps):.3f} frames/s (sd {statistics.stdev(on_fps):.3f}), "
        f"off: {statistics.mean(off_fps):.3f} frames/s (sd {statistics.stdev(off_fps):.3f})"
    )
    print(
        f"ratio of means {ratio:.4f} (cost {100 * (1 - ratio):+.2f} %); median of per-pair ratios "
        f"{statistics.median(pairs):.4f} (cost {100 * (1 - statistics.median(pairs)):+.2f} %)"
    )
    print(
        f"frames kept while on: {kept} of {frames_on} ({100 * kept / max(frames_on, 1):.1f} %); "
        f"stored {keeper.writer.written}, skipped {keeper.skipped}, dropped {keeper.writer.dropped}"
    )
    print(
        json.dumps(
            {
                "pairs": args.pairs,
                "block": args.block,
                "window": args.window,
                "on_fps": on_fps,
                "off_fps": off_fps,
                "ratio_of_means": ratio,
                "median_pair_ratio": statistics.median(pairs),
                "kept": kept,
                "frames_on": frames_on,
            }
        )
    )
    return 0


def model_name(engine: Any) -> str:
    return f"{engine.model.name} on {engine.model.device} ({type(engine).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else "yolo11n.pt")
    parser.add_argument("--device", default="cpu")
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("soak", help="cameras for a while; the disk store never above its cap")
    s.add_argument("--duration", type=float, default=600.0)
    s.add_argument("--cameras", type=int, default=8)
    s.add_argument("--fps", type=float, default=2.0)
    s.add_argument("--max-bytes", type=int, default=4 * 1024 * 1024, help="the store's cap (small: eviction runs)")
    s.add_argument("--window", type=int, default=40, help="drift window frames (evidence blocks are half)")
    s.add_argument("--learn", type=int, default=20, help="frames a camera's baseline is learned from")
    s.add_argument("--interval", type=float, default=0.5, help="seconds between looks at the directory")
    s.add_argument("--print-every", type=float, default=30.0)
    s.set_defaults(func=soak)
    t = commands.add_parser("throughput", help="CPU throughput with evidence on and off, interleaved")
    t.add_argument("--pairs", type=int, default=12)
    t.add_argument("--block", type=int, default=32, help="frames per block")
    t.add_argument("--window", type=int, default=500, help="drift window frames (the service's default 500)")
    t.set_defaults(func=throughput)
    args = parser.parse_args()
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
