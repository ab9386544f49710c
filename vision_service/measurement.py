"""What the pipeline records about one frame: plain data, no I/O, no metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from quality import QualityReport

# Brightness bands for "detection yield by input quality". Upper bounds, mean luma / 255.
BRIGHTNESS_BANDS: tuple[tuple[str, float], ...] = (
    ("dark", 0.15),
    ("dim", 0.30),
    ("normal", 0.70),
    ("bright", float("inf")),
)


def brightness_band(brightness: float) -> str:
    """Name the band a brightness in [0, 1] falls in (see :data:`BRIGHTNESS_BANDS`)."""
    for name, upper in BRIGHTNESS_BANDS:
        if brightness < upper:
            return name
    return BRIGHTNESS_BANDS[-1][0]


@dataclass(frozen=True)
class Detection:
    class_id: int
    class_name: str
    confidence: float
    box_xyxy: tuple[float, float, float, float]  # original image pixels

    def as_dict(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 4),
            "box_xyxy": [round(v, 1) for v in self.box_xyxy],
        }


@dataclass(frozen=True)
class StageTimes:
    """Seconds spent per pipeline stage for one frame."""

    decode: float = 0.0
    quality: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    def as_items(self) -> list[tuple[str, float]]:
        return [
            ("decode", self.decode),
            ("quality", self.quality),
            ("preprocess", self.preprocess),
            ("inference", self.inference),
            ("postprocess", self.postprocess),
        ]


@dataclass(frozen=True)
class Measurement:
    """One processed frame: where it came from, its quality, what the model saw, and how long it took.

    ``scene`` is the frame's scene thumbnail (:func:`quality.scene.thumbnail`, float32, longer side
    <= 64) that camera health compares across a camera's frames; None where no engine made one.
    """

    source: str
    width: int
    height: int
    quality: QualityReport
    detections: list[Detection]
    times: StageTimes
    device: str
    total_seconds: float = 0.0
    scene: np.ndarray | None = None

    @property
    def brightness_band(self) -> str:
        return brightness_band(self.quality.brightness)

    @property
    def mean_confidence(self) -> float | None:
        if not self.detections:
            return None
        return sum(d.confidence for d in self.detections) / len(self.detections)
