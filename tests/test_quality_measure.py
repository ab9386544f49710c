"""quality.measure: the signals a user reads respond to the input the way the physics says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import skimage.data

import quality
from tests.conftest import FUZZ_EXAMPLES
from quality.simulate import blur, low_light


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def test_report_has_every_signal_in_its_documented_range(bus_bgr: np.ndarray) -> None:
    report = quality.measure(bus_bgr)
    assert 0.0 <= report.brightness <= 1.0
    assert 0.0 <= report.contrast <= 0.5
    assert report.sharpness > 0
    assert 0.0 <= report.noise_sigma < 128
    assert 0.0 <= report.underexposed_ratio <= 1.0
    assert 0.0 <= report.overexposed_ratio <= 1.0
    assert set(report.as_dict()) == {
        "brightness",
        "contrast",
        "sharpness",
        "noise_sigma",
        "underexposed_ratio",
        "overexposed_ratio",
    }


def test_brightness_is_mean_rec601_luma(bus_bgr: np.ndarray) -> None:
    small = cv2.resize(bus_bgr, (300, 400), interpolation=cv2.INTER_AREA)
    b, g, r = (small[:, :, i].astype(np.float64) for i in range(3))
    expected = (0.299 * r + 0.587 * g + 0.114 * b).mean() / 255
    assert quality.measure(small).brightness == pytest.approx(expected, abs=2e-3)


def test_nightfall_lowers_brightness_and_raises_relative_noise(bus_bgr: np.ndarray) -> None:
    lights = [1.0, 0.3, 0.1, 0.03]
    reports = [quality.measure(low_light(bus_bgr, light, rng=np.random.default_rng(3))) for light in lights]
    brightness = [r.brightness for r in reports]
    relative_noise = [r.noise_sigma / (255 * r.brightness) for r in reports]
    assert brightness == sorted(brightness, reverse=True)
    assert relative_noise == sorted(relative_noise)
    assert relative_noise[-1] > 3 * relative_noise[0]


def test_sharpness_falls_as_blur_grows(astronaut: np.ndarray) -> None:
    values = [quality.measure(blur(astronaut, sigma)).sharpness for sigma in (0, 1, 2, 4)]
    assert values == sorted(values, reverse=True)
    assert values[-1] < values[0] / 10


def test_exposure_ratios_count_clipped_pixels(astronaut: np.ndarray) -> None:
    overexposed = cv2.convertScaleAbs(astronaut, alpha=3.0)
    underexposed = np.clip(astronaut * 0.5 - 60, 0, 255).astype(np.uint8)
    normal = quality.measure(astronaut)
    assert quality.measure(overexposed).overexposed_ratio > normal.overexposed_ratio + 0.3
    assert quality.measure(underexposed).underexposed_ratio > normal.underexposed_ratio + 0.2
    half = astronaut.copy()
    half[:, : half.shape[1] // 2] = 0
    right = quality.measure(np.ascontiguousarray(astronaut[:, half.shape[1] // 2 :])).underexposed_ratio
    assert quality.measure(half).underexposed_ratio == pytest.approx(0.5 + right / 2, abs=0.01)


def test_resolution_does_not_change_the_reading(astronaut: np.ndarray) -> None:
    """Cameras of different resolutions are comparable: everything is measured at 640 px."""
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    huge = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    a, b = quality.measure(big), quality.measure(huge)
    assert a.brightness == pytest.approx(b.brightness, abs=2e-3)
    assert a.contrast == pytest.approx(b.contrast, abs=2e-3)
    assert a.sharpness == pytest.approx(b.sharpness, rel=0.1)


def test_gray_bgr_and_bgra_inputs_agree(astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
    assert quality.measure(gray) == quality.measure(astronaut) == quality.measure(bgra)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((0, 10, 3), np.uint8), "at least"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "ndarray"),
    ],
)
def test_bad_arrays_raise_a_clear_value_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quality.measure(bad)  # type: ignore[arg-type]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(
    image=arrays(
        np.uint8,
        st.tuples(st.integers(3, 96), st.integers(3, 96)).flatmap(lambda hw: st.sampled_from([hw, (*hw, 3), (*hw, 4)])),
    )
)
def test_fuzz_any_uint8_image_gives_finite_signals_in_range(image: np.ndarray) -> None:
    report = quality.measure(image)
    values = report.as_dict()
    assert all(np.isfinite(v) and v >= 0 for v in values.values()), values
    assert report.brightness <= 1 and report.contrast <= 0.5
    assert report.underexposed_ratio <= 1 and report.overexposed_ratio <= 1
