"""The one place an engine is made: load the weights Ultralytics can load, offline, then pick the engine.

The service, ``vision-service baseline build`` and the benchmark scripts all call
:func:`load_engine`, so a baseline is measured by the same engine as the live frames it is
compared with.

Which engine (``VISION_DEVICE_PATH``): ``auto`` takes the device engine on CUDA and the host
engine on the CPU (there Ultralytics' own path is faster); ``on`` takes the device engine
wherever the model has a torch module; ``off`` always the host engine. Models without a torch
module (ONNX, TFLite, TensorRT) always run on the host engine, with a warning when the device
engine was asked for.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision_service.engine import DecodeLimits, Engine, EngineOptions, ModelInfo
from vision_service.engine.device import DeviceEngine
from vision_service.engine.host import HostEngine

if TYPE_CHECKING:
    from vision_service.core.config import Settings

# Never let Ultralytics reach for the network (weights, fonts, version checks).
os.environ.setdefault("YOLO_OFFLINE", "1")

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".pt", ".onnx", ".tflite", ".engine", ".torchscript", ".yaml", ".yml")


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message names the path and the cause."""


def resolve_device(device: str) -> str:
    """Turn 'auto' into 'cuda:0' when a CUDA GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def model_format(model: str) -> str:
    """The model's format as its file suffix ('pt', 'onnx', 'yaml', ...)."""
    return Path(model).suffix.lstrip(".").lower() or "unknown"


def load_yolo(model: str) -> Any:
    """``ultralytics.YOLO`` for weights on disk or a bare model ``.yaml``; raise :class:`ModelLoadError`."""
    path = Path(model)
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelLoadError(f"model {model!r}: unsupported file type; expected one of {WEIGHT_SUFFIXES}")
    # Bare config names like 'yolo11n.yaml' resolve inside Ultralytics; weights must exist on disk.
    if path.suffix.lower() not in (".yaml", ".yml") and not path.is_file():
        raise ModelLoadError(
            f"model file not found: {path.resolve()} (set VISION_MODEL to a .pt, .onnx or .tflite file)"
        )
    try:
        from ultralytics import YOLO

        return YOLO(str(path), task="detect")
    except Exception as exc:
        raise ModelLoadError(f"could not load model {path}: {type(exc).__name__}: {exc}") from exc


def wants_device_engine(mode: str, device: str) -> bool:
    """Whether ``VISION_DEVICE_PATH`` asks for the device engine on ``device``."""
    return mode == "on" or (mode == "auto" and device.startswith("cuda"))


def load_engine(settings: Settings) -> Engine[Any]:
    """The engine the settings describe, its model loaded and warmed up; raise :class:`ModelLoadError`."""
    started = time.perf_counter()
    device = resolve_device(settings.device)
    yolo = load_yolo(settings.model)
    info = ModelInfo(
        name=Path(settings.model).name,
        device=device,
        task="detect",
        format=model_format(settings.model),
        load_seconds=0.0,
    )
    try:
        engine = _choose(yolo, info, settings)
        engine.warm_up()
    except Exception as exc:
        raise ModelLoadError(f"could not load model {settings.model}: {type(exc).__name__}: {exc}") from exc
    engine.model = replace(info, load_seconds=time.perf_counter() - started)
    log.info("loaded %s on %s in %.2f s (%s)", settings.model, device, engine.model.load_seconds, type(engine).__name__)
    return engine


def _choose(yolo: Any, info: ModelInfo, settings: Settings) -> HostEngine | DeviceEngine:
    options = EngineOptions(
        limits=DecodeLimits(settings.max_upload_bytes, settings.max_image_pixels, settings.max_jpeg_scans),
        image_size=settings.image_size,
        confidence=settings.confidence,
        iou=settings.iou,
        analysis_size=settings.analysis_size,
    )
    if wants_device_engine(settings.device_path, info.device):
        try:
            return DeviceEngine.from_yolo(yolo, info, options)
        except ValueError as exc:  # no torch module, or a head it cannot run
            log.warning("%s: using the host engine", exc)
    return HostEngine(yolo, info, options)
