"""The detector loads what Ultralytics can load, offline, and says clearly when it cannot."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_MODEL
from vision_service.detector import Detector, ModelLoadError, resolve_device

TFLITE = Path(__import__("os").environ.get("VISION_TEST_TFLITE", SHARED_MODEL.with_name("yolo11n_int8.tflite")))


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "yolo11n.pt"
    with pytest.raises(ModelLoadError, match=re.escape(str(missing))):
        Detector(str(missing), device="cpu").load()


def test_unloadable_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "broken.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"broken\.pt"):
        Detector(str(junk), device="cpu").load()


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unsupported file type"):
        Detector(str(tmp_path / "model.zip"), device="cpu").load()


def test_auto_device_is_cpu_without_cuda() -> None:
    import torch

    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_model_yaml_builds_random_weights_offline_and_predicts(bus_bgr: np.ndarray) -> None:
    detector = Detector("yolo11n.yaml", device="cpu", image_size=320)
    detector.load()
    assert detector.loaded and detector.load_seconds is not None
    assert len(detector.names) == 80
    (result,) = detector.predict([bus_bgr])
    assert result.inference > 0
    for det in result.detections:
        assert 0 <= det.box_xyxy[0] <= det.box_xyxy[2] <= bus_bgr.shape[1]


@pytest.mark.skipif(not TFLITE.is_file(), reason=f"no INT8 TFLite export at {TFLITE}")
def test_int8_tflite_export_finds_the_bus_and_people(bus_bgr: np.ndarray) -> None:
    detector = Detector(str(TFLITE), device="cpu")
    detector.load()
    (result,) = detector.predict([bus_bgr])
    names = [d.class_name for d in result.detections]
    assert "bus" in names and names.count("person") >= 3
