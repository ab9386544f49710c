"""Honest image degradations for tests, demos and camera test videos: less light, noise, blur.

:func:`low_light` follows a camera's signal chain instead of darkening pixel values directly:

1. linearise the 8-bit values with a gamma of 2.2 (an approximation of the sRGB curve) to
   relative scene radiance in [0, 1];
2. collect ``radiance x light x full_well`` electrons per pixel and channel, with Poisson shot
   noise (``light`` = fraction of the daylight exposure's photons, e.g. 0.05 at dusk);
3. add Gaussian read noise of ``read_noise`` electrons;
4. amplify by ``gain``. By default (``gain=None``) auto exposure recovers part of the lost light:
   ``gain = min(light ** -0.5, max_gain)``, i.e. half of the loss in stops, up to a 24 dB
   (x16) analogue-gain limit. A 20x darker scene then comes out ~4.5x darker and visibly noisier;
5. re-apply gamma, clip to [0, 255] and round to uint8.

Nothing here touches a metric: the quality signals change only because the pixels do. All
functions are deterministic for a given seed (``rng`` may be a ``numpy.random.Generator`` or an
int seed; None draws fresh entropy).
"""

from __future__ import annotations

import cv2
import numpy as np

GAMMA = 2.2
#: Electrons a white pixel collects at daylight exposure (a small surveillance-camera pixel).
FULL_WELL_ELECTRONS = 2000.0
#: Read noise of the sensor and ADC, electrons RMS.
READ_NOISE_ELECTRONS = 3.0
#: Largest automatic gain (x16 = 24 dB).
MAX_AUTO_GAIN = 16.0

RandomSource = np.random.Generator | int | None


def low_light(
    image: np.ndarray,
    light: float = 0.1,
    *,
    full_well: float = FULL_WELL_ELECTRONS,
    read_noise: float = READ_NOISE_ELECTRONS,
    gain: float | None = None,
    max_gain: float = MAX_AUTO_GAIN,
    rng: RandomSource = None,
) -> np.ndarray:
    """``image`` (uint8, any shape, e.g. BGR) as the same camera would record it with ``light``
    (0 < light <= 1) of the original exposure's photons. See the module docstring for the chain.

    ``gain=None`` is auto gain ``min(light ** -0.5, max_gain)``; pass ``gain=1 / light`` for a
    camera that fully restores the mean (and amplifies all the noise), or ``gain=1`` for none.
    Returns a new uint8 array of the same shape.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(f"expected a non-empty uint8 numpy image, got {_describe(image)}")
    if not 0.0 < light <= 1.0:
        raise ValueError(f"light must be in (0, 1] (fraction of the daylight photons), got {light}")
    if full_well <= 0 or read_noise < 0 or max_gain <= 0:
        raise ValueError(
            f"need full_well > 0, read_noise >= 0, max_gain > 0; got {full_well}, {read_noise}, {max_gain}"
        )
    if gain is None:
        gain = min(light**-0.5, max_gain)
    elif gain <= 0:
        raise ValueError(f"gain must be > 0, got {gain}")
    generator = np.random.default_rng(rng)
    radiance = (image.astype(np.float64) / 255.0) ** GAMMA
    electrons = generator.poisson(radiance * (light * full_well)).astype(np.float64)
    electrons += generator.normal(0.0, read_noise, size=image.shape)
    signal = np.clip(electrons * (gain / full_well), 0.0, 1.0)
    return np.rint(255.0 * signal ** (1.0 / GAMMA)).astype(np.uint8)


def gaussian_noise(image: np.ndarray, sigma: float, rng: RandomSource = None) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma`` grey levels to every pixel and channel, then round
    and clip to uint8 as a camera's ADC would (clipping cuts the noise near 0 and 255).

    On a BGR image with independent noise per channel, Rec.601 luma carries
    ``sigma * sqrt(0.299² + 0.587² + 0.114²) ≈ 0.668 sigma``.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy image, got {_describe(image)}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 grey levels, got {sigma}")
    generator = np.random.default_rng(rng)
    noisy = image.astype(np.float64) + generator.normal(0.0, sigma, size=image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of std ``sigma`` pixels (defocus stand-in), ``cv2.GaussianBlur`` with the
    kernel size OpenCV derives from sigma; ``sigma = 0`` returns a copy."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy image, got {_describe(image)}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 pixels, got {sigma}")
    if sigma == 0:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
