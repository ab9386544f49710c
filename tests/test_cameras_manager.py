"""Runtime camera changes persist to the YAML file, and a failed write changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision_service.api.main import build_state
from vision_service.api.state import ServiceState
from vision_service.cameras.config import load_cameras
from vision_service.cameras.manager import CameraManager
from vision_service.core.config import Settings
from vision_service.errors import InputError


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
    assert [(c.id, c.fps) for c in load_cameras(path, allow_local=False)] == [("b", 0.5)]

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


def test_reserved_sources_stay_when_a_camera_of_that_name_goes(tmp_path: Path) -> None:
    state = build_state(Settings(model="yolo11n.yaml", device="cpu", sources=["gate"]))
    manager = CameraManager(state.pipeline, state.metrics, state.sources, reserved_sources=["gate", "upload"])
    manager.start()
    manager.add({"id": "gate", "url": "rtsp://127.0.0.1:9/g", "enabled": False})
    manager.remove("gate")
    assert "gate" in state.sources  # still configured for uploads
    with pytest.raises(InputError):
        manager.remove("gate")
    manager.stop()
