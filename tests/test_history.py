"""SignalHistory: per-second sums of each source's signals; windows and series computed on request."""

from __future__ import annotations

import pytest

from quality.simulate import low_light
from tests.conftest import Clock, measurement_of
from tests.streams import photographs
from vision_service.history import HISTORY_SECONDS, SERIES_SIGNALS, SignalHistory
from vision_service.measurement import Measurement


@pytest.fixture(scope="module")
def day_and_night() -> tuple[Measurement, Measurement]:
    bus = photographs()[0]
    night = low_light(bus, 0.01, rng=0)
    return measurement_of(bus, confidences=(0.9, 0.8)), measurement_of(night, confidences=(0.3,))


def test_stats_are_means_over_the_window(day_and_night: tuple[Measurement, Measurement]) -> None:
    day, night = day_and_night
    clock = Clock()
    history = SignalHistory(clock=clock)
    for _ in range(3):
        history.record(day)
        clock.now += 1
    for _ in range(2):
        history.record(night)
        clock.now += 0.4  # two night frames share a second
    stats = history.stats("cam", 300)
    assert stats.frames == 5
    assert stats.detections == 3 * 2 + 2 * 1
    expected = (3 * day.quality.brightness + 2 * night.quality.brightness) / 5
    assert stats.means["brightness"] == pytest.approx(expected)
    assert stats.means["detections"] == pytest.approx(8 / 5)
    assert stats.confidence == pytest.approx((3 * (0.9 + 0.8) + 2 * 0.3) / 8)
    # The median of per-second means: three day seconds, one night second.
    assert stats.sharpness_median == pytest.approx(day.quality.sharpness)
    assert stats.last_at == clock.now - 0.4


def test_a_short_window_sees_only_recent_seconds(day_and_night: tuple[Measurement, Measurement]) -> None:
    day, night = day_and_night
    clock = Clock()
    history = SignalHistory(clock=clock)
    history.record(day)
    clock.now += 120
    history.record(night)
    assert history.stats("cam", 60).frames == 1
    assert history.stats("cam", 60).means["brightness"] == pytest.approx(night.quality.brightness)
    assert history.stats("cam", 300).frames == 2


def test_old_rows_are_overwritten_not_summed(day_and_night: tuple[Measurement, Measurement]) -> None:
    day, night = day_and_night
    clock = Clock()
    history = SignalHistory(seconds=10, clock=clock)
    history.record(day)
    clock.now += 10  # the same row of the ring, ten seconds later
    history.record(night)
    stats = history.stats("cam", 10)
    assert stats.frames == 1
    assert stats.means["brightness"] == pytest.approx(night.quality.brightness)


def test_unknown_and_empty_sources_have_no_means() -> None:
    history = SignalHistory()
    stats = history.stats("nobody", 300)
    assert stats.frames == 0 and stats.last_at is None
    assert all(value is None for value in stats.means.values())
    assert stats.confidence is None and stats.sharpness_median is None


def test_series_has_one_point_per_step_and_gaps_without_frames(day_and_night: tuple[Measurement, Measurement]) -> None:
    day, night = day_and_night
    clock = Clock(1_700_000_000.0)
    history = SignalHistory(clock=clock)
    history.record(day)
    clock.now += 30
    history.record(night)
    series = history.series("cam", seconds=60, step=10)
    assert set(series) == {"t", *SERIES_SIGNALS}
    assert len(series["t"]) == 6 and series["t"] == sorted(series["t"])
    values = [v for v in series["brightness"] if v is not None]
    assert values == pytest.approx([day.quality.brightness, night.quality.brightness], rel=1e-4)
    assert series["brightness"].count(None) == 4  # steps without a frame are gaps
    assert series["t"][-1] <= clock.now < series["t"][-1] + 10


def test_forget_drops_the_source(day_and_night: tuple[Measurement, Measurement]) -> None:
    history = SignalHistory()
    history.record(day_and_night[0])
    assert history.sources() == ["cam"] and history.last("cam") is not None
    history.forget("cam")
    assert history.sources() == [] and history.last("cam") is None


def test_memory_per_source_is_fixed(day_and_night: tuple[Measurement, Measurement]) -> None:
    clock = Clock()
    history = SignalHistory(clock=clock)
    for _ in range(3 * HISTORY_SECONDS):
        history.record(day_and_night[0])
        clock.now += 1
    ring = history._rings["cam"]
    assert ring.stamp.shape == (HISTORY_SECONDS,)
    assert history.stats("cam", HISTORY_SECONDS, now=clock.now - 1).frames == HISTORY_SECONDS
