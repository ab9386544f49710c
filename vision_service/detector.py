"""The YOLO detector: loads any weights Ultralytics can load, offline, and runs inference."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vision_service.measurement import Detection

if TYPE_CHECKING:
    from vision_service.core.config import Settings

# Never let Ultralytics reach for the network (weights, fonts, version checks).
os.environ.setdefault("YOLO_OFFLINE", "1")

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".pt", ".onnx", ".tflite", ".engine", ".torchscript", ".yaml", ".yml")


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message names the path and the cause."""


@dataclass(frozen=True)
class FrameDetections:
    """Detections for one frame and the seconds Ultralytics spent per stage on it."""

    detections: list[Detection]
    preprocess: float
    inference: float
    postprocess: float


def resolve_device(device: str) -> str:
    """Turn 'auto' into 'cuda:0' when a CUDA GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


class Detector:
    """Wraps an Ultralytics model. ``load()`` once, then ``predict()`` from one thread at a time."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        image_size: int = 640,
        confidence: float = 0.25,
        iou: float = 0.7,
    ) -> None:
        self.model_path = model
        self.device = resolve_device(device)
        self.image_size = image_size
        self.confidence = confidence
        self.iou = iou
        self.half = self.device.startswith("cuda")
        self.names: dict[int, str] = {}
        self.format = Path(model).suffix.lstrip(".") or "unknown"
        self.task = "detect"
        self.load_seconds: float | None = None
        self._model: object | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Detector:
        """The detector the settings describe (not loaded yet)."""
        return cls(
            settings.model,
            device=settings.device,
            image_size=settings.image_size,
            confidence=settings.confidence,
            iou=settings.iou,
        )

    @property
    def name(self) -> str:
        """The model's file name, a bounded label value (never a client string)."""
        return Path(self.model_path).name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def ultralytics_model(self) -> Any:
        """The loaded ``ultralytics.YOLO`` object (for :mod:`vision_service.device_path`)."""
        if self._model is None:
            raise RuntimeError("the model is not loaded")
        return self._model

    def load(self) -> None:
        """Load the weights and run one warm-up inference; raise :class:`ModelLoadError` on failure."""
        path = Path(self.model_path)
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ModelLoadError(f"model {self.model_path!r}: unsupported file type; expected one of {WEIGHT_SUFFIXES}")
        is_config = path.suffix.lower() in (".yaml", ".yml")
        # Bare config names like 'yolo11n.yaml' resolve inside Ultralytics; weights must exist on disk.
        if not is_config and not path.is_file():
            raise ModelLoadError(
                f"model file not found: {path.resolve()} (set VISION_MODEL to a .pt, .onnx or .tflite file)"
            )
        started = time.perf_counter()
        try:
            from ultralytics import YOLO

            model = YOLO(str(path), task="detect")
            self.names = {int(k): str(v) for k, v in model.names.items()}
            self._model = model
            self._warm_up()
        except Exception as exc:
            self._model = None
            raise ModelLoadError(f"could not load model {path}: {type(exc).__name__}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s on %s in %.2f s", path, self.device, self.load_seconds)

    def _warm_up(self) -> None:
        # Two passes: the first builds kernels/caches, the second confirms steady state.
        frame = np.full((self.image_size, self.image_size, 3), 114, dtype=np.uint8)
        for _ in range(2):
            self.predict([frame])

    def _precision(self) -> dict[str, object]:
        """FP16 on CUDA. Newer Ultralytics name it ``quantize=16`` and warn at every call given ``half``."""
        from ultralytics.cfg import DEFAULT_CFG_DICT

        if "quantize" in DEFAULT_CFG_DICT:
            return {"quantize": 16 if self.half else None}
        return {"half": self.half}

    def predict(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        """Detect objects in BGR uint8 frames; boxes come back in each frame's own pixels."""
        if self._model is None:
            raise RuntimeError("Detector.predict called before load()")
        with self._lock:
            results = self._model.predict(  # type: ignore[attr-defined]
                frames,
                imgsz=self.image_size,
                conf=self.confidence,
                iou=self.iou,
                device=self.device,
                **self._precision(),
                verbose=False,
            )
        out: list[FrameDetections] = []
        for result in results:
            boxes = result.boxes
            classes = boxes.cls.int().tolist()
            confidences = boxes.conf.tolist()
            xyxy = boxes.xyxy.tolist()
            detections = [
                Detection(
                    class_id=c,
                    class_name=self.names.get(c, str(c)),
                    confidence=float(p),
                    box_xyxy=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                )
                for c, p, b in zip(classes, confidences, xyxy, strict=True)
            ]
            # Ultralytics reports the batch's per-image average in milliseconds.
            speed = result.speed
            out.append(
                FrameDetections(
                    detections=detections,
                    preprocess=speed.get("preprocess", 0.0) / 1000,
                    inference=speed.get("inference", 0.0) / 1000,
                    postprocess=speed.get("postprocess", 0.0) / 1000,
                )
            )
        return out
