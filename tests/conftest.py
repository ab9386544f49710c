"""Shared fixtures: real photographs, real weights where present, and a loaded app."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from ultralytics.utils import ASSETS

import quality
from quality.bench import load_bgr
from vision_service.core.config import Settings
from vision_service.engine import Engine
from vision_service.engine.factory import load_engine
from vision_service.measurement import Detection, Measurement, StageTimes
from vision_service.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
SHARED_MODEL = REPO.parent / "shared" / "models" / "yolo11n.pt"


def test_model_path() -> str:
    """Real YOLO11n weights from VISION_TEST_MODEL or ../shared; else the same network, random weights."""
    explicit = os.environ.get("VISION_TEST_MODEL")
    if explicit:
        return explicit
    return str(SHARED_MODEL) if SHARED_MODEL.is_file() else "yolo11n.yaml"


test_model_path.__test__ = False  # type: ignore[attr-defined]
# Property-based fuzz tests run briefly here; scripts/fuzz.py raises this for long runs.
FUZZ_EXAMPLES = int(os.environ.get("VISION_FUZZ_EXAMPLES", "150"))
REAL_WEIGHTS = not test_model_path().endswith(".yaml")


@pytest.fixture(scope="session")
def model_path() -> str:
    return test_model_path()


@pytest.fixture(scope="session")
def bus_bytes() -> bytes:
    return (ASSETS / "bus.jpg").read_bytes()


@pytest.fixture(scope="session")
def bus_bgr() -> np.ndarray:
    return load_bgr("bus.jpg")


@pytest.fixture(scope="session")
def zidane_bgr() -> np.ndarray:
    return load_bgr("zidane.jpg")


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def pil_bytes(image: object, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)  # type: ignore[attr-defined]
    return out.getvalue()


@pytest.fixture(scope="session")
def settings(model_path: str) -> Settings:
    return Settings(
        model=model_path,
        device="cpu",
        sources=["cam-a", "cam-b"],
        max_upload_bytes=4 * 1024 * 1024,
        max_image_pixels=12_000_000,
        max_batch_images=8,
    )


def _loaded_client(settings: Settings) -> Iterator[TestClient]:
    from vision_service.api.main import create_app

    app = create_app(settings, load_model=False)
    app.state.service.load_model()
    assert app.state.service.pipeline.ready, app.state.service.pipeline.load_error
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app with the model loaded and warm, shared by the API tests."""
    yield from _loaded_client(settings)


@pytest.fixture(scope="session")
def device_client(settings: Settings) -> Iterator[TestClient]:
    """The same app on the device engine: uploads decode with torchvision, not Pillow.

    On CUDA that is nvJPEG; here it is the same code on the CPU.
    """
    yield from _loaded_client(settings.model_copy(update={"device_path": "on"}))


@pytest.fixture(params=["client", "device_client"])
def each_client(request: pytest.FixtureRequest) -> TestClient:
    """Runs a test against both engines: the host engine (Pillow decode, Ultralytics) and the device engine."""
    return request.getfixturevalue(request.param)


def engine_for(model: str, **settings: object) -> Engine[Any]:
    """A loaded CPU engine, made by the service's own factory (``device_path="on"`` for the device engine)."""
    return load_engine(Settings(model=model, device="cpu", **settings))  # type: ignore[arg-type]


def pipeline_on(engine: Engine[Any], **options: Any) -> Pipeline:
    """A ready pipeline over ``engine``; options as :class:`Pipeline` takes them (defaults as the service's)."""
    defaults = Settings()
    options = {
        "max_pending": defaults.max_pending_frames,
        "max_batch": defaults.max_batch,
        "max_batch_wait": defaults.max_batch_wait_ms / 1000,
        "max_request_pixels": defaults.max_request_pixels,
        "max_pixels_in_flight": defaults.max_pixels_in_flight,
        **options,
    }
    pipeline = Pipeline(**options)
    pipeline.use(engine)
    return pipeline


class Clock:
    """A settable wall clock, for the parts that read time through a ``clock`` argument."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def measurement_of(image: np.ndarray, source: str = "cam", confidences: tuple[float, ...] = ()) -> Measurement:
    """What the pipeline records for ``image``: its real quality report, and one person per confidence given."""
    detections = [Detection(0, "person", c, (10.0, 10.0, 50.0, 90.0)) for c in confidences]
    report = quality.measure(image)
    return Measurement(source, image.shape[1], image.shape[0], report, detections, StageTimes(), "cpu")
