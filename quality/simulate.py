"""Honest image degradations for tests, demos and test videos: less light, blur, added noise.

``low_light`` follows a camera's signal chain instead of darkening pixel values directly:

1. linearise the 8-bit sRGB values (gamma 2.2) to relative scene radiance in [0, 1];
2. collect ``light x full_well`` electrons at a white pixel (``light`` = fraction of the
   daylight exposure, e.g. 0.05 at dusk) with Poisson shot noise;
3. add Gaussian read noise of ``read_noise`` electrons;
4. amplify by ``gain`` (auto-exposure: by default the camera recovers part of the lost light,
   ``gain = light ** -0.5``, so a 20x darker scene looks ~4.5x darker and visibly noisier);
5. re-apply gamma, clip to [0, 255] and quantise to 8 bits.

The quality metrics then change only because the pixels did.
"""

from __future__ import annotations

import cv2
import numpy as np

GAMMA = 2.2
FULL_WELL_ELECTRONS = 2000.0  # a small surveillance-camera pixel at daylight exposure
READ_NOISE_ELECTRONS = 3.0


def low_light(
    image: np.ndarray,
    light: float,
    *,
    full_well: float = FULL_WELL_ELECTRONS,
    read_noise: float = READ_NOISE_ELECTRONS,
    gain: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Simulate ``image`` (uint8) shot with ``light`` (0 < light <= 1) of the original exposure."""
    if not 0.0 < light <= 1.0:
        raise ValueError(f"light must be in (0, 1], got {light}")
    rng = rng if rng is not None else np.random.default_rng()
    gain = light**-0.5 if gain is None else gain
    radiance = (image.astype(np.float64) / 255.0) ** GAMMA
    electrons = rng.poisson(radiance * light * full_well).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, size=image.shape)
    signal = np.clip(electrons * gain / full_well, 0.0, 1.0)
    return np.rint(255.0 * signal ** (1.0 / GAMMA)).astype(np.uint8)


def gaussian_noise(image: np.ndarray, sigma: float, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma`` grey levels, then clip and round to uint8."""
    rng = rng if rng is not None else np.random.default_rng()
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of std ``sigma`` pixels (defocus / motion stand-in); sigma 0 returns a copy."""
    if sigma <= 0:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
