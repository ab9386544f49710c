"""The pipeline: bounded admission in front of the detector, and one Measurement per frame."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import encode_jpeg
from tests.infra import vision_service
from vision_service.detector import Detector
from vision_service.errors import InputError, Reason
from vision_service.measurement import Measurement
from vision_service.pipeline import PendingFrame, Pipeline


def test_admission_is_bounded_and_released() -> None:
    pipeline = Pipeline(Detector("yolo11n.yaml", device="cpu"), max_pending=2)
    with pipeline.admit(2):
        assert pipeline.pending == 2
        with pytest.raises(InputError) as info, pipeline.admit(1):
            pass
        assert info.value.reason is Reason.OVERLOADED
    assert pipeline.pending == 0
    with pipeline.admit(1):
        assert pipeline.pending == 1


def test_every_frame_reaches_every_sink_with_its_source(bus_bgr: np.ndarray, zidane_bgr: np.ndarray) -> None:
    detector = Detector("yolo11n.yaml", device="cpu", image_size=320)
    detector.load()
    seen: list[Measurement] = []
    pipeline = Pipeline(detector, sinks=[seen.append])
    out = pipeline.process([PendingFrame(bus_bgr, "cam-a", 0.002), PendingFrame(zidane_bgr, "cam-b")])
    assert [m.source for m in out] == ["cam-a", "cam-b"] == [m.source for m in seen]
    assert (out[0].width, out[0].height) == (810, 1080)
    assert out[0].times.decode == 0.002
    assert out[0].quality.brightness != out[1].quality.brightness


def test_a_device_decoded_frame_on_the_cpu_path_is_measured_like_its_pixels(bus_bgr: np.ndarray) -> None:
    # A frame may carry a device-decoded RGB tensor; Ultralytics' path measures its pixels the same.
    detector = Detector("yolo11n.yaml", device="cpu", image_size=320)
    detector.load()
    pipeline = Pipeline(detector)
    rgb_chw = torch.from_numpy(np.ascontiguousarray(bus_bgr[:, :, ::-1])).permute(2, 0, 1)
    from_tensor, from_array = pipeline.process([PendingFrame(rgb_chw, "cam-a"), PendingFrame(bus_bgr, "cam-a")])
    assert (from_tensor.width, from_tensor.height) == (810, 1080)
    assert from_tensor.quality == from_array.quality
    assert [d.box_xyxy for d in from_tensor.detections] == [d.box_xyxy for d in from_array.detections]


def test_saturated_service_answers_503_with_retry_after(tmp_path: Path, model_path: str, bus_bgr: np.ndarray) -> None:
    body = encode_jpeg(bus_bgr)
    statuses: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()
    env = {"VISION_MAX_PENDING_FRAMES": "1"}
    with vision_service(tmp_path, model=model_path, env=env) as base:

        def client() -> None:
            for _ in range(3):
                request = urllib.request.Request(f"{base}/v1/detect", data=body, headers={"content-type": "image/jpeg"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, header = response.status, None
                except urllib.error.HTTPError as exc:
                    status, header = exc.code, exc.headers.get("Retry-After")
                with lock:
                    statuses.append(status)
                    retry_after.append(header)

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
    assert set(statuses) <= {200, 503}
    assert 200 in statuses and 503 in statuses
    assert all(h == "1" for s, h in zip(statuses, retry_after, strict=True) if s == 503)
    assert 'reason="overloaded"' in metrics
