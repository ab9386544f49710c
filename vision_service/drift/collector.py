"""Exports drift to Prometheus at scrape time: scores, window sizes and baseline means."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vision_service.drift.frame_values import SIGNALS
from vision_service.drift.tracker import TESTS, DriftTracker


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    score = GaugeMetricFamily(
        "vision_drift_score",
        "Drift of a signal's rolling window against the source's reference baseline "
        "(test=psi: population stability index; test=ks: Kolmogorov-Smirnov statistic D).",
        labels=["source", "signal", "test"],
    )
    window = GaugeMetricFamily(
        "vision_drift_window_size", "Frames in the source's rolling drift window.", labels=["source"]
    )
    mean = GaugeMetricFamily(
        "vision_baseline_mean",
        "Mean of a signal in the source's reference baseline (per image; per detection for confidence).",
        labels=["source", "signal"],
    )
    return score, window, mean


class DriftCollector(Collector):
    """Yields ``vision_drift_score``, ``vision_drift_window_size`` and ``vision_baseline_mean``.

    Scores are computed here, at scrape time, from the tracker's windows (cached per window state).
    """

    def __init__(self, tracker: DriftTracker) -> None:
        self.tracker = tracker

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only, so the registry can refuse duplicates without computing anything.
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        score, window, mean = _families()
        for drift in sorted(self.tracker.drift(), key=lambda d: d.source):
            window.add_metric([drift.source], drift.window_size)
            for signal in SIGNALS:
                for test in TESTS:
                    value = drift.scores.get((signal, test))
                    if value is not None:
                        score.add_metric([drift.source, signal, test], value)
        for source, baseline in sorted(self.tracker.baselines().items()):
            for signal in SIGNALS:
                if signal in baseline.samples:
                    mean.add_metric([source, signal], baseline.mean(signal))
        yield score
        yield window
        yield mean
