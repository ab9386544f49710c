"""noise_sigma tracks the noise a camera adds, on real photographs and on pure noise."""

from __future__ import annotations

import numpy as np
import pytest

from quality.bench import noise_errors, photographs
from quality.noise import noise_sigma
from quality.simulate import gaussian_noise


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return photographs()


@pytest.mark.parametrize("sigma", [2.0, 7.0, 15.0, 40.0])
def test_calibration_holds_on_pure_noise(sigma: float) -> None:
    flat = np.full((480, 640), 128, np.uint8)
    noisy = gaussian_noise(flat, sigma, rng=np.random.default_rng(int(sigma)))
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.04)


def test_accuracy_on_natural_photographs_beats_seven_percent(photos: dict[str, np.ndarray]) -> None:
    errors = noise_errors(noise_sigma, photos)
    assert np.mean(list(errors.values())) <= 0.07
    assert all(error <= 0.10 for error in errors.values()), errors


def test_estimate_rises_with_added_noise_on_every_photo(photos: dict[str, np.ndarray]) -> None:
    for name, luma in photos.items():
        estimates = [noise_sigma(gaussian_noise(luma, s, rng=np.random.default_rng(0))) for s in (0, 5, 15, 30)]
        assert estimates == sorted(estimates), name


def test_clipped_regions_do_not_hide_noise(photos: dict[str, np.ndarray]) -> None:
    luma = photos["camera"].copy()
    luma[:, :200] = 255  # a blown-out window
    noisy = gaussian_noise(luma, 10, rng=np.random.default_rng(5))
    assert noise_sigma(noisy) == pytest.approx(10, rel=0.1)
