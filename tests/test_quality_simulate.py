"""The low-light simulation behaves like a camera: fewer photons, more shot noise, gain."""

from __future__ import annotations

import numpy as np
import pytest

from quality.simulate import blur, gaussian_noise, low_light


def test_same_seed_same_frame(bus_bgr: np.ndarray) -> None:
    a = low_light(bus_bgr, 0.1, rng=np.random.default_rng(1))
    b = low_light(bus_bgr, 0.1, rng=np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == bus_bgr.shape


def test_less_light_is_darker_and_grainier(bus_bgr: np.ndarray) -> None:
    day = low_light(bus_bgr, 1.0, rng=np.random.default_rng(0)).astype(float)
    dusk = low_light(bus_bgr, 0.02, rng=np.random.default_rng(0)).astype(float)
    assert dusk.mean() < 0.6 * day.mean()
    # Two exposures of the same scene differ only by noise: their difference measures it.
    dusk2 = low_light(bus_bgr, 0.02, rng=np.random.default_rng(9)).astype(float)
    day2 = low_light(bus_bgr, 1.0, rng=np.random.default_rng(9)).astype(float)
    assert np.std(dusk - dusk2) / dusk.mean() > 2 * np.std(day - day2) / day.mean()


def test_light_out_of_range_is_refused(bus_bgr: np.ndarray) -> None:
    with pytest.raises(ValueError, match="light"):
        low_light(bus_bgr, 0.0)


def test_noise_and_blur_helpers(bus_bgr: np.ndarray) -> None:
    noisy = gaussian_noise(bus_bgr, 10, rng=np.random.default_rng(0)).astype(float)
    assert np.std(noisy - bus_bgr) == pytest.approx(10, rel=0.15)
    assert np.array_equal(blur(bus_bgr, 0), bus_bgr)
    assert (
        np.abs(np.diff(blur(bus_bgr, 3).astype(float), axis=1)).mean()
        < np.abs(np.diff(bus_bgr.astype(float), axis=1)).mean()
    )
