"""Conditions of a source: the alert rules' comparisons, evaluated by the service on its own data.

Each condition is the expression of one alert in ``compose/prometheus/rules/input_quality.yml``
without its ``for:`` duration, compared against the same threshold, read from the same file
(:mod:`vision_service.thresholds`). The alert fires once its condition has held for ``for:``;
the live page and ``/v1/sources`` show the condition as soon as it holds.

* ``low_light`` (VisionLowBrightness): mean brightness over 5 min < ``low_brightness_ratio``;
* ``noisy`` (VisionHighNoise): mean noise sigma over 5 min > ``high_noise_sigma``;
* ``blurry`` (VisionBlurryFrames): median of the per-second mean sharpness over 5 min
  < ``blurry_sharpness``;
* ``drift`` (VisionInputDrift): a PSI score > ``drift_psi`` or a KS score > ``drift_ks``, with a
  window of at least ``drift_min_window_size`` frames, in the regime the source is in now
  (twilight excepted, as in the alert);
* ``no_detections`` (VisionNoDetections): at least ``no_detections_min_frames`` frames in 30 min,
  none with a detection, from a source whose baseline averages at least
  ``no_detections_min_reference`` detections per image;
* ``low_confidence`` (VisionLowConfidence): mean confidence over 5 min
  < ``confidence_min_fraction_of_baseline`` x the baseline's mean confidence.

Differences from Prometheus, by construction: the service sees only its own frames (one replica
of a sharded deployment); the references of ``no_detections`` and ``low_confidence`` are the
source's drift baseline only, in the regime the source is in now (Prometheus falls back to the
same hour a day earlier), so a source
without a baseline never shows those two; ``blurry`` takes the median of per-second means (the
per-frame median when a source sends at most one frame per second).

:class:`ConditionMonitor` is a pipeline sink: at most once per second per source it evaluates the
conditions (drift scores at most every :data:`DRIFT_CHECK_SECONDS`) and remembers which hold and
since when, so the evidence keeper can tell, with one set comparison per frame, that a condition
has just begun.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vision_service.drift.baseline import Reference
from vision_service.drift.tracker import DriftTracker, SourceDrift
from vision_service.history import SignalHistory, WindowStats
from vision_service.measurement import Measurement
from vision_service.regimes import alerted
from vision_service.thresholds import Thresholds

#: Every condition, in the order the API lists them.
NAMES: tuple[str, ...] = ("low_light", "noisy", "blurry", "drift", "no_detections", "low_confidence")
#: The alert each condition is the expression of.
ALERTS: dict[str, str] = {
    "low_light": "VisionLowBrightness",
    "noisy": "VisionHighNoise",
    "blurry": "VisionBlurryFrames",
    "drift": "VisionInputDrift",
    "no_detections": "VisionNoDetections",
    "low_confidence": "VisionLowConfidence",
}
#: The windows of the recording rules the alerts read (``mean5m``) and of VisionNoDetections (30m).
SHORT_WINDOW_SECONDS = 300
LONG_WINDOW_SECONDS = 1800
#: How often the sink evaluates a source's conditions, and its drift scores (they cost milliseconds).
CHECK_SECONDS = 1.0
DRIFT_CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class Condition:
    """One condition that holds: its measured value, the threshold it crossed, and a sentence for people."""

    name: str
    value: float
    threshold: float
    detail: str
    signals: tuple[str, ...] = ()  # drift: the signals over their threshold

    @property
    def alert(self) -> str:
        return ALERTS[self.name]


def evaluate(
    thresholds: Thresholds,
    short: WindowStats,
    long: WindowStats,
    drift: SourceDrift | None,
    baseline: Reference | None,
) -> list[Condition]:
    """The conditions that hold for one source, from its last 5 and 30 minutes, drift and the baseline's
    reference for the regime it is in now. Pure."""
    t = thresholds
    found: list[Condition] = []
    brightness, noise = short.means.get("brightness"), short.means.get("noise_sigma")
    if brightness is not None and brightness < t.low_brightness_ratio:
        found.append(
            Condition(
                "low_light",
                brightness,
                t.low_brightness_ratio,
                f"mean brightness {brightness:.3f} over 5 min is below {t.low_brightness_ratio:g}",
            )
        )
    if noise is not None and noise > t.high_noise_sigma:
        found.append(
            Condition(
                "noisy",
                noise,
                t.high_noise_sigma,
                f"mean noise sigma {noise:.1f} grey levels over 5 min is above {t.high_noise_sigma:g}",
            )
        )
    sharpness = short.sharpness_median
    if sharpness is not None and sharpness < t.blurry_sharpness:
        found.append(
            Condition(
                "blurry",
                sharpness,
                t.blurry_sharpness,
                f"median sharpness {sharpness:.1f} over 5 min is below {t.blurry_sharpness:g}",
            )
        )
    # As VisionInputDrift: a twilight window (a transition) is shown, never a condition.
    if drift is not None and drift.window_size >= t.drift_min_window_size and alerted(drift.regime):
        over = {
            (signal, test): score
            for (signal, test), score in drift.scores.items()
            if score > (t.drift_psi if test == "psi" else t.drift_ks)
        }
        if over:
            (signal, test), score = max(over.items(), key=lambda item: item[1])
            limit = t.drift_psi if test == "psi" else t.drift_ks
            signals = tuple(sorted({s for s, _ in over}))
            found.append(
                Condition(
                    "drift",
                    score,
                    limit,
                    f"{test.upper()} of {signal} is {score:.3f} (above {limit:g}) over the last "
                    f"{drift.window_size} frames; drifting: {', '.join(signals)}",
                    signals,
                )
            )
    reference = _baseline_mean(baseline, "detections")
    if (
        reference is not None
        and reference >= t.no_detections_min_reference
        and long.frames >= t.no_detections_min_frames
        and long.detections == 0
    ):
        found.append(
            Condition(
                "no_detections",
                float(long.frames),
                t.no_detections_min_frames,
                f"{long.frames} frames in 30 min without a detection; the baseline averages {reference:.2f} per image",
            )
        )
    confidence, reference = short.confidence, _baseline_mean(baseline, "confidence")
    if confidence is not None and reference is not None:
        limit = reference * t.confidence_min_fraction_of_baseline
        if confidence < limit:
            found.append(
                Condition(
                    "low_confidence",
                    confidence,
                    limit,
                    f"mean confidence {confidence:.2f} over 5 min is below {limit:.2f} "
                    f"({t.confidence_min_fraction_of_baseline:g} x the baseline's {reference:.2f})",
                )
            )
    return found


def _baseline_mean(reference: Reference | None, signal: str) -> float | None:
    if reference is None or signal not in reference.samples:
        return None
    return reference.mean(signal)


@dataclass(frozen=True)
class SourceView:
    """What the API shows of one source's conditions, read once: its last 5 minutes, its drift in
    the regime it is in now, the conditions that hold, and since when each held at the last check."""

    short: WindowStats
    drift: SourceDrift | None
    holding: list[Condition]
    since: dict[str, float]


class ConditionMonitor:
    """The conditions of every source: evaluated on request, and watched as frames arrive (a sink)."""

    def __init__(
        self,
        thresholds: Thresholds,
        history: SignalHistory,
        drift: DriftTracker,
        *,
        check_seconds: float = CHECK_SECONDS,
        drift_check_seconds: float = DRIFT_CHECK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.thresholds = thresholds
        self.history = history
        self.drift = drift
        self.check_seconds = check_seconds
        self.drift_check_seconds = drift_check_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._checked: dict[str, float] = {}
        self._drift: dict[str, tuple[float, SourceDrift | None]] = {}
        self._active: dict[str, frozenset[str]] = {}
        self._since: dict[str, dict[str, float]] = {}

    def current(self, source: str, *, now: float | None = None) -> list[Condition]:
        """The conditions that hold for ``source`` now, from the data already kept."""
        return self.view(source, now=now).holding

    def view(self, source: str, *, now: float | None = None) -> SourceView:
        """The source's conditions now, with the windows and drift they were evaluated from (the API's view)."""
        now = self.clock() if now is None else now
        drift = self.drift.drift_of(source)
        short = self.history.stats(source, SHORT_WINDOW_SECONDS, now=now)
        return SourceView(short, drift, self._evaluate(source, now, short, drift), self.since(source))

    def _evaluate(self, source: str, now: float, short: WindowStats, drift: SourceDrift | None) -> list[Condition]:
        long = self.history.stats(source, LONG_WINDOW_SECONDS, now=now)
        return evaluate(self.thresholds, short, long, drift, self.drift.reference(source))

    # -- watching (the pipeline's sink) -------------------------------------------------------------

    def record(self, m: Measurement) -> None:
        """Re-evaluate the frame's source when its last check is older than ``check_seconds``."""
        now = self.clock()
        source = m.source
        with self._lock:
            if now - self._checked.get(source, float("-inf")) < self.check_seconds:
                return
            self._checked[source] = now
            checked_drift = self._drift.get(source)
        if checked_drift is None or now - checked_drift[0] >= self.drift_check_seconds:
            checked_drift = (now, self.drift.drift_of(source))
        short = self.history.stats(source, SHORT_WINDOW_SECONDS, now=now)
        holding = self._evaluate(source, now, short, checked_drift[1])
        names = frozenset(c.name for c in holding)
        with self._lock:
            self._drift[source] = checked_drift
            since = self._since.setdefault(source, {})
            for name in names - self._active.get(source, frozenset()):
                since[name] = now
            for name in set(since) - names:
                del since[name]
            self._active[source] = names

    def active(self, source: str) -> frozenset[str]:
        """The conditions that held at the source's last check (one dictionary lookup)."""
        return self._active.get(source, frozenset())

    def since(self, source: str) -> dict[str, float]:
        """When each condition that held at the last check began (wall time)."""
        with self._lock:
            return dict(self._since.get(source, {}))

    def forget(self, source: str) -> None:
        with self._lock:
            for table in (self._checked, self._drift, self._active, self._since):
                table.pop(source, None)
