"""Colourfulness (Hasler & Süsstrunk 2003) of an image, on a small colour thumbnail.

**Formula.** With the opponent colour components of 8-bit R, G, B,

    rg = R - G,        yb = (R + G) / 2 - B,

the colourfulness is

    M = sqrt(σ_rg² + σ_yb²) + 0.3 · sqrt(μ_rg² + μ_yb²)

(D. Hasler and S. Süsstrunk, "Measuring colourfulness in natural images", Proc. SPIE 5007,
2003; σ and μ are the population standard deviation and mean over pixels). Unit: 8-bit levels of
the opponent components. Range [0, ~298]: 0 for any grey image (R = G = B, e.g. a camera in its
infrared night mode, whose output is monochrome); the bound is ``sqrt(1 + 0.3²) · sqrt(255² +
127.5²)``. Hasler and Süsstrunk's scale for photographs: not colourful 0, slightly 15,
moderately 33, averagely 45, quite 59, highly 82, extremely 109.

**Where it is measured.** On a 64 px colour thumbnail: the image is halved (the mean of each 2x2
block, rounded to 8 bits, OpenCV's exact ``INTER_AREA`` fast path) while its sides are even and
its longer side is at least four times :data:`quality.scene.THUMBNAIL_SIZE` = 64, then
area-resized (``cv2.INTER_AREA``, rounded to 8 bits) to a longer side of at most 64 pixels (never
upscaled); about 0.11 ms for a 640x480 frame on one core (0.17 ms in one step). The averaging
removes most of the colour noise a sensor adds in the dark, which would otherwise read as colour
(white noise of std σ per channel alone gives ``M ≈ 1.9 σ`` at full resolution, ``≈ 1.9 σ / k``
on a thumbnail that averages ``k x k`` pixels). Because of that averaging, ``M`` here is lower
than Hasler's full-resolution value for images whose colour lives in fine texture.

Gray images (``H x W``) have colourfulness 0; the alpha channel of BGRA is ignored.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from quality.luma import check_image
from quality.scene import THUMBNAIL_SIZE, thumbnail_shape

#: Weight of the mean opponent colour in the formula.
MEAN_WEIGHT = 0.3


def halvings(height: int, width: int) -> int:
    """How many times the colour thumbnail first halves an image of this size (module docstring)."""
    count = 0
    while max(height, width) >= 4 * THUMBNAIL_SIZE and height % 2 == 0 and width % 2 == 0:
        height, width, count = height // 2, width // 2, count + 1
    return count


def colour_thumbnail(image: np.ndarray) -> np.ndarray | None:
    """BGR uint8 reduced to a longer side of at most 64 px (module docstring); None for a gray image."""
    image = check_image(image)
    if image.ndim == 2:
        return None
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    height, width = thumbnail_shape(image.shape[0], image.shape[1])
    for _ in range(halvings(*image.shape[:2])):
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (height, width) == image.shape[:2]:
        return image
    out: np.ndarray = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return out


def colourfulness_of_bgr(bgr: np.ndarray) -> float:
    """Hasler & Süsstrunk's ``M`` of uint8 (or float) BGR pixels as given, without resizing."""
    values = np.asarray(bgr, dtype=np.float32)
    blue, green, red = values[..., 0], values[..., 1], values[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    mean_rg, std_rg = cv2.meanStdDev(rg)
    mean_yb, std_yb = cv2.meanStdDev(yb)
    spread = math.hypot(float(std_rg[0, 0]), float(std_yb[0, 0]))
    return spread + MEAN_WEIGHT * math.hypot(float(mean_rg[0, 0]), float(mean_yb[0, 0]))


def colourfulness(image: np.ndarray) -> float:
    """Colourfulness ``M`` of a uint8 BGR / BGRA / gray image, on its 64 px colour thumbnail (module docstring)."""
    thumb = colour_thumbnail(image)
    return 0.0 if thumb is None else colourfulness_of_bgr(thumb)
