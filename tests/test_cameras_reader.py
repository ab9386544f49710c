"""Camera readers against real servers: day to night, an outage and the recovery, a server that stalls."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from tests.infra import wait_for
from tests.streams import (
    RtspServer,
    Samples,
    StallingServer,
    camera_threads,
    day_night_frames,
    parse_samples,
    ready_state,
    running_manager,
    sample,
    street_video,
    write_frames,
)
from vision_service.api.state import ServiceState
from vision_service.cameras.config import Camera
from vision_service.cameras.manager import CameraManager
from vision_service.cameras.reader import Backoff, CameraReader, LatestFrame
from vision_service.cameras.stats import CameraStats, Status
from vision_service.cameras.stream import SECRETS, StreamPolicy
from vision_service.core.config import Settings
from vision_service.metrics import Metrics

TIMEOUT = 2.0  # open / read timeout of the test cameras, seconds
BACKOFF_MAX = 1.0


@pytest.fixture(scope="module")
def state(model_path: str) -> ServiceState:
    return ready_state(Settings(model=model_path, device="cpu"))


@pytest.fixture()
def manager(state: ServiceState) -> Iterator[CameraManager]:
    with running_manager(state, timeout=TIMEOUT, reconnect_min=0.25, reconnect_max=BACKOFF_MAX) as manager:
        yield manager


@pytest.fixture(scope="module")
def day_night_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 fps: each photo 1 s by day, then the same four scenes 1 s each at 1% of the light."""
    day, night = day_night_frames(frames_per_photo=5)
    return write_frames(tmp_path_factory.mktemp("day-night"), [*day, *night])


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return street_video(tmp_path_factory.mktemp("video") / "street.mp4")


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
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    assert slot.put(frames[0]) is False
    assert slot.put(frames[1]) is True  # the untaken frame was replaced: a dropped frame
    assert slot.take() is frames[1]
    assert slot.take() is None
    assert slot.put(frames[2]) is False
    assert slot.clear() is True and slot.clear() is False


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_readers_secrets_stay_masked_when_an_older_reader_of_its_camera_ends() -> None:
    # A camera redefined (the manager starts the new reader before it stops the old one), or removed
    # and added again while its old reader is still busy: two readers of "lobby" at once. The old
    # reader's end must not unmask the new one's password in FFmpeg's log, nor the new reader's
    # start unmask the old one's while it still runs.
    old_password, new_password = "0ld-Lobby-Pw-5b1e", "n3w-Lobby-Pw-9c2f"
    port = closed_port()
    policy = StreamPolicy(timeout=TIMEOUT, max_pixels=40_000_000)

    def reader(password: str) -> CameraReader:
        camera = Camera(id="lobby", url=f"rtsp://cam:{password}@127.0.0.1:{port}/stream")
        stats = CameraStats("lobby", Metrics())
        backoff = Backoff(60.0, 60.0)  # after the first failed open, each waits until stopped
        return CameraReader(
            camera, slot=LatestFrame(), stats=stats, on_frame=lambda: None, policy=policy, backoff=backoff
        )

    def line(password: str) -> str:  # FFmpeg quoting a secret outside a URL: only the registry masks it
        return SECRETS.redact(f"[rtsp] method DESCRIBE failed: 401 Unauthorized (password {password})")

    def registered(r: CameraReader) -> bool:  # a reader registers before its first open, then fails it
        return r.stats.status == Status.RECONNECTING

    old, new = reader(old_password), reader(new_password)
    try:
        old.start()
        wait_for(lambda: registered(old), timeout=30, what="the old reader's first failed open")
        new.start()
        wait_for(lambda: registered(new), timeout=30, what="the new reader's first failed open")
        assert old_password not in line(old_password) and new_password not in line(new_password)

        old.stop()
        assert old.join(timeout=2 * TIMEOUT + 1)
        assert line(new_password) == "[rtsp] method DESCRIBE failed: 401 Unauthorized (password ***)"
        assert old_password in line(old_password)  # the old reader's own secrets left with it
    finally:
        old.stop()
        new.stop()
        assert old.join(timeout=2 * TIMEOUT + 1) and new.join(timeout=2 * TIMEOUT + 1)
    assert new_password in line(new_password)


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
        # Every sample is a processed frame; failures made none. (One scrape is not atomic: a frame
        # finishing between the two metrics makes them differ by one, so look for a settled scrape.)
        wait_for(lambda: (c := counts())[2] == c[3], timeout=10, what="processed frames == quality samples")
        view = manager.get("gate")
        assert view["status"] == "up" and view["error"] is None
        assert view["frames"]["failed"] >= 1
        print(f"recovered {recovered_after:.1f} s after the restart")
    finally:
        server.stop()


STALL_TIMEOUT = 1.0  # camera timeout in the stall test, seconds
HEALTHY_FPS = 4.0


