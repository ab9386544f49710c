"""The engine: bytes or camera pixels -> frames -> quality and detections, with no side effects.

One interface, two implementations, chosen once at start-up by
:func:`vision_service.engine.factory.load_engine`:

* :class:`~vision_service.engine.host.HostEngine` (``host.py``): the strict CPU decoder
  (``decode.py``), :func:`quality.measure` and Ultralytics' own predict;
* :class:`~vision_service.engine.device.DeviceEngine` (``device.py``): JPEG decode, quality,
  letterbox, inference and NMS on the model's torch device (nvJPEG and the GPU on CUDA).

An engine makes :class:`Frame` objects (:meth:`Engine.decode` for uploaded bytes,
:meth:`Engine.from_host` for camera pixels) and turns a batch of its own frames into one
:class:`FrameResult` each (:meth:`Engine.run`). It records nothing and keeps no state across
calls: what happens to a result (metrics, drift windows, camera snapshots) is decided after it
succeeded, by the pipeline and its sinks (``vision_service/pipeline.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from quality import QualityReport
from vision_service.core.config import MAX_JPEG_SCANS
from vision_service.errors import ImageRejected
from vision_service.measurement import Detection, StageTimes

P = TypeVar("P")


@dataclass(frozen=True)
class DecodeLimits:
    """What an image may cost, checked before its pixels are decoded: bytes, width x height from its
    header, and for a JPEG its scans (each one a decoding pass over the whole image)."""

    max_bytes: int
    max_pixels: int
    max_scans: int = MAX_JPEG_SCANS


@dataclass(frozen=True)
class EngineOptions:
    """What every engine is told: decode limits, inference size and thresholds, quality analysis size."""

    limits: DecodeLimits
    image_size: int = 640
    confidence: float = 0.25
    iou: float = 0.7
    analysis_size: int = 640


@dataclass(frozen=True)
class Frame(Generic[P]):
    """One image to analyse: the engine's own pixels, their size, where they came from, what decoding cost.

    ``pixels`` is read only by the engine that made the frame (a host BGR array for the host
    engine, an RGB ``(3, H, W)`` tensor on the model's device for the device engine).
    """

    pixels: P
    width: int
    height: int
    source: str
    decode_seconds: float = 0.0


@dataclass(frozen=True)
class FrameResult:
    """What the engine found in one frame: its quality, its detections (frame pixels), time per stage,
    and its scene thumbnail (:func:`quality.scene.thumbnail`: host float32, longer side <= 64), which
    camera-health checks compare across frames."""

    width: int
    height: int
    quality: QualityReport
    detections: list[Detection]
    times: StageTimes
    scene: np.ndarray


@dataclass(frozen=True)
class Analysis:
    """The results of one :meth:`Engine.run`, in frame order, and the frames of each forward pass it made."""

    results: list[FrameResult]
    forward_passes: list[int]


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model, as ``vision_model_info`` and the API show it (bounded values)."""

    name: str  # file name, never a path
    device: str
    task: str
    format: str
    load_seconds: float


class Engine(Protocol[P]):
    """Turns uploads and camera pixels into frames, and frames into results. Not thread-safe:
    :meth:`run` is called from one thread (the pipeline's batcher); :meth:`decode` and
    :meth:`from_host` may run on other threads at the same time."""

    model: ModelInfo
    names: dict[int, str]  # the model's class names by class id

    def decode(self, images: Sequence[bytes], *, source: str) -> Iterator[Frame[P] | ImageRejected]:
        """One frame per image, in order, or the :class:`ImageRejected` naming why that image was refused.

        Lazy where the engine can be: the host engine decodes an image when the next one is asked
        for, so a caller can hand each frame on (and let it go) before the next is decoded.
        """
        ...

    def from_host(self, bgr: np.ndarray, *, source: str) -> Frame[P]:
        """A frame of host BGR ``(H, W, 3)`` uint8 pixels (a camera's)."""
        ...

    def run(self, frames: Sequence[Frame[P]]) -> Analysis:
        """Quality and detections of every frame, in order. Raises when the batch fails as a whole."""
        ...

    def thumbnail(self, frame: Frame[P], max_side: int) -> np.ndarray:
        """A host BGR ``(h, w, 3)`` uint8 copy of ``frame``, area-downscaled to :func:`thumbnail_size`.

        The one way pixels leave an engine after :meth:`run`: the pipeline calls it only for frames
        a keeper decided to keep (``vision_service.evidence``), while the frame is alive; the array
        returned owns its memory and refers to nothing of the frame (a device engine resizes on
        its device and copies back only the small image).
        """
        ...


def thumbnail_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` with the longer side at most ``max_side``, the aspect ratio kept; never enlarged."""
    scale = max_side / max(height, width)
    if scale >= 1:
        return height, width
    return max(round(height * scale), 1), max(round(width * scale), 1)


__all__ = [
    "Analysis",
    "DecodeLimits",
    "Engine",
    "EngineOptions",
    "Frame",
    "FrameResult",
    "ModelInfo",
    "thumbnail_size",
]
