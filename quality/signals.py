"""Pure functions of a uint8 luma image: brightness, contrast, sharpness and exposure."""

from __future__ import annotations

import cv2
import numpy as np

# Clipping thresholds, 8-bit grey levels: within 5 levels of black or white counts as clipped,
# which tolerates the small offset JPEG and sensor black-level subtraction leave on true clips.
DARK_LEVEL = 5
BRIGHT_LEVEL = 250


def brightness_contrast(luma: np.ndarray) -> tuple[float, float]:
    """(mean(Y) / 255, std(Y) / 255): brightness in [0, 1] and RMS contrast in [0, 0.5]."""
    mean, std = cv2.meanStdDev(luma)
    return float(mean[0, 0]) / 255.0, float(std[0, 0]) / 255.0


def sharpness(luma: np.ndarray) -> float:
    """Var(∇²Y) in grey levels²: variance of the 3x3 Laplacian (reflect-101 borders). Low = blurry."""
    laplacian = cv2.Laplacian(luma.astype(np.float32), cv2.CV_32F).ravel()
    # Two BLAS dot products are several times faster than meanStdDev or ndarray.var here.
    n = laplacian.size
    mean = float(np.dot(laplacian, _ones(n))) / n
    return max(float(np.dot(laplacian, laplacian)) / n - mean * mean, 0.0)


def histogram(luma: np.ndarray) -> np.ndarray:
    """Pixel counts per grey level 0..255 (float32, length 256)."""
    return cv2.calcHist([luma], [0], None, [256], [0, 256]).ravel()


def exposure(hist: np.ndarray) -> tuple[float, float]:
    """(fraction of Y <= DARK_LEVEL, fraction of Y >= BRIGHT_LEVEL) from a luma histogram, in [0, 1]."""
    total = float(hist.sum())
    return float(hist[: DARK_LEVEL + 1].sum()) / total, float(hist[BRIGHT_LEVEL:].sum()) / total


_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.ones(n, np.float32)
    return ones