def test_a_stalled_server_does_not_block_the_other_cameras(state: ServiceState, video: Path) -> None:
    """Camera servers that accept the connection and then send nothing (over RTSP and HTTP) leave
    the other cameras alone: the healthy camera keeps its rate, never goes a camera timeout without
    a frame (a looping file reopens every two seconds), and a camera added meanwhile comes up. The
    stalled ones stay down, record nothing and keep retrying, each attempt given up at the camera
    timeout. The manager answers meanwhile, and removing a stalled camera returns within about the
    timeout and leaves no thread behind."""
    manager = CameraManager(
        state.pipeline,
        state.metrics,
        state.sources,
        timeout=STALL_TIMEOUT,
        reconnect_min=0.1,
        reconnect_max=0.3,
        local_dirs=[video.parent],
    )
    manager.start()
    stalled = ("stuck-rtsp-1", "stuck-rtsp-2", "stuck-http-1", "stuck-http-2")
    try:
        with StallingServer() as server:
            manager.add({"id": "yard", "url": str(video), "fps": HEALTHY_FPS, "loop": True})
            wait_for(lambda: manager.get("yard")["frames"]["processed"] >= 2, timeout=60, what="the healthy camera")
            for n in (1, 2):
                manager.add({"id": f"stuck-rtsp-{n}", "url": server.url("rtsp", "stream"), "fps": 2})
                manager.add({"id": f"stuck-http-{n}", "url": server.url("http", "x.mjpg"), "fps": 2})

            # Watch until each stalled camera has retried three times. Every attempt would hang
            # for ever on this server (it never answers), so retries show the timeout ends them.
            started, before = time.monotonic(), manager.get("yard")["frames"]
            slowest_answer = longest_without_frame = 0.0
            deadline = started + 60
            while True:
                asked = time.monotonic()
                views = {view["id"]: view for view in manager.list()}
                slowest_answer = max(slowest_answer, time.monotonic() - asked)
                assert views["yard"]["status"] == "up", views["yard"]
                longest_without_frame = max(longest_without_frame, time.time() - views["yard"]["last_frame_at"])
                for camera_id in stalled:
                    view = views[camera_id]
                    assert view["status"] in ("connecting", "reconnecting") and not view["up"], view
                    assert view["frames"] == {"processed": 0, "dropped": 0, "failed": 0}, view
                if all(views[c]["reconnects"] >= 3 for c in stalled) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            healthy = views["yard"]["frames"]
            processed = healthy["processed"] - before["processed"]
            # Sampled: processed, or dropped when the detector was still busy with an earlier frame.
            sampled = processed + healthy["dropped"] - before["dropped"]
            print(
                f"in {elapsed:.1f} s: healthy camera sampled {sampled} frames at {HEALTHY_FPS:g} fps "
                f"(processed {processed}), longest without a frame {longest_without_frame:.2f} s; "
                f"reconnects {[views[c]['reconnects'] for c in stalled]}; {server.accepted} connections stalled; "
                f"slowest manager answer {slowest_answer * 1000:.0f} ms"
            )
            assert all(views[c]["reconnects"] >= 3 for c in stalled), views
            assert all(views[c]["error"].startswith("could not open the stream") for c in stalled), views
            # Every finished attempt reached the server on a new connection (a reconnect is counted
            # as its attempt starts, so the last one may still be connecting).
            assert server.accepted >= sum(views[c]["reconnects"] for c in stalled)
            # At its rate (give or take a frame in the slot), and its frames reach the detector.
            assert sampled >= 0.75 * HEALTHY_FPS * elapsed and processed >= 3
            assert longest_without_frame < STALL_TIMEOUT
            assert healthy["failed"] == 0
            assert slowest_answer < STALL_TIMEOUT / 2  # never waits on a stalled stream

            s = scrape(state)
            for camera_id in stalled:
                assert sample(s, "vision_camera_up", camera=camera_id) == 0
                assert sample(s, "vision_camera_frames_total", camera=camera_id, outcome="processed") == 0
                assert (sample(s, "vision_camera_reconnects_total", camera=camera_id) or 0) >= 3
                assert sample(s, "vision_image_brightness_ratio_count", source=camera_id) is None
            assert sample(s, "vision_camera_up", camera="yard") == 1
            assert (sample(s, "vision_image_brightness_ratio_count", source="yard") or 0) >= processed

            # A camera added now opens while the stalled ones are still trying.
            added = time.monotonic()
            manager.add({"id": "lane", "url": str(video), "fps": 1, "loop": True})
            wait_for(lambda: manager.get("lane")["up"], timeout=30, interval=0.05, what="the added camera to come up")
            up_after = time.monotonic() - added

            # Remove an RTSP one from another thread while the manager is asked about the others.
            removal = threading.Thread(target=manager.remove, args=("stuck-rtsp-1",), name="remover")
            asked = time.monotonic()
            removal.start()
            while removal.is_alive():
                answered = time.monotonic()
                assert manager.get("yard")["up"] and [v["id"] for v in manager.list()]
                slowest_answer = max(slowest_answer, time.monotonic() - answered)
                time.sleep(0.05)
            removal.join()
            removals = {"stuck-rtsp-1": time.monotonic() - asked}
            for camera_id in stalled[1:]:
                asked = time.monotonic()
                manager.remove(camera_id)
                removals[camera_id] = time.monotonic() - asked
            print(
                f"added camera up after {up_after:.2f} s; removals took "
                f"{', '.join(f'{seconds:.2f}' for seconds in removals.values())} s; "
                f"slowest answer meanwhile {slowest_answer * 1000:.0f} ms"
            )
            assert up_after < STALL_TIMEOUT
            # An open in progress gives up at the camera timeout; a removal waits for that, no more.
            assert max(removals.values()) < STALL_TIMEOUT + 2
            assert slowest_answer < STALL_TIMEOUT / 2
            assert camera_threads() == ["camera-lane", "camera-scheduler", "camera-yard"]
            assert manager.ids() == ["yard", "lane"]
            s = scrape(state)
            assert not [key for key in s if dict(key[1]).get("camera", "").startswith("stuck-")]

            # The healthy camera is still going.
            after = manager.get("yard")["frames"]["processed"]
            wait_for(lambda: manager.get("yard")["frames"]["processed"] > after, timeout=30, what="more frames")
    finally:
        manager.stop()
    assert camera_threads() == []
