"""Per-source drift tracking: rolling windows, reference baselines (loaded or learned), scores on demand.

The pipeline calls :meth:`DriftTracker.record` for every frame (O(1): append to a deque under a
lock). Scores are computed only when asked for (at scrape time, by
:class:`vision_service.drift.collector.DriftCollector`), outside the lock, and cached until the
source's window or baseline changes, so a scrape costs O(window) per changed source and nothing
per frame.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vision_service.core.config import Settings
from vision_service.drift.baseline import Baseline, baseline_path, load_baselines, save_baseline
from vision_service.drift.frame_values import SIGNALS, FrameSignals, measurement_signals, pool
from vision_service.drift.scores import bin_fractions, ks_statistic, psi_from_fractions
from vision_service.drift.window import RollingWindow
from vision_service.measurement import Measurement

log = logging.getLogger(__name__)

TESTS: tuple[str, ...] = ("psi", "ks")
# How a learned baseline's origin begins (a built one names its files instead).
LEARNED_ORIGIN = "learned from the first"
# A signal is scored only when both the baseline and the window hold at least this many values
# of it (matters for `confidence`, which has none in frames without detections).
MIN_VALUES = 20


def detector_settings(settings: Settings) -> dict[str, Any]:
    """The settings a baseline's values depend on; recorded in the file and compared at load."""
    return {
        "model": Path(settings.model).name,
        "confidence": settings.confidence,
        "iou": settings.iou,
        "image_size": settings.image_size,
        "analysis_size": settings.analysis_size,
    }


def drift_scores(
    baseline: Baseline, current: Mapping[str, np.ndarray], *, min_values: int = MIN_VALUES
) -> dict[tuple[str, str], float]:
    """PSI and KS of each signal present in both samples with at least ``min_values`` values each."""
    scores: dict[tuple[str, str], float] = {}
    for signal in SIGNALS:
        reference = baseline.samples.get(signal)
        values = current.get(signal)
        if reference is None or values is None or reference.size < min_values or values.size < min_values:
            continue
        edges, expected = baseline.bins(signal)
        scores[(signal, "psi")] = psi_from_fractions(expected, bin_fractions(values, edges))
        scores[(signal, "ks")] = ks_statistic(reference, values)
    return scores


@dataclass(frozen=True)
class SourceDrift:
    """One source's window size and its drift scores by (signal, test)."""

    source: str
    window_size: int
    scores: Mapping[tuple[str, str], float]


