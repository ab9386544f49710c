"""The last half hour of each source's signals, one row per second: what the live page and conditions read.

A pipeline sink (:meth:`SignalHistory.record`). Per source it keeps a ring of
:data:`HISTORY_SECONDS` one-second rows; each row holds the number of frames recorded in that
second and the sums of their quality signals, detections and detection confidences. Recording a
frame adds to the row of its second (O(1), no allocation per frame beyond one small vector); every
view is computed on request from these rows:

* :meth:`SignalHistory.stats`: means over the last N seconds (as Prometheus' ``_sum / _count``
  over a window), the median of the per-second sharpness means, frames and detections;
* :meth:`SignalHistory.series`: per-step means over the last minutes, for sparklines.

Memory is fixed per source: ``HISTORY_SECONDS x len(COLUMNS)`` floats (about 150 kB), allocated
when the source's first frame arrives and freed by :meth:`SignalHistory.forget`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from quality import REPORT_FIELDS
from vision_service.measurement import Measurement

#: Seconds of history kept per source: the longest window a condition reads (VisionNoDetections: 30m).
HISTORY_SECONDS = 1800
#: Columns of a row: frame count, the quality signals' sums, detections, confidence sum and count.
COLUMNS: tuple[str, ...] = ("frames", *REPORT_FIELDS, "detections", "confidence_sum", "confidence_count")
_COL = {name: index for index, name in enumerate(COLUMNS)}
#: Signals a series can show: the quality signals and detections per image.
SERIES_SIGNALS: tuple[str, ...] = (*REPORT_FIELDS, "detections")


@dataclass(frozen=True)
class WindowStats:
    """A source's frames over a window: counts, and means per frame (None without frames)."""

    seconds: int
    frames: int
    detections: int
    means: dict[str, float | None]  # each quality signal and 'detections' (per frame)
    confidence: float | None  # mean confidence per detection
    sharpness_median: float | None  # median of the per-second mean sharpness
    last_at: float | None  # wall time of the source's last recorded frame


class _Ring:
    """One source's rows; ``stamp[i]`` is the second row ``i`` holds (-1: empty)."""

    def __init__(self, seconds: int) -> None:
        self.stamp = np.full(seconds, -1, dtype=np.int64)
        self.sums = np.zeros((seconds, len(COLUMNS)), dtype=np.float64)
        self.last_at: float | None = None
        self.last: Measurement | None = None


class SignalHistory:
    """Per-second sums of every source's signals over the last :data:`HISTORY_SECONDS`. Thread-safe."""

    def __init__(self, seconds: int = HISTORY_SECONDS, *, clock: Callable[[], float] = time.time) -> None:
        if seconds < 1:
            raise ValueError(f"history must cover at least one second, got {seconds}")
        self.seconds = seconds
        self.clock = clock
        self._rings: dict[str, _Ring] = {}
        self._lock = threading.Lock()

    # -- gathering (the pipeline's sink) ------------------------------------------------------------

    def record(self, m: Measurement) -> None:
        """Add one processed frame to the row of the current second of its source."""
        now = self.clock()
        values = [1.0]
        for name in REPORT_FIELDS:
            value = float(getattr(m.quality, name))
            values.append(value if math.isfinite(value) else 0.0)
        confidences = [d.confidence for d in m.detections]
        values += [float(len(m.detections)), float(sum(confidences)), float(len(confidences))]
        second = int(now)
        with self._lock:
            ring = self._rings.get(m.source)
            if ring is None:
                ring = self._rings[m.source] = _Ring(self.seconds)
            row = second % self.seconds
            if ring.stamp[row] != second:
                ring.stamp[row] = second
                ring.sums[row] = 0.0
            ring.sums[row] += values
            ring.last_at = now
            ring.last = m

    def forget(self, source: str) -> None:
        """Drop a source's history (a removed camera)."""
        with self._lock:
            self._rings.pop(source, None)

    # -- views, computed on request -----------------------------------------------------------------

    def _rows(self, source: str, seconds: int, now: float) -> tuple[np.ndarray, np.ndarray, _Ring | None]:
        """(seconds, sums) of the rows of the last ``seconds`` seconds that hold frames, oldest first."""
        with self._lock:
            ring = self._rings.get(source)
            if ring is None:
                return np.empty(0, np.int64), np.empty((0, len(COLUMNS))), None
            stamp, sums = ring.stamp.copy(), ring.sums.copy()
        current = int(now)
        keep = (stamp > current - min(seconds, self.seconds)) & (stamp <= current) & (sums[:, 0] > 0)
        order = np.argsort(stamp[keep])
        return stamp[keep][order], sums[keep][order], ring

    def stats(self, source: str, seconds: int, *, now: float | None = None) -> WindowStats:
        """Counts and means of ``source`` over the last ``seconds`` seconds."""
        now = self.clock() if now is None else now
        _, rows, ring = self._rows(source, seconds, now)
        total = rows.sum(axis=0) if len(rows) else np.zeros(len(COLUMNS))
        frames = int(total[_COL["frames"]])
        means: dict[str, float | None] = {
            name: (float(total[_COL[name]] / frames) if frames else None) for name in SERIES_SIGNALS
        }
        count = total[_COL["confidence_count"]]
        confidence = float(total[_COL["confidence_sum"]] / count) if count else None
        sharpness = rows[:, _COL["sharpness"]] / rows[:, 0] if len(rows) else np.empty(0)
        return WindowStats(
            seconds=seconds,
            frames=frames,
            detections=int(total[_COL["detections"]]),
            means=means,
            confidence=confidence,
            sharpness_median=float(np.median(sharpness)) if sharpness.size else None,
            last_at=None if ring is None else ring.last_at,
        )

    def series(
        self, source: str, *, seconds: int = 600, step: int = 5, now: float | None = None
    ) -> dict[str, list[float | None]]:
        """Means per ``step`` seconds over the last ``seconds``: ``{"t": [...], <signal>: [...]}``.

        ``t`` is each step's start (Unix seconds); a step without frames is ``None`` in every signal,
        so a chart shows a gap rather than a line through it.
        """
        now = self.clock() if now is None else now
        step = max(1, step)
        end = (int(now) // step + 1) * step
        start = end - max(seconds, step)
        stamps, rows, _ = self._rows(source, end - start, now)
        inside = stamps >= start
        buckets = (end - start) // step
        sums = np.zeros((buckets, len(COLUMNS)))
        if inside.any():
            np.add.at(sums, (stamps[inside] - start) // step, rows[inside])
        frames = sums[:, 0]
        out: dict[str, list[float | None]] = {"t": [float(start + i * step) for i in range(buckets)]}
        for name in SERIES_SIGNALS:
            column = sums[:, _COL[name]]
            out[name] = [_round(column[i] / frames[i]) if frames[i] else None for i in range(buckets)]
        return out

    def last(self, source: str) -> tuple[Measurement, float] | None:
        """The last measurement recorded for ``source`` and its wall time."""
        with self._lock:
            ring = self._rings.get(source)
            if ring is None or ring.last is None or ring.last_at is None:
                return None
            return ring.last, ring.last_at

    def sources(self) -> list[str]:
        with self._lock:
            return sorted(self._rings)


def _round(value: float) -> float:
    return float(f"{value:.5g}")
