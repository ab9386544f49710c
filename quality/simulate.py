"""Honest image degradations for tests, demos and camera test videos: less light, noise, blur,
haze or paint on the lens, a covered lens, a camera that turned, an infrared night mode.

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

The camera-tampering helpers follow the same rule: :func:`haze` applies the atmospheric
scattering model in linear light (Koschmieder: ``I = J t + A (1 - t)``, a veil of airlight ``A``
over the scene ``J`` with transmission ``t``) plus the forward scattering blur of a film on the
lens; :func:`covered` is what the sensor records through a hand or cloth on the lens (the scene's
light, diffused to a near-uniform glow, at a few percent of the exposure, then the sensor chain
of :func:`low_light`); :func:`camera_view` is the part of a wider scene a camera sees for a given
pan, tilt and roll; :func:`infrared` is a camera's monochrome night mode (one channel for all
three, the scene lit by its own IR illuminator).

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
    radiance = _linear(image)
    electrons = generator.poisson(radiance * (light * full_well)).astype(np.float64)
    electrons += generator.normal(0.0, read_noise, size=image.shape)
    return _encode(electrons * (gain / full_well))


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


def haze(image: np.ndarray, density: float, *, airlight: float = 0.8, scatter: float = 2.0) -> np.ndarray:
    """A film of haze or paint on the lens: ``I = J t + A (1 - t)`` in linear light, ``t = 1 - density``.

    ``density`` in [0, 1) is the fraction of the scene's light replaced by the veil, ``airlight``
    the veil's level in linear light (0..1, a grey paint), ``scatter`` the std in pixels of the
    forward-scattering blur the film adds (``cv2.GaussianBlur``; 0 for none). Gamma 2.2 as
    :func:`low_light`. Returns a new uint8 array of the same shape.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy image, got {_describe(image)}")
    if not 0.0 <= density < 1.0 or not 0.0 <= airlight <= 1.0 or scatter < 0:
        raise ValueError(
            f"need 0 <= density < 1, 0 <= airlight <= 1, scatter >= 0; got {density}, {airlight}, {scatter}"
        )
    radiance = _linear(image)
    if scatter > 0:
        radiance = cv2.GaussianBlur(radiance, (0, 0), sigmaX=scatter, sigmaY=scatter)
    veiled = radiance * (1.0 - density) + airlight * density
    return _encode(veiled)


def covered(
    image: np.ndarray, *, light: float = 0.03, field_of_view: float = 70.0, rng: RandomSource = None
) -> np.ndarray:
    """What the camera records with a hand or cloth over the lens.

    The cover diffuses the light that reaches it: every pixel sees the scene's mean colour, at
    ``light`` of the exposure, shaded only by the lens' natural vignetting (the cos⁴ law across a
    diagonal field of view of ``field_of_view`` degrees). The sensor then records it with shot
    noise, read noise and auto gain exactly as :func:`low_light`.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim < 2:
        raise ValueError(f"expected a uint8 numpy image, got {_describe(image)}")
    if not 0.0 < field_of_view < 180.0:
        raise ValueError(f"field_of_view must be in (0, 180) degrees, got {field_of_view}")
    height, width = image.shape[:2]
    radiance = _linear(image)
    mean = radiance.reshape(height * width, -1).mean(axis=0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = np.hypot(x - (width - 1) / 2, y - (height - 1) / 2) / (np.hypot(width, height) / 2)
    angle = np.arctan(r * np.tan(np.radians(field_of_view / 2)))
    vignette = np.cos(angle) ** 4
    glow = vignette[..., None] * mean if image.ndim == 3 else vignette * mean[0]
    diffused = _encode(glow)
    return low_light(diffused, light, rng=rng)


def camera_view(
    scene: np.ndarray,
    size: tuple[int, int],
    *,
    centre: tuple[float, float] = (0.5, 0.5),
    scale: float = 1.0,
    roll: float = 0.0,
) -> np.ndarray:
    """The ``size = (width, height)`` view of a camera looking at ``scene``.

    ``centre`` is the point of the scene at the middle of the view, as fractions of the scene's
    width and height (panning and tilting move it); ``scale`` is view pixels per scene pixel
    (below 1 the view is area-averaged, as a sensor with fewer pixels would record it); ``roll``
    turns the view by that many degrees, counter-clockwise. Pixels outside the scene are mirrored
    in (reflect-101): keep the view inside the scene.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    width, height = size
    scene_h, scene_w = scene.shape[:2]
    cx, cy = centre[0] * scene_w, centre[1] * scene_h
    matrix = cv2.getRotationMatrix2D((cx, cy), roll, scale)
    matrix[0, 2] += width / 2 - cx
    matrix[1, 2] += height / 2 - cy
    if scale < 1:  # warpAffine samples; average over each view pixel's footprint first
        scene = cv2.GaussianBlur(scene, (0, 0), sigmaX=0.5 / scale)
    return cv2.warpAffine(scene, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def infrared(image: np.ndarray, light: float = 0.05, *, rng: RandomSource = None) -> np.ndarray:
    """A camera's infrared night mode: the IR-cut filter out, one monochrome image in all three channels.

    The scene's luma stands in for its infrared reflectance (a simplification: foliage and
    fabrics reflect IR differently from visible light), lit at ``light`` of the daylight exposure
    by the camera's illuminator and recorded with shot noise, read noise and auto gain as
    :func:`low_light`. Returns uint8 BGR with B = G = R.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy image, got {_describe(image)}")
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mono = low_light(gray, light, rng=rng)
    return cv2.cvtColor(mono, cv2.COLOR_GRAY2BGR)


def _linear(image: np.ndarray) -> np.ndarray:
    """8-bit values -> relative linear light in [0, 1] (gamma :data:`GAMMA`), float64."""
    radiance: np.ndarray = (image.astype(np.float64) / 255.0) ** GAMMA
    return radiance


def _encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> 8-bit values: clipped to [0, 1], gamma re-applied, rounded to uint8."""
    return np.rint(255.0 * np.clip(linear, 0.0, 1.0) ** (1.0 / GAMMA)).astype(np.uint8)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
