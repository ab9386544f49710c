"""Per-source drift tracking: rolling windows per regime, reference baselines (loaded or learned), scores on demand.

The pipeline calls :meth:`DriftTracker.record` for every frame: the source's baseline rule puts
the frame in a regime (``all`` without a rule; see :mod:`vision_service.regimes`) and the frame is
appended to that regime's window (O(1), under a lock). Scores compare each regime's window with
the same regime of the baseline. They are computed only when asked for (at scrape time, by
:class:`vision_service.drift.collector.DriftCollector`), outside the lock, and cached until the
window or the baseline changes, so a scrape costs O(window) per changed window and nothing per frame.

A regime's window is reported while the regime is *current*: while it holds at least one of the
source's last ``window_frames / 10`` frames (50 by default). The day's window goes quiet soon
after dusk instead of repeating dusk's last scores into the night, while frames that alternate
between two regimes at their boundary keep both reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quality import QualityReport
from vision_service.core.config import Settings
from vision_service.drift.baseline import Baseline, Reference, baseline_path, load_baselines, save_baseline
from vision_service.drift.frame_values import SIGNALS, FrameSignals, measurement_signals, pool
from vision_service.drift.scores import bin_fractions, ks_statistic, psi_from_fractions
from vision_service.drift.window import RollingWindow
from vision_service.measurement import Measurement
from vision_service.regimes import ALL, DEFAULT_RULE, RegimeRule

log = logging.getLogger(__name__)

TESTS: tuple[str, ...] = ("psi", "ks")
# How a learned baseline's origin begins (a built one names its files instead).
LEARNED_ORIGIN = "learned from the first"
# A regime is current while it holds one of the source's last window_frames / RECENT_FRACTION frames.
RECENT_FRACTION = 10
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
    reference: Reference, current: Mapping[str, np.ndarray], *, min_values: int = MIN_VALUES
) -> dict[tuple[str, str], float]:
    """PSI and KS of each signal present in both samples with at least ``min_values`` values each."""
    scores: dict[tuple[str, str], float] = {}
    for signal in SIGNALS:
        expected_values = reference.samples.get(signal)
        values = current.get(signal)
        if expected_values is None or values is None or expected_values.size < min_values or values.size < min_values:
            continue
        edges, expected = reference.bins(signal)
        scores[(signal, "psi")] = psi_from_fractions(expected, bin_fractions(values, edges))
        scores[(signal, "ks")] = ks_statistic(expected_values, values)
    return scores


def _regime_reference(baseline: Baseline | None, regime: str) -> Reference | None:
    """The baseline's reference for ``regime``; None without a baseline or a reference for that regime."""
    return None if baseline is None else baseline.regimes.get(regime)


@dataclass(frozen=True)
class SourceDrift:
    """One source's window in one regime: its size and its drift scores by (signal, test)."""

    source: str
    regime: str
    window_size: int
    scores: Mapping[tuple[str, str], float]


