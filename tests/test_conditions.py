"""Conditions: the alert rules' comparisons on the service's own data, with the thresholds of the rules file."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from quality.simulate import blur, gaussian_noise, low_light
from tests.conftest import Clock, measurement_of
from tests.streams import photographs
from vision_service.conditions import ALERTS, NAMES, ConditionMonitor, evaluate
from vision_service.drift import Baseline, DriftTracker
from vision_service.drift.frame_values import measurement_signals
from vision_service.drift.tracker import SourceDrift
from vision_service.history import SignalHistory
from vision_service.measurement import Measurement
from vision_service.thresholds import load_thresholds

THRESHOLDS = load_thresholds()


@pytest.fixture(scope="module")
def frames() -> dict[str, list[Measurement]]:
    """Real photographs by day (with confident detections), at night, noisy, blurred.

    Day frames carry a little fresh sensor noise each (sigma 1.5), as a real camera's do, so their
    values are not four repeated atoms.
    """
    rng = np.random.default_rng(1)
    photos = photographs()
    return {
        "day": [
            measurement_of(gaussian_noise(p, 1.5, rng=rng), confidences=(0.9, 0.8)) for _ in range(10) for p in photos
        ],
        "night": [measurement_of(low_light(p, 0.005, rng=rng), confidences=(0.3,)) for p in photos],
        "noisy": [measurement_of(gaussian_noise(p, 20.0, rng=rng), confidences=(0.8,)) for p in photos],
        "blurred": [measurement_of(blur(p, 5.0), confidences=(0.8,)) for p in photos],
        "empty": [measurement_of(low_light(p, 0.005, rng=rng)) for p in photos],
    }


def watch(
    kind: list[Measurement], *, seconds: int = 60, baseline: Baseline | None = None, window: int = 10
) -> tuple[ConditionMonitor, Clock]:
    """A monitor fed ``seconds`` frames of ``kind``, one per second."""
    clock = Clock()
    history = SignalHistory(clock=clock)
    tracker = DriftTracker(window_frames=window, baselines={"cam": baseline} if baseline else None)
    monitor = ConditionMonitor(THRESHOLDS, history, tracker, clock=clock)
    for i in range(seconds):
        m = kind[i % len(kind)]
        for sink in (history.record, tracker.record, monitor.record):
            sink(m)
        clock.now += 1
    return monitor, clock


def day_baseline(frames: dict[str, list[Measurement]], count: int = 200) -> Baseline:
    day = frames["day"]
    return Baseline.from_frames("cam", [measurement_signals(day[i % len(day)]) for i in range(count)], origin="day")


def test_every_condition_names_its_alert() -> None:
    assert set(ALERTS) == set(NAMES)


def test_daylight_holds_no_condition(frames: dict[str, list[Measurement]]) -> None:
    monitor, _ = watch(frames["day"], baseline=day_baseline(frames), window=100, seconds=120)
    assert monitor.current("cam") == []
    assert monitor.active("cam") == frozenset()


def test_night_is_low_light_with_the_threshold_of_the_rules_file(frames: dict[str, list[Measurement]]) -> None:
    monitor, _ = watch(frames["night"])
    (low,) = [c for c in monitor.current("cam") if c.name == "low_light"]
    assert low.value < THRESHOLDS.low_brightness_ratio == low.threshold
    assert low.alert == "VisionLowBrightness"
    assert "below 0.15" in low.detail


def test_a_tuned_threshold_changes_the_condition(frames: dict[str, list[Measurement]]) -> None:
    monitor, _ = watch(frames["night"])
    night_brightness = monitor.history.stats("cam", 300).means["brightness"]
    assert night_brightness is not None
    monitor.thresholds = replace(THRESHOLDS, low_brightness_ratio=night_brightness / 2)
    assert "low_light" not in {c.name for c in monitor.current("cam")}


def test_noise_and_blur(frames: dict[str, list[Measurement]]) -> None:
    noisy, _ = watch(frames["noisy"])
    assert "noisy" in {c.name for c in noisy.current("cam")}
    blurred, _ = watch(frames["blurred"])
    names = {c.name for c in blurred.current("cam")}
    assert "blurry" in names and "noisy" not in names


def test_drift_needs_a_baseline_and_a_full_enough_window(frames: dict[str, list[Measurement]]) -> None:
    baseline = day_baseline(frames)
    small, _ = watch(frames["night"], baseline=baseline, window=50, seconds=50)
    assert "drift" not in {c.name for c in small.current("cam")}  # 50 frames < drift_min_window_size (100)
    full, _ = watch(frames["night"], baseline=baseline, window=100, seconds=120)
    (drift,) = [c for c in full.current("cam") if c.name == "drift"]
    assert "brightness" in drift.signals and drift.value > drift.threshold
    without, _ = watch(frames["night"], window=100, seconds=120)
    assert "drift" not in {c.name for c in without.current("cam")}


def test_drift_in_twilight_is_shown_but_never_a_condition_as_in_the_alert() -> None:
    """VisionInputDrift leaves out twilight (a transition): so does the drift condition, in any hour bucket."""
    empty = SignalHistory().stats("cam", 300)
    scores = {("brightness", "psi"): 1.0, ("brightness", "ks"): 0.5}

    def drifting(regime: str) -> bool:
        drift = SourceDrift(source="cam", regime=regime, window_size=500, scores=scores)
        return "drift" in {c.name for c in evaluate(THRESHOLDS, empty, empty, drift, None)}

    assert drifting("night") and drifting("day-h06")
    assert not drifting("twilight") and not drifting("twilight-h18")


def test_no_detections_where_the_baseline_has_some(frames: dict[str, list[Measurement]]) -> None:
    baseline = day_baseline(frames)
    few, _ = watch(frames["empty"], baseline=baseline, seconds=int(THRESHOLDS.no_detections_min_frames) - 1)
    assert "no_detections" not in {c.name for c in few.current("cam")}
    enough, _ = watch(frames["empty"], baseline=baseline, seconds=int(THRESHOLDS.no_detections_min_frames))
    (empty,) = [c for c in enough.current("cam") if c.name == "no_detections"]
    assert empty.value == THRESHOLDS.no_detections_min_frames
    no_reference, _ = watch(frames["empty"], seconds=60)
    assert "no_detections" not in {c.name for c in no_reference.current("cam")}


def test_low_confidence_against_the_baseline(frames: dict[str, list[Measurement]]) -> None:
    monitor, _ = watch(frames["night"], baseline=day_baseline(frames))
    (low,) = [c for c in monitor.current("cam") if c.name == "low_confidence"]
    assert low.value == pytest.approx(0.3)
    assert low.threshold == pytest.approx(0.85 * THRESHOLDS.confidence_min_fraction_of_baseline)


def test_the_sink_remembers_what_holds_and_since_when(frames: dict[str, list[Measurement]]) -> None:
    monitor, clock = watch(frames["day"], seconds=30)
    assert monitor.active("cam") == frozenset()
    began = clock.now
    for i in range(400):  # night falls: the 5-minute mean crosses the threshold after a while
        m = frames["night"][i % 4]
        monitor.history.record(m)
        monitor.record(m)
        clock.now += 1
    assert "low_light" in monitor.active("cam")
    assert began < monitor.since("cam")["low_light"] < clock.now
    monitor.forget("cam")
    assert monitor.active("cam") == frozenset() and monitor.since("cam") == {}


def test_the_sink_checks_a_source_at_most_once_per_check_interval(frames: dict[str, list[Measurement]]) -> None:
    clock = Clock()
    history = SignalHistory(clock=clock)
    monitor = ConditionMonitor(THRESHOLDS, history, DriftTracker(window_frames=10), clock=clock)
    for m in frames["night"][:2]:
        history.record(m)
        monitor.record(m)
    assert "low_light" in monitor.active("cam")
    for _ in range(50):  # day returns within the same second: not looked at again yet
        history.record(frames["day"][0])
        monitor.record(frames["day"][0])
    assert "low_light" in monitor.active("cam")
    clock.now += 1
    monitor.record(frames["day"][0])
    assert "low_light" not in monitor.active("cam")


def test_evaluate_is_pure_over_its_inputs(frames: dict[str, list[Measurement]]) -> None:
    monitor, clock = watch(frames["night"])
    short = monitor.history.stats("cam", 300, now=clock.now)
    long = monitor.history.stats("cam", 1800, now=clock.now)
    first = evaluate(THRESHOLDS, short, long, None, None)
    assert first == evaluate(THRESHOLDS, short, long, None, None)
    assert {c.name for c in first} == {"low_light", "noisy"}  # night: dark, and noisy from the gain
