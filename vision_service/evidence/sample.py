"""One kept frame's record: where and when it was seen, its numbers, its detections, the slots it fills.

Stored as JSON beside its JPEG (``<dir>/<source>/<id>.json``) by the disk store, and returned by
``/v1/sources/{id}/samples``. Ids are random and opaque (:func:`new_id`); an id a client sends is
checked against :data:`SAMPLE_ID` before it is looked up, and never becomes a path.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quality import REPORT_FIELDS
from vision_service.core.config import SOURCE_ID_PATTERN

FORMAT = "vision-service-evidence/1"
#: An opaque sample id: 16 lower-case hex digits (64 random bits).
SAMPLE_ID = re.compile(r"^[0-9a-f]{16}$")
#: A slot: ``<kind>.<n>``, e.g. ``darkest.0`` (the first half-window), ``low_light.2`` (the third onset).
SLOT = re.compile(r"^[a-z_]{1,32}\.[0-9]{1,2}$")
#: Detections kept per sample (the model's own cap is 300; a frame with more is a crowd either way).
MAX_DETECTIONS = 300


class SampleError(ValueError):
    """A sample record is malformed."""


def new_id() -> str:
    return secrets.token_hex(8)


def kind_of(slot: str) -> str:
    """``darkest.1`` -> ``darkest``."""
    return slot.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Sample:
    """A kept frame. ``width``/``height`` are the frame's, ``image_width``/``image_height`` the JPEG's."""

    id: str
    source: str
    time: float  # Unix time the frame was recorded
    slots: tuple[str, ...]
    width: int
    height: int
    image_width: int
    image_height: int
    quality: Mapping[str, float]
    mean_confidence: float | None
    detections: tuple[Mapping[str, Any], ...]
    conditions: tuple[str, ...] = ()  # conditions holding for the source when it was kept
    bytes: int = 0  # JPEG size, set by the store

    def __post_init__(self) -> None:
        if not SAMPLE_ID.match(self.id):
            raise SampleError(f"sample id {self.id!r} is not 16 hex digits")
        if not SOURCE_ID_PATTERN.match(self.source):
            raise SampleError(f"source {self.source!r} is not a valid source id")
        if not self.slots or not all(SLOT.match(slot) for slot in self.slots):
            raise SampleError(f"slots {self.slots!r} must be one or more '<kind>.<n>'")
        if not math.isfinite(self.time):
            raise SampleError("time must be a finite number")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(kind_of(slot) for slot in self.slots))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "source": self.source,
            "time": self.time,
            "slots": list(self.slots),
            "width": self.width,
            "height": self.height,
            "image_width": self.image_width,
            "image_height": self.image_height,
            "bytes": self.bytes,
            "quality": dict(self.quality),
            "mean_confidence": self.mean_confidence,
            "detections": [dict(d) for d in self.detections],
            "conditions": list(self.conditions),
        }

    @classmethod
    def from_json(cls, data: Any) -> Sample:
        """Read :meth:`to_json` output back; raise :class:`SampleError` when it is not a sample record."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SampleError(f"not a {FORMAT} record")
        try:
            # A record written before a signal existed (colourfulness) lacks it: keep what it has.
            recorded = data["quality"]
            quality = {name: float(recorded[name]) for name in REPORT_FIELDS if name in recorded}
            if not quality:
                raise SampleError("the record has no quality signal")
            confidence = data.get("mean_confidence")
            detections = data.get("detections") or []
            if not isinstance(detections, list) or len(detections) > MAX_DETECTIONS:
                raise SampleError("detections must be a list of at most 300 objects")
            return cls(
                id=str(data["id"]),
                source=str(data["source"]),
                time=float(data["time"]),
                slots=tuple(str(slot) for slot in data["slots"]),
                width=int(data["width"]),
                height=int(data["height"]),
                image_width=int(data["image_width"]),
                image_height=int(data["image_height"]),
                quality=quality,
                mean_confidence=None if confidence is None else float(confidence),
                detections=tuple(_detection(d) for d in detections),
                conditions=tuple(str(c) for c in data.get("conditions") or []),
                bytes=int(data.get("bytes", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SampleError):
                raise
            raise SampleError(f"malformed sample record: {type(exc).__name__}: {exc}") from None


def _detection(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SampleError("a detection must be an object")
    box = [float(v) for v in data["box_xyxy"]]
    if len(box) != 4:
        raise SampleError("box_xyxy must hold four numbers")
    return {
        "class_id": int(data["class_id"]),
        "class_name": str(data["class_name"])[:64],
        "confidence": float(data["confidence"]),
        "box_xyxy": box,
    }
