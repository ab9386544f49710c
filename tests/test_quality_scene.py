"""The scene thumbnail and how two frames compare: moved, covered, frozen, on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from quality.luma import analysis_luma
from quality.scene import (
    THUMBNAIL_SIZE,
    downscale,
    frame_change,
    gradient_map,
    low_res_contrast,
    noise_change,
    structural_similarity,
    thumbnail,
)
from quality.simulate import blur, camera_view, covered, gaussian_noise, haze, infrared, low_light


def thumb(bgr: np.ndarray) -> np.ndarray:
    return thumbnail(analysis_luma(bgr))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(gradient_map(thumb(a)), gradient_map(thumb(b)))


@pytest.fixture(scope="module")
def views(zidane_bgr: np.ndarray) -> dict[str, np.ndarray]:
    """A camera watching zidane.jpg at 0.7 view pixels per scene pixel, and what it sees when things change."""
    rng = np.random.default_rng(5)

    def view(**kwargs: object) -> np.ndarray:
        return camera_view(zidane_bgr, (640, 360), scale=0.7, **kwargs)  # type: ignore[arg-type]

    day = view()
    return {
        "day": gaussian_noise(day, 1.5, rng=rng),
        "day again": gaussian_noise(day, 1.5, rng=rng),
        "shaken 1%": gaussian_noise(view(centre=(0.51, 0.495)), 1.5, rng=rng),
        "night": low_light(day, 0.01, rng=rng),
        "infrared night": infrared(day, 0.005, rng=rng),
        "blurred": blur(day, 4),
        "haze": haze(day, 0.5),
        "panned": view(centre=(0.6, 0.5)),
        "panned and rolled": view(centre=(0.42, 0.55), roll=8),
        "covered": covered(day, light=0.03, rng=rng),
    }


def test_thumbnail_is_an_unrounded_area_average_of_the_analysis_luma(bus_bgr: np.ndarray) -> None:
    luma = analysis_luma(bus_bgr)  # 640x480
    small = thumbnail(luma)
    assert small.dtype == np.float32 and small.shape == (64, 48)
    assert max(small.shape) == THUMBNAIL_SIZE
    # A 10x10 block mean: exact for this integer factor.
    np.testing.assert_allclose(small, luma.reshape(64, 10, 48, 10).mean(axis=(1, 3)), atol=1e-4)
    assert not np.array_equal(small, np.rint(small))  # not rounded to grey levels
    tiny = np.ascontiguousarray(luma[:40, :30])
    np.testing.assert_array_equal(thumbnail(tiny), tiny.astype(np.float32))  # never upscaled


def test_similarity_is_one_for_the_same_layout_whatever_the_exposure(views: dict[str, np.ndarray]) -> None:
    g = gradient_map(thumb(views["day"]))
    assert structural_similarity(g, g) == pytest.approx(1.0)
    assert structural_similarity(g, 3 * g + 7) == pytest.approx(1.0, abs=1e-6)
    assert structural_similarity(g, np.zeros_like(g)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        structural_similarity(g, g[:-1])


def test_a_turned_camera_loses_its_layout_while_night_shake_and_blur_keep_it(views: dict[str, np.ndarray]) -> None:
    day = views["day"]
    for kept in ("day again", "shaken 1%", "night", "infrared night", "blurred", "haze"):
        assert similarity(day, views[kept]) > 0.85, kept
    for lost in ("panned", "panned and rolled", "covered"):
        assert similarity(day, views[lost]) < 0.3, lost


def test_a_covered_lens_is_near_uniform_and_a_dark_night_is_not(views: dict[str, np.ndarray]) -> None:
    day = low_res_contrast(thumb(views["day"]))
    assert low_res_contrast(thumb(views["covered"])) < 0.5 * day
    assert low_res_contrast(thumb(views["night"])) > 0.5 * day
    assert low_res_contrast(np.full((36, 64), 40.0, np.float32)) == 0.0


def test_frame_change_is_zero_for_a_resent_frame_and_noise_sized_for_a_live_still_scene() -> None:
    scene = analysis_luma(np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1]))  # 600x400
    k = downscale(max(scene.shape), THUMBNAIL_SIZE)
    assert k == pytest.approx(600 / 64)
    frame = thumbnail(gaussian_noise(scene, 4.0, rng=1))
    assert frame_change(frame, frame.copy()) == 0.0
    for sigma in (2.0, 4.0, 8.0):
        a = thumbnail(gaussian_noise(scene, sigma, rng=2))
        b = thumbnail(gaussian_noise(scene, sigma, rng=3))
        # White noise averaged over k x k pixels: the median change is 0.954 sigma / k.
        assert frame_change(a, b) == pytest.approx(noise_change(sigma, k), rel=0.2), sigma


def test_frame_change_ignores_a_small_region_that_keeps_changing() -> None:
    """A frozen picture with a clock burnt in still reads as unchanged (the median ignores it)."""
    frozen = thumbnail(analysis_luma(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])))
    clock = frozen.copy()
    clock[2:6, 2:20] += 40.0  # about 2 % of the thumbnail
    assert frame_change(frozen, clock) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        frame_change(frozen, frozen[1:])


def test_noise_change_formula() -> None:
    assert noise_change(10.0, 10.0) == pytest.approx(0.6744897501960817 * np.sqrt(2.0))
    assert noise_change(0.0, 10.0) == 0.0
    assert noise_change(3.0, 0.5) == noise_change(3.0, 1.0)  # k never below 1
