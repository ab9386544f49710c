"""Input validation, Rec.601 luma, and the resize to analysis size.

Luma uses the Rec.601 weights of OpenCV's ``COLOR_BGR2GRAY``:
``Y = 0.299 R + 0.587 G + 0.114 B`` (OpenCV computes it in 14-bit fixed point,
``(4899 R + 9617 G + 1868 B + 8192) >> 14``, which the torch path reproduces exactly).

Every signal is computed on luma resized with area interpolation (``cv2.INTER_AREA``) so that
its longer side is at most ``analysis_size`` pixels (default 640; never upscaled). A 4K camera and
a VGA camera of the same scene then give comparable sharpness and noise: both are measured at the
same scale. It also means ``noise_sigma`` is the noise *at analysis scale*: area-averaging a
1280 px frame to 640 px averages 2x2 pixels and halves independent pixel noise.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_ANALYSIS_SIZE = 640


def check_image(image: object) -> np.ndarray:
    """Return ``image`` if it is uint8 HxW, HxWx3 (BGR) or HxWx4 (BGRA); else raise ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy.ndarray image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8 (8-bit pixels), got {image.dtype}")
    shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not shape_ok:
        raise ValueError(f"expected shape HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA), got {image.shape}")
    if image.shape[0] < 3 or image.shape[1] < 3:
        raise ValueError(f"image must be at least 3x3 pixels, got {image.shape[1]}x{image.shape[0]}")
    return image


def analysis_shape(height: int, width: int, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> tuple[int, int]:
    """(height, width) after scaling the longer side down to ``analysis_size`` (never up)."""
    scale = analysis_size / max(height, width)
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_luma(image: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> np.ndarray:
    """Rec.601 luma of a checked image, area-resized to analysis size, uint8 HxW."""
    image = check_image(image)
    if image.ndim == 2:
        gray = image
    elif image.shape[2] == 1:
        gray = image[:, :, 0]
    elif image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    else:
        gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    height, width = analysis_shape(gray.shape[0], gray.shape[1], analysis_size)
    if (height, width) != gray.shape[:2]:
        gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)
