"""Pure functions of a uint8 luma image (HxW): brightness, contrast, sharpness, exposure.

Each takes the luma at analysis scale (see :mod:`quality.luma`) and returns a Python float.
The noise estimator lives in :mod:`quality.noise`; :func:`quality.measure` computes everything at
once, sharing intermediate results, and gives exactly the same numbers as these functions.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Luma at or below this level (8-bit grey levels) counts as underexposed / crushed black.
#: 5 rather than 0 tolerates the small offsets JPEG and sensor black-level subtraction leave.
UNDEREXPOSED_LEVEL = 5
#: Luma at or above this level (8-bit grey levels) counts as overexposed / blown out.
OVEREXPOSED_LEVEL = 250


def check_luma(luma: object) -> np.ndarray:
    """Return ``luma`` if it is a non-empty 2-D uint8 array; else raise ValueError."""
    if not isinstance(luma, np.ndarray) or luma.dtype != np.uint8 or luma.ndim != 2 or luma.size == 0:
        got = f"{luma.dtype} array of shape {luma.shape}" if isinstance(luma, np.ndarray) else type(luma).__name__
        raise ValueError(f"expected non-empty uint8 luma of shape HxW, got {got}")
    return luma


def brightness(luma: np.ndarray) -> float:
    """Mean luma / 255, ``ΣY / (255 N)``. Range [0, 1], unitless."""
    return float(cv2.mean(check_luma(luma))[0]) / 255.0


def contrast(luma: np.ndarray) -> float:
    """RMS contrast, population std of luma / 255, ``sqrt(Σ(Y - Ȳ)² / N) / 255``. Range [0, 0.5]."""
    _, std = cv2.meanStdDev(check_luma(luma))
    return float(std[0, 0]) / 255.0


def laplacian(luma: np.ndarray) -> np.ndarray:
    """3x3 Laplacian ``[[0,1,0],[1,-4,1],[0,1,0]] * Y`` as float32 HxW, grey levels.

    ``cv2.Laplacian`` with its default ``ksize=1`` and reflect-101 borders. Values are integers
    in [-1020, 1020].
    """
    return cv2.Laplacian(check_luma(luma).astype(np.float32), cv2.CV_32F)


def laplacian_sum(luma: np.ndarray) -> int:
    """``Σ L`` over the image, from the borders alone (exact integer, grey levels).

    With reflect-101 borders the second differences telescope (summation by parts): along a
    column of height ``H >= 2``, ``Σ_y (Y[y-1] - 2 Y[y] + Y[y+1]) = Y[1] + Y[H-2] - Y[0] - Y[H-1]``
    (0 when ``H == 1``), and likewise along rows. Reading 4 rows and 4 columns is much cheaper than
    summing the Laplacian image.
    """
    luma = check_luma(luma)
    height, width = luma.shape
    total = 0
    if height > 1:  # row sums of the first two and last two rows
        first = cv2.reduce(luma[:2], 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        last = cv2.reduce(luma[height - 2 :], 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        total += int(first[1, 0]) - int(first[0, 0]) + int(last[0, 0]) - int(last[1, 0])
    if width > 1:  # column sums of the first two and last two columns
        first = cv2.reduce(luma[:, :2], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        last = cv2.reduce(luma[:, width - 2 :], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        total += int(first[0, 1]) - int(first[0, 0]) + int(last[0, 0]) - int(last[0, 1])
    return total


def laplacian_variance(sum_of_squares: float, total: float, count: int) -> float:
    """Population variance ``ΣL²/N - (ΣL/N)²`` from the sums, clamped at 0 (grey levels²)."""
    mean = total / count
    return max(sum_of_squares / count - mean * mean, 0.0)


def sharpness(luma: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of luma (see :func:`laplacian`), in grey levels². Low = blurry.

    ``ΣL²/N - (ΣL/N)²``. Range [0, ~1.04e6]; sharp 640 px street scenes ~500-3000, a Gaussian blur
    of sigma 3 px brings that under ~50. White noise of std σ adds ``20 σ²`` (Σ kernel² = 20).
    """
    lap = laplacian(luma).ravel()
    return laplacian_variance(float(np.dot(lap.astype(np.float64), lap)), laplacian_sum(luma), lap.size)


def underexposed_ratio(luma: np.ndarray) -> float:
    """Fraction of pixels with ``Y <= UNDEREXPOSED_LEVEL`` (5). Range [0, 1], unitless."""
    luma = check_luma(luma)
    mask = cv2.threshold(luma, UNDEREXPOSED_LEVEL, 255, cv2.THRESH_BINARY_INV)[1]
    return cv2.countNonZero(mask) / luma.size


def overexposed_ratio(luma: np.ndarray) -> float:
    """Fraction of pixels with ``Y >= OVEREXPOSED_LEVEL`` (250). Range [0, 1], unitless."""
    luma = check_luma(luma)
    mask = cv2.threshold(luma, OVEREXPOSED_LEVEL - 1, 255, cv2.THRESH_BINARY)[1]
    return cv2.countNonZero(mask) / luma.size
