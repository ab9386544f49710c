"""quality.measure: the signals a user reads respond to the input the way the physics says."""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import quality
from quality.colour import colourfulness
from quality.luma import analysis_luma
from quality.noise import noise_sigma
from quality.scene import thumbnail
from quality.signals import (
    brightness,
    contrast,
    laplacian_sum,
    overexposed_ratio,
    sharpness,
    underexposed_ratio,
)
from quality.simulate import blur, gaussian_noise, low_light
from tests.conftest import FUZZ_EXAMPLES


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def _float_luma(bgr: np.ndarray) -> np.ndarray:
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_report_has_exactly_the_seven_signals_in_their_ranges(bus_bgr: np.ndarray) -> None:
    report = quality.measure(bus_bgr)
    assert list(report.as_dict()) == [
        "brightness",
        "contrast",
        "sharpness",
        "noise_sigma",
        "underexposed_ratio",
        "overexposed_ratio",
        "colourfulness",
    ]
    assert all(isinstance(v, float) for v in report.as_dict().values())
    assert 0.0 < report.brightness < 1.0
    assert 0.0 < report.contrast <= 0.5
    assert report.sharpness > 0
    assert 0.0 < report.noise_sigma < 128
    assert 0.0 <= report.underexposed_ratio <= 1.0
    assert 0.0 <= report.overexposed_ratio <= 1.0
    assert 15.0 < report.colourfulness < 110.0  # a colour photograph on Hasler & Suesstrunk's scale
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.brightness = 0.5  # type: ignore[misc]


def test_brightness_and_contrast_are_rec601_luma_mean_and_std(bus_bgr: np.ndarray) -> None:
    small = cv2.resize(bus_bgr, (300, 400), interpolation=cv2.INTER_AREA)  # below 640: no resize
    luma = _float_luma(small)
    report = quality.measure(small)
    # OpenCV rounds luma to integers; that moves the mean and std by far less than 1e-3 of 255.
    assert report.brightness == pytest.approx(luma.mean() / 255, abs=1e-3)
    assert report.contrast == pytest.approx(luma.std() / 255, abs=1e-3)


@pytest.mark.parametrize("level", [0, 3, 5, 6, 128, 249, 250, 255])
def test_flat_image_has_no_contrast_sharpness_or_noise(level: int) -> None:
    report = quality.measure(np.full((120, 160, 3), level, np.uint8))
    assert report.brightness == pytest.approx(level / 255)
    assert report.contrast == 0.0
    assert report.sharpness == 0.0
    assert report.noise_sigma == 0.0
    assert report.underexposed_ratio == (1.0 if level <= 5 else 0.0)
    assert report.overexposed_ratio == (1.0 if level >= 250 else 0.0)
    assert report.colourfulness == 0.0


def test_sharpness_is_the_variance_of_opencvs_laplacian(astronaut: np.ndarray) -> None:
    luma = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    expected = cv2.Laplacian(luma, cv2.CV_64F).var()
    assert quality.measure(astronaut).sharpness == pytest.approx(expected, rel=1e-9)


def test_nightfall_lowers_brightness_and_raises_relative_noise(bus_bgr: np.ndarray) -> None:
    lights = [1.0, 0.3, 0.1, 0.03, 0.01]
    reports = [quality.measure(low_light(bus_bgr, light, rng=3)) for light in lights]
    brightness_ = [r.brightness for r in reports]
    relative_noise = [r.noise_sigma / (255 * r.brightness) for r in reports]
    assert all(a > b for a, b in itertools.pairwise(brightness_)), brightness_
    assert all(a < b for a, b in itertools.pairwise(relative_noise)), relative_noise
    assert relative_noise[-1] > 3 * relative_noise[0]


def test_sharpness_falls_as_blur_grows(astronaut: np.ndarray) -> None:
    values = [quality.measure(blur(astronaut, sigma)).sharpness for sigma in (0, 0.5, 1, 2, 4)]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[-1] < values[0] / 10


def test_exposure_ratios_count_clipped_pixels(astronaut: np.ndarray) -> None:
    gains = [1.0, 1.5, 2.0, 3.0]
    brighter = [cv2.convertScaleAbs(astronaut, alpha=g) for g in gains]
    over = [quality.measure(image).overexposed_ratio for image in brighter]
    assert all(a < b for a, b in itertools.pairwise(over)), over
    for image, ratio in zip(brighter, over, strict=True):  # 512x512: no resize, exact counts
        assert ratio == np.mean(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) >= 250)

    darker = [np.clip(astronaut * 0.5 - offset, 0, 255).astype(np.uint8) for offset in (0, 20, 60)]
    under = [quality.measure(image).underexposed_ratio for image in darker]
    assert all(a < b for a, b in itertools.pairwise(under)), under
    for image, ratio in zip(darker, under, strict=True):
        assert ratio == np.mean(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) <= 5)

    half = astronaut.copy()
    half[:, :256] = 0
    right = quality.measure(np.ascontiguousarray(astronaut[:, 256:])).underexposed_ratio
    assert quality.measure(half).underexposed_ratio == pytest.approx(0.5 + right / 2, abs=1e-9)


