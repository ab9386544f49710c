"""The signals drift is measured on, and their values for one frame.

Every signal is a distribution over frames, except ``confidence``, which (like the
``vision_detection_confidence`` histogram) has one value per detection:

| signal | one value per | unit |
|---|---|---|
| ``brightness`` ... ``overexposed_ratio`` | frame | as in :class:`quality.QualityReport` |
| ``detections`` | frame | detections in the frame |
| ``confidence`` | detection | model confidence, 0..1 |

So the mean of a pooled signal is the same mean the Prometheus recording rules compute from
the histograms' ``_sum / _count``, and ``vision_baseline_mean`` can stand in for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from quality import REPORT_FIELDS, QualityReport
from vision_service.measurement import Detection, Measurement

QUALITY_SIGNALS: tuple[str, ...] = REPORT_FIELDS
DETECTION_SIGNALS: tuple[str, ...] = ("detections", "confidence")
SIGNALS: tuple[str, ...] = QUALITY_SIGNALS + DETECTION_SIGNALS

# One frame: each signal's values in that frame (one value, or one per detection).
FrameSignals = Mapping[str, tuple[float, ...]]


def frame_signals(report: QualityReport, detections: Sequence[Detection] | None = None) -> dict[str, tuple[float, ...]]:
    """The signal values of one frame; without ``detections`` (no detector ran) only the quality signals.

    Non-finite values are left out, so a degenerate frame cannot poison a distribution.
    """
    values: dict[str, tuple[float, ...]] = {}
    for name in QUALITY_SIGNALS:
        value = float(getattr(report, name))
        values[name] = (value,) if math.isfinite(value) else ()
    if detections is not None:
        values["detections"] = (float(len(detections)),)
        values["confidence"] = tuple(float(d.confidence) for d in detections)
    return values


def measurement_signals(m: Measurement) -> dict[str, tuple[float, ...]]:
    """The signal values of one processed frame (quality and detections)."""
    return frame_signals(m.quality, m.detections)


def pool(frames: Iterable[FrameSignals]) -> dict[str, np.ndarray]:
    """Each signal's values over ``frames``, as float arrays; signals without any value are left out."""
    pooled: dict[str, list[float]] = {}
    for frame in frames:
        for name, values in frame.items():
            if values:
                pooled.setdefault(name, []).extend(values)
    return {name: np.asarray(values, dtype=np.float64) for name, values in pooled.items()}
