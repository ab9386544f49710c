"""noise_sigma tracks the noise a camera adds, on real photographs and on pure noise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import quality
from quality.bench import immerkaer, noise_errors, photographs
from quality.noise import NOISE_CALIBRATION, calibration_factor, noise_sigma
from quality.simulate import gaussian_noise


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """The ten natural photographs of ``python -m quality.bench``, as luma at analysis scale."""
    return photographs()


@pytest.mark.parametrize("sigma", [2.0, 7.0, 15.0, 40.0])
def test_pure_noise_is_read_at_its_true_strength(sigma: float) -> None:
    flat = np.full((480, 640), 128, np.uint8)
    noisy = gaussian_noise(flat, sigma, rng=int(sigma))
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.03)


def test_calibration_constant_is_reproduced_by_its_simulation() -> None:
    # Other seed and frames than the ones the constant was measured on.
    assert calibration_factor(n_images=6, seed=123) == pytest.approx(NOISE_CALIBRATION, rel=0.01)


def test_accuracy_on_natural_photographs_beats_seven_percent(photos: dict[str, np.ndarray]) -> None:
    errors = noise_errors(noise_sigma, photos)
    assert np.mean(list(errors.values())) <= 0.07, errors
    assert all(error <= 0.15 for error in errors.values()), errors


def test_beats_immerkaers_whole_image_estimator(photos: dict[str, np.ndarray]) -> None:
    ours = np.mean(list(noise_errors(noise_sigma, photos).values()))
    reference = np.mean(list(noise_errors(immerkaer, photos).values()))
    assert ours < reference


def test_estimate_rises_with_added_noise_on_every_photo(photos: dict[str, np.ndarray]) -> None:
    for name, luma in photos.items():
        estimates = [noise_sigma(gaussian_noise(luma, s, rng=0)) for s in (0, 3, 8, 15, 30)]
        assert all(a < b for a, b in itertools.pairwise(estimates)), (name, estimates)


def test_blown_out_regions_do_not_hide_noise(photos: dict[str, np.ndarray]) -> None:
    luma = photos["camera"].copy()
    luma[:, :200] = 255  # a blown-out window: its noise is clipped away
    noisy = gaussian_noise(luma, 10, rng=5)
    assert noise_sigma(noisy) == pytest.approx(10, rel=0.1)


def test_crushed_blacks_do_not_hide_noise(photos: dict[str, np.ndarray]) -> None:
    luma = photos["astronaut"].copy()
    luma[:, 256:] = 0  # half the frame in crushed black
    noisy = gaussian_noise(luma, 20, rng=6)
    assert noise_sigma(noisy) == pytest.approx(20, rel=0.1)


def test_measure_reports_the_same_estimate(photos: dict[str, np.ndarray]) -> None:
    noisy = gaussian_noise(photos["bus.jpg"], 12, rng=2)
    assert quality.measure(noisy).noise_sigma == pytest.approx(noise_sigma(noisy), rel=1e-12)


def test_images_smaller_than_a_block_still_get_a_finite_estimate() -> None:
    noisy = gaussian_noise(np.full((6, 40), 100, np.uint8), 10, rng=0)
    estimate = noise_sigma(noisy)
    assert np.isfinite(estimate)
    assert 3 < estimate < 30  # 240 samples only: a rough reading, but of the right magnitude
