"""Camera readers against a real RTSP server: day to night, an outage and the recovery."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from tests.infra import wait_for
from tests.streams import RtspServer, Samples, day_night_frames, parse_samples, sample, write_frames
from vision_service.api.main import build_state
from vision_service.api.state import ServiceState
from vision_service.cameras.manager import CameraManager
from vision_service.cameras.reader import Backoff, Frame, LatestFrame
from vision_service.core.config import Settings

TIMEOUT = 2.0  # open / read timeout of the test cameras, seconds
BACKOFF_MAX = 1.0


@pytest.fixture(scope="module")
def state(model_path: str) -> ServiceState:
    state = build_state(Settings(model=model_path, device="cpu"))
    state.load_model()
    assert state.ready, state.load_error
    return state


@pytest.fixture()
def manager(state: ServiceState) -> Iterator[CameraManager]:
    manager = CameraManager(
        state.pipeline,
        state.metrics,
        state.sources,
        timeout=TIMEOUT,
        reconnect_min=0.25,
        reconnect_max=BACKOFF_MAX,
    )
    manager.start()
    yield manager
    for camera_id in manager.ids():
        manager.remove(camera_id)
    manager.stop()


@pytest.fixture(scope="module")
def day_night_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 fps: each photo 1 s by day, then the same four scenes 1 s each at 1% of the light."""
    day, night = day_night_frames(frames_per_photo=5)
    return write_frames(tmp_path_factory.mktemp("day-night"), [*day, *night])


def scrape(state: ServiceState) -> Samples:
    return parse_samples(generate_latest(state.metrics.registry).decode())


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(8)]
    steps = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    assert len({round(d, 6) for d in delays[4:]}) == 4  # jittered, not lock-step
    backoff.reset()
    assert backoff.next() <= 0.5


def test_latest_frame_slot_keeps_one_frame() -> None:
    slot = LatestFrame()
    frames = [Frame(np.full((2, 2, 3), i, np.uint8), float(i)) for i in range(3)]
    assert slot.put(frames[0]) is False
    assert slot.put(frames[1]) is True  # the untaken frame was replaced: a dropped frame
    assert slot.take() is frames[1]
    assert slot.take() is None
    assert slot.put(frames[2]) is False
    assert slot.clear() is True and slot.clear() is False


def test_rtsp_camera_brightness_falls_at_night(
    state: ServiceState, manager: CameraManager, day_night_folder: Path, tmp_path: Path
) -> None:
    server = RtspServer(day_night_folder, tmp_path / "rtsp.log", fps=5)
    with server:
        manager.add({"id": "street", "url": server.url(), "fps": 4})
        wait_for(lambda: manager.get("street")["up"], timeout=30, what="the camera to come up")

        # Mean brightness per poll interval, from the histogram's _sum and _count (what PromQL's
        # rate(sum)/rate(count) shows): it must drop during the night segment and come back.
        means: list[float] = []
        previous = (0.0, 0.0)

        def day_and_night_seen() -> bool:
            nonlocal previous
            s = scrape(state)
            total = sample(s, "vision_image_brightness_ratio_sum", source="street") or 0.0
            count = sample(s, "vision_image_brightness_ratio_count", source="street") or 0.0
            if count > previous[1]:
                means.append((total - previous[0]) / (count - previous[1]))
            previous = (total, count)
            return len(means) >= 4 and max(means) > 0.3 and min(means) < 0.2 and min(means) < 0.6 * max(means)

        wait_for(day_and_night_seen, timeout=90, interval=1.0, what="a day and a night segment in the histogram")

    view = manager.get("street")
    assert view["last"] is not None and 0.0 < view["last"]["quality"]["brightness"] < 1.0
    s = scrape(state)
    processed = sample(s, "vision_camera_frames_total", camera="street", outcome="processed")
    assert processed == view["frames"]["processed"] == sample(s, "vision_image_brightness_ratio_count", source="street")
    # Only real frames: not one black (zero-filled) frame reached the statistics.
    assert sample(s, "vision_image_brightness_ratio_bucket", source="street", le="0.02") == 0


def test_rtsp_outage_reconnects_and_records_nothing_meanwhile(
    state: ServiceState, manager: CameraManager, day_night_folder: Path, tmp_path: Path
) -> None:
    server = RtspServer(day_night_folder, tmp_path / "rtsp.log", fps=5)
    server.start()
    try:
        manager.add({"id": "gate", "url": server.url(), "fps": 4})

        def counts() -> tuple[float, float, float, float]:
            s = scrape(state)
            return (
                sample(s, "vision_camera_up", camera="gate") or 0.0,
                sample(s, "vision_camera_reconnects_total", camera="gate") or 0.0,
                sample(s, "vision_camera_frames_total", camera="gate", outcome="processed") or 0.0,
                sample(s, "vision_image_brightness_ratio_count", source="gate") or 0.0,
            )

        wait_for(lambda: counts()[0] == 1 and counts()[2] >= 3, timeout=30, what="frames from the camera")
        reconnects_before = counts()[1]

        server.stop()
        wait_for(lambda: counts()[0] == 0, timeout=3 * TIMEOUT + 5, what="vision_camera_up to drop to 0")
        assert manager.get("gate")["status"] == "reconnecting"
        # Once the outage is established (two reconnects failed), nothing more is recorded.
        wait_for(lambda: counts()[1] >= reconnects_before + 2, timeout=30, what="reconnect attempts")
        _, _, processed, samples = counts()
        wait_for(lambda: counts()[1] >= reconnects_before + 4, timeout=30, what="more reconnect attempts")
        up, _, processed_later, samples_later = counts()
        assert up == 0
        assert (processed_later, samples_later) == (processed, samples)
        assert manager.get("gate")["error"]

        server.start()  # the same port
        started = time.monotonic()
        # Within one backoff step (at most BACKOFF_MAX) plus the time to open and sample.
        wait_for(
            lambda: counts()[0] == 1 and counts()[2] > processed_later,
            timeout=BACKOFF_MAX + TIMEOUT + 15,
            what="frames to flow again after the restart",
        )
        recovered_after = time.monotonic() - started
        up, _, processed_end, samples_end = counts()
        assert processed_end == samples_end  # every sample is a processed frame; failures made none
        view = manager.get("gate")
        assert view["status"] == "up" and view["error"] is None
        assert view["frames"]["failed"] >= 1
        print(f"recovered {recovered_after:.1f} s after the restart")
    finally:
        server.stop()
