"""The camera manager: changes persist to the YAML file (a failed write changes nothing); cameras
come and go without leaking threads, descriptors or series; shutdown stops every camera thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from tests.infra import free_port, wait_for
from tests.streams import (
    StallingServer,
    camera_threads,
    open_fd_count,
    os_thread_count,
    parse_samples,
    ready_state,
    running_manager,
    street_video,
)
from vision_service.api.main import build_state, create_app
from vision_service.api.state import ServiceState
from vision_service.cameras.config import load_cameras
from vision_service.cameras.manager import CameraManager
from vision_service.core.config import Settings
from vision_service.errors import ApiError

TIMEOUT = 1.0  # open / read timeout of the cameras in the churn and shutdown tests, seconds
CYCLES = 100


def make_manager(state: ServiceState, path: Path, *, persist: bool = True) -> CameraManager:
    return CameraManager(state.pipeline, state.metrics, state.sources, cameras_file=path, persist=persist)


@pytest.fixture()
def state() -> ServiceState:
    return build_state(Settings(model="yolo11n.yaml", device="cpu"))  # the model is never needed here


def test_changes_are_written_back_and_read_at_the_next_start(state: ServiceState, tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    manager = make_manager(state, path)
    manager.start()  # no file yet: starts empty, creates it on the first change
    manager.add({"id": "a", "url": "rtsp://u:pw@127.0.0.1:9/a", "enabled": False})
    manager.add({"id": "b", "url": "rtsp://127.0.0.1:9/b", "fps": 0.5, "enabled": False})
    manager.remove("a")
    manager.stop()
    assert [(c.id, c.fps) for c in load_cameras(path)] == [("b", 0.5)]

    again = make_manager(state, path)
    again.start()
    assert again.ids() == ["b"]
    assert "b" in state.sources
    again.stop()


def test_a_failed_write_fails_the_change_and_changes_nothing(state: ServiceState, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    manager = make_manager(state, blocker / "cameras.yaml")
    manager.start()
    with pytest.raises(OSError):
        manager.add({"id": "a", "url": "rtsp://127.0.0.1:9/a", "enabled": False})
    assert manager.ids() == [] and "a" not in state.sources
    manager.stop()


def test_without_persist_the_file_is_left_alone(state: ServiceState, tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - id: a\n    url: rtsp://127.0.0.1:9/a\n    enabled: false\n")
    before = path.read_text()
    manager = make_manager(state, path, persist=False)
    manager.start()
    manager.remove("a")
    manager.add({"id": "b", "url": "rtsp://127.0.0.1:9/b", "enabled": False})
    manager.stop()
    assert path.read_text() == before


def test_configured_sources_stay_when_a_camera_of_that_name_goes(tmp_path: Path) -> None:
    state = build_state(Settings(model="yolo11n.yaml", device="cpu", sources=["gate"]))
    manager = CameraManager(state.pipeline, state.metrics, state.sources)
    manager.start()
    manager.add({"id": "gate", "url": "rtsp://127.0.0.1:9/g", "enabled": False})
    manager.remove("gate")
    assert "gate" in state.sources  # still configured for uploads
    with pytest.raises(ApiError):
        manager.remove("gate")
    manager.stop()


@pytest.fixture(scope="module")
def loaded_state(model_path: str) -> ServiceState:
    return ready_state(Settings(model=model_path, device="cpu"))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return street_video(tmp_path_factory.mktemp("video") / "street.mp4")


@pytest.fixture()
def fast_manager(loaded_state: ServiceState) -> Iterator[CameraManager]:
    """A manager with a 1 s camera timeout and quick retries."""
    with running_manager(loaded_state, timeout=TIMEOUT, reconnect_min=0.1, reconnect_max=0.3) as manager:
        yield manager


def settled(count: Callable[[], int]) -> int:
    """``count()`` once it reads the same three times in a row (a thread that was just joined may
    take a moment to leave /proc/self/task)."""
    readings = [count()]
    deadline = time.monotonic() + 10
    while (len(readings) < 3 or len(set(readings[-3:])) > 1) and time.monotonic() < deadline:
        time.sleep(0.1)
        readings.append(count())
    return readings[-1]


def shows(manager: CameraManager, camera_id: str, check: Callable[[dict[str, Any]], bool]) -> Callable[[], bool]:
    """For ``wait_for``: whether the camera's view passes ``check`` now."""
    return lambda: check(manager.get(camera_id))


def camera_series(state: ServiceState) -> list[tuple[str, dict[str, str]]]:
    """Every ``vision_camera_*`` sample with a camera label, as (sample name, labels)."""
    text = generate_latest(state.metrics.registry).decode()
    return [
        (name, dict(labels))
        for name, labels in parse_samples(text)
        if name.startswith("vision_camera_") and "camera" in dict(labels)
    ]