class DriftTracker:
    """Rolling windows per source compared with each source's baseline. Thread-safe."""

    def __init__(
        self,
        *,
        window_frames: int = 500,
        learn_frames: int = 0,
        baseline_dir: Path | None = None,
        baselines: Mapping[str, Baseline] | None = None,
        settings_info: Mapping[str, Any] | None = None,
    ) -> None:
        self.window_frames = window_frames
        self.learn_frames = learn_frames
        self.baseline_dir = baseline_dir
        self.settings_info = dict(settings_info or {})
        self._lock = threading.Lock()
        self._baselines: dict[str, Baseline] = dict(baselines or {})
        self._windows: dict[str, RollingWindow] = {}
        self._learning: dict[str, list[FrameSignals]] = {}
        self._learned: set[str] = set()
        # source -> (window.seen, baseline) the result was computed for, and the result
        self._cache: dict[str, tuple[int, Baseline | None, SourceDrift]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftTracker:
        """A tracker with the baselines found in ``VISION_BASELINE_DIR`` (if set) loaded."""
        info = detector_settings(settings)
        baselines = load_baselines(settings.baseline_dir) if settings.baseline_dir is not None else {}
        for baseline in baselines.values():
            differs = {k: v for k, v in baseline.settings.items() if k in info and info[k] != v}
            if differs:
                log.warning(
                    "baseline of source %s was recorded with %s; the service now runs with %s: "
                    "detections and confidence may differ for that reason alone",
                    baseline.source,
                    differs,
                    {k: info[k] for k in differs},
                )
        return cls(
            window_frames=settings.drift_window_frames,
            learn_frames=settings.baseline_learn_frames,
            baseline_dir=settings.baseline_dir,
            baselines=baselines,
            settings_info=info,
        )

    # ------------------------------------------------------------ hot path

    def record(self, m: Measurement) -> None:
        """Pipeline sink: add one processed frame to its source's window (and learning buffer)."""
        self.observe(m.source, measurement_signals(m))

    def observe(self, source: str, frame: FrameSignals) -> None:
        """Add one frame's signal values to the window of ``source``."""
        learned: list[FrameSignals] | None = None
        with self._lock:
            window = self._windows.get(source)
            if window is None:
                window = self._windows[source] = RollingWindow(self.window_frames)
            window.append(frame)
            if self.learn_frames and source not in self._baselines and source not in self._learned:
                buffer = self._learning.setdefault(source, [])
                buffer.append(frame)
                if len(buffer) >= self.learn_frames:
                    learned = self._learning.pop(source)
                    self._learned.add(source)
        if learned is not None:
            self._learn(source, learned)

    def _learn(self, source: str, frames: list[FrameSignals]) -> None:
        try:
            baseline = Baseline.from_frames(
                source, frames, origin=f"{LEARNED_ORIGIN} {len(frames)} frames", settings=self.settings_info
            )
        except ValueError as exc:  # never fail the request that completed the buffer
            log.error("could not learn the baseline of source %s: %s", source, exc)
            return
        self.set_baseline(baseline, save=True)
        log.info("learned the baseline of source %s from %d frames", source, len(frames))

    def forget(self, source: str) -> None:
        """A source is gone (a removed camera): drop its window, and the baseline it learned (memory and disk).

        A baseline built by the operator (``vision-service baseline build``) stays: it was made for
        that id on purpose. A learned one described that camera's scene, not the next one's.
        """
        with self._lock:
            self._windows.pop(source, None)
            self._learning.pop(source, None)
            self._learned.discard(source)
            self._cache.pop(source, None)
            baseline = self._baselines.get(source)
            learned = baseline is not None and baseline.origin.startswith(LEARNED_ORIGIN)
            if learned:
                del self._baselines[source]
        if learned and self.baseline_dir is not None:
            baseline_path(self.baseline_dir, source).unlink(missing_ok=True)
            log.info("removed the learned baseline of source %s", source)

    # ------------------------------------------------------------ baselines

    def set_baseline(self, baseline: Baseline, *, save: bool = False) -> None:
        """Use ``baseline`` for its source from now on; with ``save``, also write it to the baseline dir."""
        with self._lock:
            self._baselines[baseline.source] = baseline
        if not save:
            return
        if self.baseline_dir is None:
            log.warning("VISION_BASELINE_DIR is not set: the baseline of %s is kept in memory only", baseline.source)
            return
        path = baseline_path(self.baseline_dir, baseline.source)
        try:
            save_baseline(baseline, path)
        except OSError as exc:
            log.error("could not write the baseline of %s to %s: %s (kept in memory)", baseline.source, path, exc)
        else:
            log.info("wrote the baseline of source %s to %s", baseline.source, path)

    def baseline(self, source: str) -> Baseline | None:
        with self._lock:
            return self._baselines.get(source)

    def baselines(self) -> dict[str, Baseline]:
        with self._lock:
            return dict(self._baselines)

    # ------------------------------------------------------------ scores

    def drift(self) -> list[SourceDrift]:
        """Window size and drift scores of every source with a window (scores only with a baseline)."""
        with self._lock:
            pending = [
                (source, window.seen, window.snapshot(), self._baselines.get(source))
                for source, window in self._windows.items()
            ]
            cache = dict(self._cache)
        return [
            self._scored(source, seen, frames, baseline, cache.get(source))
            for source, seen, frames, baseline in pending
        ]

    def drift_of(self, source: str) -> SourceDrift | None:
        """Window size and drift scores of one source, None when it has no window (cached like :meth:`drift`)."""
        with self._lock:
            window = self._windows.get(source)
            if window is None:
                return None
            seen, frames, baseline = window.seen, window.snapshot(), self._baselines.get(source)
            cached = self._cache.get(source)
        return self._scored(source, seen, frames, baseline, cached)

    def _scored(
        self,
        source: str,
        seen: int,
        frames: list[FrameSignals],
        baseline: Baseline | None,
        cached: tuple[int, Baseline | None, SourceDrift] | None,
    ) -> SourceDrift:
        if cached is not None and cached[0] == seen and cached[1] is baseline:
            return cached[2]
        scores = drift_scores(baseline, pool(frames)) if baseline is not None else {}
        result = SourceDrift(source=source, window_size=len(frames), scores=scores)
        with self._lock:
            self._cache[source] = (seen, baseline, result)
        return result
