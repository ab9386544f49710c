"""Colourfulness (Hasler & Suesstrunk 2003): its formula, grey is zero, and what a camera's night modes read."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

import quality
from quality.colour import colour_thumbnail, colourfulness, colourfulness_of_bgr, halvings
from quality.simulate import gaussian_noise, infrared, low_light
from tests.conftest import encode_jpeg


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1])


def test_formula_on_two_known_colours() -> None:
    # Left half pure red, right half pure green (BGR), 64x32: no resize.
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32, 2] = 255
    image[:, 32:, 1] = 255
    # rg = +-255 (mean 0, std 255); yb = 127.5 everywhere (mean 127.5, std 0).
    assert colourfulness(image) == pytest.approx(255 + 0.3 * 127.5, rel=1e-6)


def test_every_grey_image_reads_zero(bus_bgr: np.ndarray) -> None:
    grey = cv2.cvtColor(cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert colourfulness(grey) == 0.0
    assert colourfulness(cv2.cvtColor(bus_bgr, cv2.COLOR_BGR2GRAY)) == 0.0  # a gray array
    # After JPEG (4:2:0 chroma) a grey frame stays all but grey.
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(grey), np.uint8), cv2.IMREAD_COLOR)
    assert colourfulness(decoded) < 0.5


def test_desaturating_scales_it_down_in_proportion(coffee: np.ndarray) -> None:
    grey = cv2.cvtColor(cv2.cvtColor(coffee, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR).astype(float)
    full = colourfulness(coffee)
    for saturation in (0.75, 0.5, 0.25):
        blended = np.rint(grey + saturation * (coffee.astype(float) - grey)).astype(np.uint8)
        # rg and yb scale with the saturation, so M does (up to 8-bit rounding).
        assert colourfulness(blended) == pytest.approx(saturation * full, rel=0.03, abs=0.3)


def test_photographs_sit_on_hasler_and_suesstrunks_scale(coffee: np.ndarray, bus_bgr: np.ndarray) -> None:
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    values = [colourfulness(photo) for photo in (coffee, astronaut, bus_bgr)]
    assert all(15 < v < 110 for v in values), values  # "slightly" to "extremely" colourful


def test_the_thumbnail_averages_out_sensor_colour_noise() -> None:
    grey = np.full((480, 640, 3), 100, np.uint8)
    noisy = gaussian_noise(grey, 10, rng=0)
    # At full resolution independent noise of std 10 per channel reads as colour:
    # sqrt(2 * 100 + 1.5 * 100) = 18.7.
    assert colourfulness_of_bgr(noisy) == pytest.approx(math.sqrt(350), rel=0.03)
    # On the 64 px thumbnail (10x10 pixels averaged) it is a tenth of that.
    assert colourfulness(noisy) == pytest.approx(math.sqrt(350) / 10, rel=0.15)


def test_infrared_night_is_grey_while_a_colour_night_keeps_some_colour(coffee: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    for _ in range(4):
        assert colourfulness(infrared(coffee, 0.01, rng=rng)) == 0.0
        assert colourfulness(low_light(coffee, 0.01, rng=rng)) > 10


def test_thumbnail_halves_then_area_resizes_and_small_images_are_kept(bus_bgr: np.ndarray) -> None:
    thumb = colour_thumbnail(bus_bgr)  # 1080x810: halved once (540x405 has an odd side), then area to 64x48
    assert thumb is not None and thumb.shape == (64, 48, 3) and thumb.dtype == np.uint8
    assert halvings(1080, 810) == 1 and halvings(480, 640) == 2 and halvings(1080, 1920) == 3
    half = cv2.resize(bus_bgr, (405, 540), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(thumb, cv2.resize(half, (48, 64), interpolation=cv2.INTER_AREA))
    # A 2x2 mean rounded half up: exactly what a halving is.
    blocks = bus_bgr.astype(np.int32).reshape(540, 2, 405, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(cv2.resize(bus_bgr, (405, 540), interpolation=cv2.INTER_AREA), (blocks + 2) // 4)
    # Close to the one-step area resize (the halvings round to 8 bits once more).
    one_step = cv2.resize(bus_bgr, (48, 64), interpolation=cv2.INTER_AREA)
    assert colourfulness_of_bgr(thumb) == pytest.approx(colourfulness_of_bgr(one_step), rel=0.02)
    small = np.ascontiguousarray(bus_bgr[:20, :30])
    assert colour_thumbnail(small) is small
    assert colour_thumbnail(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)) is None
    assert quality.measure(bus_bgr).colourfulness == colourfulness(bus_bgr)
