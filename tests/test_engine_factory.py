"""The engine factory loads what Ultralytics can load, offline, picks the engine, and says clearly when it cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import engine_for
from vision_service.core.config import Settings
from vision_service.engine.device import DeviceEngine
from vision_service.engine.factory import ModelLoadError, load_engine, resolve_device
from vision_service.engine.host import HostEngine


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "yolo11n.pt"
    with pytest.raises(ModelLoadError, match=re.escape(str(missing))):
        load_engine(Settings(model=str(missing), device="cpu"))


def test_unloadable_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "broken.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"broken\.pt"):
        load_engine(Settings(model=str(junk), device="cpu"))


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unsupported file type"):
        load_engine(Settings(model=str(tmp_path / "model.zip"), device="cpu"))


def test_auto_device_is_cpu_without_cuda() -> None:
    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_the_engine_is_chosen_by_the_device_path_setting() -> None:
    # auto: the device engine on CUDA only, so on this CPU the host engine (Ultralytics' path).
    assert isinstance(engine_for("yolo11n.yaml", image_size=320), HostEngine)
    assert isinstance(engine_for("yolo11n.yaml", image_size=320, device_path="off"), HostEngine)
    assert isinstance(engine_for("yolo11n.yaml", image_size=320, device_path="on"), DeviceEngine)


def test_the_device_engine_runs_the_models_own_weights_not_a_copy() -> None:
    from ultralytics import YOLO

    loaded: list[object] = []
    original_init = YOLO.__init__

    def remember(self: YOLO, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)
        loaded.append(self)

    YOLO.__init__ = remember  # type: ignore[method-assign]
    try:
        engine = engine_for("yolo11n.yaml", image_size=320, device_path="on")
    finally:
        YOLO.__init__ = original_init  # type: ignore[method-assign]
    assert isinstance(engine, DeviceEngine)
    (yolo,) = loaded  # one model loaded, and the engine's module is that model's, fused in place
    assert engine.module is yolo.model
    weights = {p.data_ptr() for p in engine.module.parameters()}
    assert weights == {p.data_ptr() for p in yolo.model.parameters()}


def test_model_info_names_the_file_the_device_and_the_load_time() -> None:
    engine = engine_for("yolo11n.yaml", image_size=320)
    info = engine.model
    assert (info.name, info.device, info.task, info.format) == ("yolo11n.yaml", "cpu", "detect", "yaml")
    assert info.load_seconds > 0
    assert len(engine.names) == 80
