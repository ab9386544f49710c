"""Exports drift to Prometheus at scrape time: scores, window sizes, baseline means and regimes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vision_service.drift.frame_values import SIGNALS
from vision_service.drift.tracker import TESTS, DriftTracker


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    score = GaugeMetricFamily(
        "vision_drift_score",
        "Drift of a signal's rolling window in a regime against the same regime of the source's reference baseline "
        "(test=psi: population stability index; test=ks: Kolmogorov-Smirnov statistic D).",
        labels=["source", "signal", "test", "regime"],
    )
    window = GaugeMetricFamily(
        "vision_drift_window_size",
        "Frames in the source's rolling drift window of a regime.",
        labels=["source", "regime"],
    )
    mean = GaugeMetricFamily(
        "vision_baseline_mean",
        "Mean of a signal in the source's reference baseline, in the regime the source is in now "
        "(per image; per detection for confidence).",
        labels=["source", "signal"],
    )
    regime = GaugeMetricFamily(
        "vision_drift_regime",
        "1 for the regime of the source's latest frame, 0 for the baseline's other regimes.",
        labels=["source", "regime"],
    )
    return score, window, mean, regime


class DriftCollector(Collector):
    """Yields ``vision_drift_score``, ``vision_drift_window_size``, ``vision_baseline_mean`` and
    ``vision_drift_regime``.

    Scores are computed here, at scrape time, from the tracker's windows (cached per window state).
    """

    def __init__(self, tracker: DriftTracker) -> None:
        self.tracker = tracker

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only, so the registry can refuse duplicates without computing anything.
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        score, window, mean, regime = _families()
        for drift in sorted(self.tracker.drift(), key=lambda d: (d.source, d.regime)):
            window.add_metric([drift.source, drift.regime], drift.window_size)
            for signal in SIGNALS:
                for test in TESTS:
                    value = drift.scores.get((signal, test))
                    if value is not None:
                        score.add_metric([drift.source, signal, test, drift.regime], value)
        current = self.tracker.current_regimes()
        for source, baseline in sorted(self.tracker.baselines().items()):
            now = current.get(source)
            for name in sorted(set(baseline.regimes) | ({now} if now else set())):
                regime.add_metric([source, name], 1.0 if name == now else 0.0)
            reference = self.tracker.reference(source)
            if reference is None:
                continue
            for signal in SIGNALS:
                if signal in reference.samples:
                    mean.add_metric([source, signal], reference.mean(signal))
        yield score
        yield window
        yield mean
        yield regime