class DriftTracker:
    """Rolling windows per source and regime compared with each source's baseline. Thread-safe.

    ``clock`` gives Unix time (for hour-of-day regimes); tests pass their own.
    """

    def __init__(
        self,
        *,
        window_frames: int = 500,
        learn_frames: int = 0,
        baseline_dir: Path | None = None,
        baselines: Mapping[str, Baseline] | None = None,
        settings_info: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_frames = window_frames
        # A regime's window is reported while one of the source's last `recent_frames` frames is in it.
        self.recent_frames = max(1, window_frames // RECENT_FRACTION)
        self.learn_frames = learn_frames
        self.baseline_dir = baseline_dir
        self.settings_info = dict(settings_info or {})
        self.clock = clock
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one baseline file write at a time, outside `_lock`
        self._baselines: dict[str, Baseline] = dict(baselines or {})
        self._windows: dict[tuple[str, str], RollingWindow] = {}
        self._frames: dict[str, int] = {}  # frames recorded per source
        self._last: dict[tuple[str, str], int] = {}  # the source's frame count at the regime's last frame
        self._current: dict[str, str] = {}  # the regime of each source's latest frame
        self._learning: dict[tuple[str, str], list[FrameSignals]] = {}
        self._learned: set[tuple[str, str]] = set()
        # (source, regime) -> (window.seen, reference) the result was computed for, and the result
        self._cache: dict[tuple[str, str], tuple[int, Reference | None, SourceDrift]] = {}

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

    def rule(self, source: str) -> RegimeRule | None:
        """The rule that sorts the source's frames: its baseline's; the default while it learns one; else none."""
        baseline = self._baselines.get(source)
        if baseline is not None:
            return baseline.rule
        return DEFAULT_RULE if self.learn_frames else None

    def regime_of(self, source: str, report: QualityReport) -> str:
        """The regime of a frame of ``source`` with this quality report, taken now (:attr:`clock`'s
        local hour): by :meth:`rule`, ``all`` without one."""
        rule = self.rule(source)
        if rule is None:
            return ALL
        hour = time.localtime(self.clock()).tm_hour if rule.hours else None
        return rule.regime(report, hour)

    def record(self, m: Measurement) -> None:
        """Pipeline sink: add one processed frame to its source's window of its regime (and learning buffer)."""
        self.observe(m.source, measurement_signals(m), self.regime_of(m.source, m.quality))

    def observe(self, source: str, frame: FrameSignals, regime: str = ALL) -> None:
        """Add one frame's signal values to the window of ``source`` in ``regime``."""
        learned: list[FrameSignals] | None = None
        key = (source, regime)
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = RollingWindow(self.window_frames)
            window.append(frame)
            count = self._frames[source] = self._frames.get(source, 0) + 1
            self._last[key] = count
            self._current[source] = regime
            if self._should_learn(source, regime):
                buffer = self._learning.setdefault(key, [])
                buffer.append(frame)
                if len(buffer) >= self.learn_frames:
                    learned = self._learning.pop(key)
                    self._learned.add(key)
        if learned is not None:
            self._learn(source, regime, learned)

    def _should_learn(self, source: str, regime: str) -> bool:
        """Learning on, and the source has no baseline yet, or a regime rule without this regime yet."""
        if not self.learn_frames or (source, regime) in self._learned:
            return False
        baseline = self._baselines.get(source)
        return baseline is None or (baseline.rule is not None and regime not in baseline.regimes)

    def _learn(self, source: str, regime: str, frames: list[FrameSignals]) -> None:
        try:
            reference = Reference.from_frames(frames)
        except ValueError as exc:  # never fail the request that completed the buffer
            log.error("could not learn the baseline of source %s (%s): %s", source, regime, exc)
            return
        # Read, merge and replace under one lock: two regimes learned at once must both be kept.
        with self._lock:
            if (source, regime) not in self._learned:
                return  # the source was forgotten while its reference was computed
            current = self._baselines.get(source)
            if current is None:
                self._baselines[source] = Baseline(
                    source=source,
                    regimes={regime: reference},
                    rule=None if regime == ALL else DEFAULT_RULE,
                    origin=f"{LEARNED_ORIGIN} {len(frames)} frames of each regime",
                    settings=self.settings_info,
                )
            else:
                self._baselines[source] = current.with_regime(regime, reference)
        self._save(source)
        log.info("learned the %s baseline of source %s from %d frames", regime, source, len(frames))

    def forget(self, source: str) -> None:
        """A source is gone (a removed camera): drop its windows, and the baseline it learned (memory and disk).

        A baseline built by the operator (``vision-service baseline build``) stays: it was made for
        that id on purpose. A learned one described that camera's scene, not the next one's.
        """
        with self._lock:
            for table in (self._windows, self._learning, self._last, self._cache):
                for key in [key for key in table if key[0] == source]:
                    del table[key]
            self._learned = {key for key in self._learned if key[0] != source}
            self._frames.pop(source, None)
            self._current.pop(source, None)
            baseline = self._baselines.get(source)
            learned = baseline is not None and baseline.origin.startswith(LEARNED_ORIGIN)
            if learned:
                del self._baselines[source]
        if learned and self.baseline_dir is not None:
            with self._save_lock:  # after a write in progress, which read the baseline before it was dropped
                baseline_path(self.baseline_dir, source).unlink(missing_ok=True)
            log.info("removed the learned baseline of source %s", source)

    # ------------------------------------------------------------ baselines

    def set_baseline(self, baseline: Baseline, *, save: bool = False) -> None:
        """Use ``baseline`` for its source from now on; with ``save``, also write it to the baseline dir."""
        with self._lock:
            self._baselines[baseline.source] = baseline
        if save:
            self._save(baseline.source)

    def _save(self, source: str) -> None:
        """Write the source's baseline as it is now to the baseline dir (outside ``_lock``). Writes are
        serialised and each takes the latest baseline, so the file ends as the last one in memory."""
        if self.baseline_dir is None:
            log.warning("VISION_BASELINE_DIR is not set: the baseline of %s is kept in memory only", source)
            return
        path = baseline_path(self.baseline_dir, source)
        with self._save_lock:
            baseline = self.baseline(source)
            if baseline is None:  # forgotten meanwhile
                return
            try:
                save_baseline(baseline, path)
            except OSError as exc:
                log.error("could not write the baseline of %s to %s: %s (kept in memory)", source, path, exc)
            else:
                log.info("wrote the baseline of source %s to %s", source, path)

    def baseline(self, source: str) -> Baseline | None:
        with self._lock:
            return self._baselines.get(source)

    def baselines(self) -> dict[str, Baseline]:
        with self._lock:
            return dict(self._baselines)

    def reference(self, source: str) -> Reference | None:
        """The source's reference for the regime it is in now (before its first frame: a single
        regime's), None without a baseline or a reference for that regime."""
        with self._lock:
            baseline = self._baselines.get(source)
            regime = self._current.get(source)
        if regime is not None:
            return _regime_reference(baseline, regime)
        if baseline is None or len(baseline.regimes) != 1:
            return None
        return next(iter(baseline.regimes.values()))

    def current_regimes(self) -> dict[str, str]:
        """The regime of each source's latest frame."""
        with self._lock:
            return dict(self._current)

    # ------------------------------------------------------------ scores

    def drift(self) -> list[SourceDrift]:
        """Window size and drift scores of every current regime of every source (scores only with a
        reference for that regime)."""
        with self._lock:
            pending = []
            for (source, regime), window in self._windows.items():
                if self._last[(source, regime)] <= self._frames[source] - self.recent_frames:
                    continue  # not current: none of the source's recent frames is in this regime
                reference = _regime_reference(self._baselines.get(source), regime)
                pending.append((source, regime, window.seen, window.snapshot(), reference))
            cache = dict(self._cache)
        return [
            self._scored(source, regime, seen, frames, reference, cache.get((source, regime)))
            for source, regime, seen, frames, reference in pending
        ]

    def drift_of(self, source: str) -> SourceDrift | None:
        """Window size and drift scores of one source in the regime it is in now (its latest frame's),
        None when it has no window (cached like :meth:`drift`)."""
        with self._lock:
            regime = self._current.get(source)
            window = None if regime is None else self._windows.get((source, regime))
            if regime is None or window is None:
                return None
            reference = _regime_reference(self._baselines.get(source), regime)
            seen, frames = window.seen, window.snapshot()
            cached = self._cache.get((source, regime))
        return self._scored(source, regime, seen, frames, reference, cached)

    def _scored(
        self,
        source: str,
        regime: str,
        seen: int,
        frames: list[FrameSignals],
        reference: Reference | None,
        cached: tuple[int, Reference | None, SourceDrift] | None,
    ) -> SourceDrift:
        if cached is not None and cached[0] == seen and cached[1] is reference:
            return cached[2]
        scores = drift_scores(reference, pool(frames)) if reference is not None else {}
        result = SourceDrift(source=source, regime=regime, window_size=len(frames), scores=scores)
        with self._lock:
            self._cache[(source, regime)] = (seen, reference, result)
        return result
