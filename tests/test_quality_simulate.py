"""The simulations behave like a camera: fewer photons, more shot noise, gain; haze, a covered lens, a
turned camera, an infrared night mode."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from quality.simulate import MAX_AUTO_GAIN, blur, camera_view, covered, gaussian_noise, haze, infrared, low_light


def test_same_seed_same_frame_other_seed_other_frame(bus_bgr: np.ndarray) -> None:
    a = low_light(bus_bgr, 0.1, rng=np.random.default_rng(1))
    b = low_light(bus_bgr, 0.1, rng=1)
    c = low_light(bus_bgr, 0.1, rng=2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == bus_bgr.shape


def test_full_light_without_gain_keeps_the_picture(bus_bgr: np.ndarray) -> None:
    day = low_light(bus_bgr, 1.0, gain=1.0, rng=0).astype(float)
    assert day.mean() == pytest.approx(bus_bgr.mean(), abs=1.0)
    assert np.abs(day - bus_bgr).mean() < 6  # only shot and read noise


def test_less_light_is_darker_and_grainier(bus_bgr: np.ndarray) -> None:
    lights = [1.0, 0.2, 0.05, 0.01]
    means, relative_noise = [], []
    for light in lights:
        # Two exposures of the same scene differ only by noise: their difference measures it.
        a = low_light(bus_bgr, light, rng=10).astype(float)
        b = low_light(bus_bgr, light, rng=11).astype(float)
        means.append(a.mean())
        relative_noise.append(np.std(a - b) / a.mean())
    assert all(x > y for x, y in itertools.pairwise(means)), means
    assert all(x < y for x, y in itertools.pairwise(relative_noise)), relative_noise


def test_auto_gain_recovers_part_of_the_light_up_to_its_limit(bus_bgr: np.ndarray) -> None:
    light = 0.04
    auto = low_light(bus_bgr, light, rng=4)
    assert np.array_equal(auto, low_light(bus_bgr, light, gain=light**-0.5, rng=4))
    assert low_light(bus_bgr, light, gain=1.0, rng=4).mean() < auto.mean() < bus_bgr.mean()
    very_dark = 1e-3  # light ** -0.5 = 31.6 exceeds the x16 limit
    assert np.array_equal(
        low_light(bus_bgr, very_dark, rng=4), low_light(bus_bgr, very_dark, gain=MAX_AUTO_GAIN, rng=4)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"light": 0.0}, "light"),
        ({"light": 1.5}, "light"),
        ({"light": 0.5, "gain": 0.0}, "gain"),
        ({"light": 0.5, "full_well": -1.0}, "full_well"),
    ],
)
def test_bad_parameters_are_refused(bus_bgr: np.ndarray, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        low_light(bus_bgr, **kwargs)


def test_low_light_refuses_non_uint8_images() -> None:
    with pytest.raises(ValueError, match="uint8"):
        low_light(np.zeros((4, 4, 3), np.float32), 0.5)


def test_gaussian_noise_adds_the_requested_std_and_clips_like_a_camera() -> None:
    grey = np.full((400, 400, 3), 128, np.uint8)
    noisy = gaussian_noise(grey, 10, rng=0).astype(float)
    assert np.std(noisy - 128) == pytest.approx(10, rel=0.02)
    black = gaussian_noise(np.zeros((400, 400), np.uint8), 10, rng=0)
    assert black.min() == 0 and np.std(black) < 7  # half the noise is cut off at 0
    assert np.array_equal(gaussian_noise(grey, 0, rng=0), grey)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise(grey, -1)


def test_blur_smooths_and_zero_blur_copies(bus_bgr: np.ndarray) -> None:
    copy = blur(bus_bgr, 0)
    assert np.array_equal(copy, bus_bgr) and copy is not bus_bgr
    detail = [np.abs(np.diff(blur(bus_bgr, s).astype(float), axis=1)).mean() for s in (0, 1, 3)]
    assert detail[0] > detail[1] > detail[2]
    with pytest.raises(ValueError, match="sigma"):
        blur(bus_bgr, -1)


def test_haze_lifts_the_blacks_and_removes_contrast(bus_bgr: np.ndarray) -> None:
    assert np.array_equal(haze(bus_bgr, 0.0, scatter=0.0), bus_bgr)
    frames = [haze(bus_bgr, d) for d in (0.0, 0.3, 0.6, 0.9)]
    contrast = [float(np.std(f)) for f in frames]
    darkest = [float(np.percentile(f, 1)) for f in frames]
    assert all(a > b for a, b in itertools.pairwise(contrast)), contrast
    assert all(a < b for a, b in itertools.pairwise(darkest)), darkest
    with pytest.raises(ValueError, match="density"):
        haze(bus_bgr, 1.0)


def test_a_covered_lens_is_a_near_uniform_noisy_glow(bus_bgr: np.ndarray) -> None:
    cover = covered(bus_bgr, light=0.03, rng=1)
    assert cover.shape == bus_bgr.shape and cover.dtype == np.uint8
    coarse = cv2.resize(cover, (8, 8), interpolation=cv2.INTER_AREA).astype(float)
    scene = cv2.resize(bus_bgr, (8, 8), interpolation=cv2.INTER_AREA).astype(float)
    assert coarse.std() < 0.5 * scene.std()  # the layout is gone
    again = covered(bus_bgr, light=0.03, rng=2)
    assert np.abs(cover.astype(float) - again).mean() > 2  # fresh sensor noise in every frame


def test_camera_view_pans_rolls_and_scales(zidane_bgr: np.ndarray) -> None:
    h, w = zidane_bgr.shape[:2]
    assert np.array_equal(camera_view(zidane_bgr, (w, h)), zidane_bgr)  # the identity view
    view = camera_view(zidane_bgr, (640, 360), scale=0.5)
    assert view.shape == (360, 640, 3)
    # Panned by a quarter of the scene: the view shows what was 320 scene pixels to the right.
    panned = camera_view(zidane_bgr, (200, 200), centre=(0.75, 0.5))
    np.testing.assert_array_equal(panned, zidane_bgr[260:460, 860:1060])
    assert not np.array_equal(camera_view(zidane_bgr, (200, 200), roll=10), camera_view(zidane_bgr, (200, 200)))
    with pytest.raises(ValueError, match="scale"):
        camera_view(zidane_bgr, (10, 10), scale=0)


def test_infrared_night_is_monochrome_dark_and_noisy(bus_bgr: np.ndarray) -> None:
    night = infrared(bus_bgr, 0.02, rng=1)
    assert night.shape == bus_bgr.shape
    assert np.array_equal(night[:, :, 0], night[:, :, 1]) and np.array_equal(night[:, :, 1], night[:, :, 2])
    assert night.mean() < 0.6 * bus_bgr.mean()
    assert not np.array_equal(night, infrared(bus_bgr, 0.02, rng=2))
