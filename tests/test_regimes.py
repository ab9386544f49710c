"""Regimes: a colour day, twilight and the camera's infrared night mode are told apart by the frames themselves."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import quality
from quality.simulate import gaussian_noise, infrared, low_light
from tests.conftest import encode_jpeg
from tests.streams import photographs
from vision_service.regimes import (
    DAY,
    DEFAULT_RULE,
    MIN_DAY_NOISE,
    NIGHT,
    NOISE_FACTOR,
    TWILIGHT,
    RegimeRule,
    alerted,
    parse_hours,
)

RULES_FILE = Path(__file__).parents[1] / "compose" / "prometheus" / "rules" / "input_quality.yml"


def through_jpeg(bgr: np.ndarray) -> np.ndarray:
    """What the service sees of a frame a camera sent as JPEG (4:2:0 chroma)."""
    return cv2.imdecode(np.frombuffer(encode_jpeg(bgr), np.uint8), cv2.IMREAD_COLOR)


def test_colour_day_to_infrared_night_switches_once_with_sensor_noise() -> None:
    """Evening at a street camera: colour frames darken through dusk, then the camera switches to IR."""
    rng = np.random.default_rng(11)
    street = photographs()[0]
    day = [gaussian_noise(street, 1.5, rng=rng) for _ in range(5)]
    dusk = [low_light(street, light, rng=rng) for light in (0.5, 0.3, 0.2, 0.12, 0.08, 0.05)]
    ir_night = [infrared(street, 0.02, rng=rng) for _ in range(6)]
    frames = [through_jpeg(f) for f in day + dusk + ir_night]
    reports = [quality.measure(f) for f in frames]
    regimes = [DEFAULT_RULE.regime(r) for r in reports]
    # Day, then dusk turns twilight once the camera's gain shows (grain) or the frames fall below the
    # `dim` level, then the IR switch: no flapping.
    dusk_regimes = regimes[len(day) : len(day) + len(dusk)]
    assert regimes[: len(day)] == [DAY] * len(day) and regimes[-len(ir_night) :] == [NIGHT] * len(ir_night)
    assert dusk_regimes == sorted(dusk_regimes, key=[DAY, TWILIGHT].index) and TWILIGHT in dusk_regimes
    for report, regime in zip(reports[len(day) : len(day) + len(dusk)], dusk_regimes, strict=True):
        dim_or_grainy = report.brightness < DEFAULT_RULE.day_brightness or report.noise_sigma > DEFAULT_RULE.day_noise
        assert (regime == TWILIGHT) == dim_or_grainy
    # The switch is told by colour, not by light: lit by the camera's illuminator (and gain), the IR
    # frames are brighter than the night threshold, so brightness alone would still call them day.
    assert min(r.brightness for r in reports[-len(ir_night) :]) > DEFAULT_RULE.night_brightness
    assert max(r.colourfulness for r in reports[-len(ir_night) :]) < 0.5
    assert min(r.colourfulness for r in reports[: len(day) + len(dusk)]) > 5


def test_a_colour_camera_without_infrared_turns_night_when_it_is_dark() -> None:
    rng = np.random.default_rng(12)
    street = photographs()[1]
    dark = quality.measure(low_light(street, 0.01, rng=rng))
    assert dark.colourfulness > DEFAULT_RULE.monochrome_colourfulness  # still colour ...
    assert dark.brightness < DEFAULT_RULE.night_brightness  # ... but dark
    assert DEFAULT_RULE.regime(dark) == NIGHT


def test_hour_buckets_name_the_bucket_and_wrap_over_midnight() -> None:
    rule = RegimeRule(hours=(6, 18))
    day = quality.measure(photographs()[0])
    assert [rule.regime(day, hour) for hour in (0, 5, 6, 12, 17, 18, 23)] == [
        "day-h18",
        "day-h18",
        "day-h06",
        "day-h06",
        "day-h06",
        "day-h18",
        "day-h18",
    ]
    assert rule.names() == ("day-h06", "day-h18", "twilight-h06", "twilight-h18", "night-h06", "night-h18")
    assert DEFAULT_RULE.names() == (DAY, TWILIGHT, NIGHT)
    assert RegimeRule(day_brightness=0.0, day_noise=None).names() == (DAY, NIGHT)  # no twilight regime
    with pytest.raises(ValueError, match="hour"):
        rule.regime(day)


def test_drift_is_alerted_on_in_every_regime_but_twilight_as_in_the_shipped_alert() -> None:
    """The live page and the drift condition call a regime alerted exactly when VisionInputDrift does."""
    excluded = set(re.findall(r'regime!~"([^"]+)"', RULES_FILE.read_text()))
    assert excluded == {"twilight.*"}
    names = (*RegimeRule(hours=(6, 18)).names(), *DEFAULT_RULE.names(), "all")
    for name in names:
        assert alerted(name) == (re.fullmatch("twilight.*", name) is None), name
    assert [n for n in names if not alerted(n)] == ["twilight-h06", "twilight-h18", TWILIGHT]


def test_rules_round_trip_and_bad_ones_are_refused() -> None:
    rule = RegimeRule(monochrome_colourfulness=3.0, night_brightness=0.1, day_brightness=0.25, hours=(7, 19))
    assert RegimeRule.from_json(rule.to_json()) == rule
    assert parse_hours("18, 6") == (6, 18)
    for bad in ("25", "a,b", "6,6x"):
        with pytest.raises(ValueError):
            parse_hours(bad)
    with pytest.raises(ValueError, match="hours"):
        RegimeRule(hours=(18, 6))
    with pytest.raises(ValueError, match="night_brightness"):
        RegimeRule(night_brightness=2.0)
    with pytest.raises(ValueError, match="day_noise"):
        RegimeRule(day_noise=-1.0)
    assert RegimeRule.from_json({**rule.to_json(), "day_noise": None}).day_noise is None
    assert RegimeRule.from_json({}).day_noise == DEFAULT_RULE.day_noise
    with pytest.raises(ValueError, match="unknown"):
        RegimeRule.from_json({"colour": 1})


def test_fitting_puts_twilight_at_one_and_a_half_times_the_cameras_own_daylight_grain() -> None:
    rng = np.random.default_rng(13)
    street = photographs()[2]  # astronaut: clean, bright, colourful
    day = [quality.measure(gaussian_noise(street, 1.0, rng=rng)) for _ in range(5)]
    fitted = DEFAULT_RULE.fitted(day)
    median = float(np.median([r.noise_sigma for r in day]))
    assert fitted.day_noise == pytest.approx(max(MIN_DAY_NOISE, NOISE_FACTOR * median), abs=1e-3)
    assert fitted.monochrome_colourfulness == DEFAULT_RULE.monochrome_colourfulness
    # A camera that has only ever been grey (or dim) keeps the default.
    night = [quality.measure(infrared(street, 0.02, rng=rng)) for _ in range(3)]
    assert DEFAULT_RULE.fitted(night) == DEFAULT_RULE
    # Its own gain at dusk: grain well above its daylight's is twilight even at full brightness.
    grainy = quality.measure(gaussian_noise(street, 8.0, rng=rng))
    assert grainy.brightness >= DEFAULT_RULE.day_brightness and fitted.light(grainy) == TWILIGHT