def test_same_photo_at_twice_the_resolution_reads_the_same(zidane_bgr: np.ndarray) -> None:
    """Cameras of different resolutions are comparable: everything is measured at 640 px.

    (Exact for integer ratios, as here; see quality.luma for the blur of factors just above 1.)
    """
    full = quality.measure(zidane_bgr)  # 1280x720
    half = quality.measure(cv2.resize(zidane_bgr, (640, 360), interpolation=cv2.INTER_AREA))
    for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
        assert getattr(full, name) == pytest.approx(getattr(half, name), abs=2e-3), name
    assert full.sharpness == pytest.approx(half.sharpness, rel=0.03)
    assert full.noise_sigma == pytest.approx(half.noise_sigma, rel=0.05)


def test_noise_is_read_at_analysis_scale() -> None:
    """Area-averaging 2x2 pixels (1280 -> 640 px) halves independent pixel noise."""
    noisy = gaussian_noise(np.full((960, 1280), 128, np.uint8), 10.0, rng=0)
    assert quality.measure(noisy).noise_sigma == pytest.approx(5.0, rel=0.05)
    assert quality.measure(noisy, analysis_size=1280).noise_sigma == pytest.approx(10.0, rel=0.05)


def test_small_images_are_not_upscaled(astronaut: np.ndarray) -> None:
    small = np.ascontiguousarray(astronaut[:200, :300])
    assert quality.measure(small) == quality.measure(small, analysis_size=5000)
    assert quality.measure(small, analysis_size=150) != quality.measure(small)


def test_gray_bgr_and_bgra_inputs_agree(astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = 17  # alpha is ignored
    assert quality.measure(astronaut) == quality.measure(bgra)
    # Luma signals are the same; a gray image has no colour.
    from_gray = quality.measure(gray)
    assert from_gray == dataclasses.replace(quality.measure(astronaut), colourfulness=0.0)
    mirrored = astronaut[:, ::-1]  # a negative-stride view is accepted too
    assert quality.measure(mirrored) == quality.measure(np.ascontiguousarray(mirrored))


def test_measure_equals_the_pure_signal_functions(bus_bgr: np.ndarray, zidane_bgr: np.ndarray) -> None:
    for image in (bus_bgr, zidane_bgr, low_light(bus_bgr, 0.02, rng=1)):
        luma = analysis_luma(image)
        report = quality.measure(image)
        assert report.brightness == pytest.approx(brightness(luma), rel=1e-12)
        assert report.contrast == pytest.approx(contrast(luma), rel=1e-12)
        assert report.sharpness == pytest.approx(sharpness(luma), rel=1e-12)
        assert report.noise_sigma == pytest.approx(noise_sigma(luma), rel=1e-12)
        assert report.underexposed_ratio == underexposed_ratio(luma)
        assert report.overexposed_ratio == overexposed_ratio(luma)
        assert report.colourfulness == colourfulness(image)


def test_measure_scene_gives_the_report_and_the_thumbnail_of_the_same_luma(bus_bgr: np.ndarray) -> None:
    report, thumb = quality.measure_scene(bus_bgr)
    assert report == quality.measure(bus_bgr)
    assert thumb.dtype == np.float32 and thumb.shape == (64, 48)  # 1080x810 -> 640x480 -> 64x48
    np.testing.assert_array_equal(thumb, thumbnail(analysis_luma(bus_bgr)))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (3, 7), (37, 64)])
def test_laplacian_sum_from_borders_equals_the_full_sum(shape: tuple[int, int]) -> None:
    luma = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    assert laplacian_sum(luma) == int(cv2.Laplacian(luma, cv2.CV_64F).sum())


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), r"uint8.*got dtype float32"),
        (np.zeros((10, 10), np.float64), r"uint8.*got dtype float64"),
        (np.zeros((10, 10), bool), r"got dtype bool"),
        (np.zeros((10, 10, 2), np.uint8), r"HxWx3.*got shape \(10, 10, 2\)"),
        (np.zeros((10, 10, 5), np.uint8), r"got shape \(10, 10, 5\)"),
        (np.zeros((10, 10, 1), np.uint8), r"got shape \(10, 10, 1\)"),
        (np.zeros((0, 10, 3), np.uint8), r"at least 1x1.*empty.*\(0, 10, 3\)"),
        (np.zeros((10, 0), np.uint8), r"empty"),
        (np.zeros((2, 10, 10, 3), np.uint8), r"got shape \(2, 10, 10, 3\) \(4-D\)"),
        (np.zeros(10, np.uint8), r"1-D"),
        ([[1, 2], [3, 4]], r"got list, not a numpy.ndarray"),
    ],
)
def test_bad_arrays_raise_a_clear_value_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quality.measure(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -5, 2.5, True, "640"])
def test_bad_analysis_size_is_refused(size: object, astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="analysis_size"):
        quality.measure(astronaut, analysis_size=size)  # type: ignore[arg-type]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(
    image=arrays(
        np.uint8,
        st.tuples(st.integers(1, 96), st.integers(1, 96)).flatmap(lambda hw: st.sampled_from([hw, (*hw, 3), (*hw, 4)])),
    )
)
def test_fuzz_any_uint8_image_gives_finite_signals_in_range(image: np.ndarray) -> None:
    report = quality.measure(image)
    values = report.as_dict()
    assert all(np.isfinite(v) and v >= 0 for v in values.values()), values
    assert report.brightness <= 1 and report.contrast <= 0.5
    assert report.underexposed_ratio <= 1 and report.overexposed_ratio <= 1
    assert report.colourfulness <= 298.0