def test_camera_churn_leaks_no_threads_descriptors_or_series(
    loaded_state: ServiceState, fast_manager: CameraManager, video: Path
) -> None:
    """100 cameras added and removed one after another leave the process as they found it.

    Most read a looping video of street photographs; some are removed while their frames go
    through the detector, some once up, most while still opening; one in five points at RTSP or
    HTTP on a port of 127.0.0.1 where nothing listens (refused) and is removed while retrying.
    Afterwards no reader thread is left, the kernel's thread count and the open descriptors are
    back to where they were, and none of the removed cameras has a ``vision_camera_*`` series.
    No tolerance: OpenCV's FFmpeg capture keeps no process-wide thread or descriptor (its decoder
    threads and its sockets and files belong to the capture and end with ``release``).
    """
    manager = fast_manager
    refused = free_port()  # bound and closed again: connections to it are refused
    # Warm-up: one camera read and processed, so what the process creates once (FFmpeg's
    # libraries, the detector's and OpenCV's thread pools in the scheduler thread) is in the baseline.
    manager.add({"id": "warm-up", "url": str(video), "fps": 30, "loop": True})
    wait_for(lambda: manager.get("warm-up")["frames"]["processed"] >= 2, timeout=60, what="warm-up frames")
    manager.remove("warm-up")
    threads_before, fds_before = settled(os_thread_count), settled(open_fd_count)

    kinds = {"processing": 0, "up": 0, "opening": 0, "refused": 0}
    peak_threads = peak_fds = 0  # while a camera reads: the counts do see readers and captures
    for i in range(CYCLES):
        camera_id = f"churn-{i:03d}"
        if i % 5 == 2:
            scheme, path = ("rtsp", "stream") if i % 10 == 2 else ("http", "cam.mjpg")
            manager.add({"id": camera_id, "url": f"{scheme}://127.0.0.1:{refused}/{path}", "fps": 30})
            wait_for(shows(manager, camera_id, lambda v: v["reconnects"] >= 1), timeout=30, what="a retry")
            kinds["refused"] += 1
        else:
            manager.add({"id": camera_id, "url": str(video), "fps": 30, "loop": True})
            if i % 10 == 0:
                wait_for(shows(manager, camera_id, lambda v: v["frames"]["processed"] >= 1), timeout=30, what="a frame")
                kinds["processing"] += 1
            elif i % 10 == 5:
                wait_for(shows(manager, camera_id, lambda v: v["up"]), timeout=30, what="the camera to come up")
                kinds["up"] += 1
                peak_threads, peak_fds = max(peak_threads, os_thread_count()), max(peak_fds, open_fd_count())
            else:
                kinds["opening"] += 1
        manager.remove(camera_id)
        # The removal returns once the reader has ended.
        assert f"camera-{camera_id}" not in camera_threads()

    assert manager.ids() == []
    assert not [name for name in camera_threads() if name.startswith("camera-churn-")]
    deadline = time.monotonic() + 30  # joined threads leave /proc/self/task a moment later
    while os_thread_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.1)
    threads_after, fds_after = settled(os_thread_count), settled(open_fd_count)
    print(
        f"{kinds}: OS threads {threads_before} -> {threads_after} (up to {peak_threads} while reading), "
        f"open fds {fds_before} -> {fds_after} (up to {peak_fds})"
    )
    assert peak_threads > threads_before and peak_fds > fds_before
    assert threads_after == threads_before, f"OS threads {threads_before} -> {threads_after}"
    assert fds_after == fds_before, f"open file descriptors {fds_before} -> {fds_after}"
    assert not [s for s in camera_series(loaded_state) if s[1]["camera"].startswith("churn-")]
    assert not {f"churn-{i:03d}" for i in range(CYCLES)} & set(loaded_state.sources.ids())


def test_shutdown_stops_every_camera_thread_and_removes_the_series(
    model_path: str, video: Path, tmp_path: Path
) -> None:
    """When the service shuts down (the app's lifespan ends), every camera stops: reading ones,
    retrying ones, one stuck opening a stream that never answers, and the scheduler. Nothing of
    the cameras runs afterwards and their ``vision_camera_*`` series are gone."""
    refused = free_port()
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n"
        f"  - {{id: hall, url: {video}, fps: 10, loop: true}}\n"
        f"  - {{id: yard, url: {video}, fps: 10, loop: true}}\n"
        f"  - {{id: gate, url: 'rtsp://127.0.0.1:{refused}/stream', fps: 2}}\n"
        "  - {id: spare, url: 'rtsp://127.0.0.1:9/spare', enabled: false}\n"
    )
    settings = Settings(
        model=model_path,
        device="cpu",
        cameras_file=path,
        cameras_api="on",
        camera_timeout_seconds=TIMEOUT,
        camera_reconnect_min_seconds=0.1,
        camera_reconnect_max_seconds=0.3,
    )
    app = create_app(settings, load_model=False)
    state: ServiceState = app.state.service
    state.load_model()
    assert state.pipeline.ready, state.pipeline.load_error
    with StallingServer() as stalling:
        with TestClient(app) as api:
            response = api.post("/v1/cameras", json={"id": "dock", "url": stalling.url("rtsp", "stream"), "fps": 2})
            assert response.status_code == 201, response.text

            def busy() -> bool:
                views = {c["id"]: c for c in api.get("/v1/cameras").json()["cameras"]}
                return (
                    all(views[c]["up"] and views[c]["frames"]["processed"] >= 2 for c in ("hall", "yard"))
                    and views["gate"]["reconnects"] >= 1
                    and views["dock"]["status"] in ("connecting", "reconnecting")
                    and stalling.accepted >= 1
                )

            wait_for(busy, timeout=60, what="cameras reading, retrying and stuck opening")
            assert state.cameras.scheduler.running
            assert {"camera-hall", "camera-yard", "camera-gate", "camera-dock", "camera-scheduler"} <= set(
                camera_threads()
            )
            assert len(camera_series(state)) > 0
        # The lifespan has ended: CameraManager.stop() returned.
        assert camera_threads() == []
        assert not state.cameras.scheduler.running
        assert camera_series(state) == []
        assert not {"hall", "yard", "gate", "spare", "dock"} & set(state.sources.ids())
