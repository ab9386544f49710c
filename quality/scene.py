"""The scene at a glance: a small luma thumbnail per frame, and how two of them compare.

Camera health (a covered, turned, defocused or frozen camera) compares each frame with the
frames before it. What it compares is computed here, as pure functions, on a **thumbnail**: the
analysis-scale luma (:mod:`quality.luma`) area-averaged (``cv2.INTER_AREA``) so that its longer
side is at most :data:`THUMBNAIL_SIZE` = 64 pixels (never upscaled), kept in float32 grey levels
(0-255) *without rounding*. Averaging ``k x k`` analysis pixels (``k`` = analysis side / thumbnail
side, 10 for a 640 px frame) divides independent pixel noise by ``k``, so the thumbnail keeps the
scene's layout, drops most sensor noise, and still differs measurably between two live frames of
a still scene, because the averaged noise is not rounded away.

Functions (``a``, ``b``: thumbnails of the same shape; float results):

* :func:`thumbnail`: analysis luma -> float32 thumbnail, grey levels.
* :func:`gradient_map`: Sobel gradient magnitude of a thumbnail,
  ``G = sqrt(Sx² + Sy²)`` with OpenCV's 3x3 Sobel kernels (reflect-101 borders), then smoothed by
  a Gaussian of std :data:`GRADIENT_BLUR` = 1 thumbnail pixel, so that a camera shaking by a
  percent of its view still matches itself (measured on photographs: a 1 % shift keeps the
  similarity >= 0.9; a 10 % pan drops it below 0.45). Grey levels per pixel (x4 from the kernel
  weights). Range [0, ~1442].
* :func:`structural_similarity`: zero-mean normalised cross-correlation of two gradient maps,
  ``Σ(a-ā)(b-b̄) / sqrt(Σ(a-ā)² Σ(b-b̄)²)``, the structure term of SSIM (Wang et al. 2004) taken
  over the whole map. Range [-1, 1], unitless; 1 = same layout of edges whatever the exposure or
  gain (it is invariant to scaling and offsetting either map), ~0 = unrelated scenes.
* :func:`low_res_contrast`: ``std(a) / max(mean(a), 1)``, the coefficient of variation of the
  thumbnail. Range [0, ~16) (0 = uniform), unitless. Invariant to gain; a lens covered by a hand
  or cloth reads near 0 while the darkest real scenes keep their layout.
* :func:`frame_change`: the median over pixels of ``|a - b|``, grey levels at thumbnail scale.
  Range [0, 255]. 0 for a re-sent identical frame. The median ignores a small region that keeps
  changing (an on-screen clock burnt into a frozen picture).
* :func:`noise_change`: what :func:`frame_change` reads between two frames of a perfectly still
  scene whose only difference is white noise of std ``σ`` at analysis scale:
  ``0.6745 · sqrt(2) · σ / k ≈ 0.954 σ / k`` (the median of ``|N(0, 2σ²/k²)|``), grey levels.
  Real camera noise is spatially correlated (demosaicing, compression), which makes the real
  change larger, so it is a conservative yardstick for "still live".
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from quality.luma import analysis_shape
from quality.signals import check_luma

#: Longer side, in pixels, of the scene thumbnail (see the module docstring).
THUMBNAIL_SIZE = 64
#: Std, in thumbnail pixels, of the Gaussian that smooths the gradient map.
GRADIENT_BLUR = 1.0
#: Median of the absolute value of a standard normal variable.
_MEDIAN_ABS_NORMAL = 0.6744897501960817


def thumbnail_shape(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the thumbnail of analysis luma of this size."""
    return analysis_shape(height, width, THUMBNAIL_SIZE)


def thumbnail(luma: np.ndarray) -> np.ndarray:
    """Analysis-scale uint8 luma -> float32 thumbnail (longer side <= 64), grey levels 0-255, unrounded."""
    luma = check_luma(luma)
    height, width = thumbnail_shape(*luma.shape)
    values = luma.astype(np.float32)
    if (height, width) == luma.shape:
        return values
    out: np.ndarray = cv2.resize(values, (width, height), interpolation=cv2.INTER_AREA)
    return out


def downscale(analysis_side: int, thumbnail_side: int) -> float:
    """``k``: how many analysis pixels one thumbnail pixel averages along a side (>= 1)."""
    return max(analysis_side / max(thumbnail_side, 1), 1.0)


def gradient_map(thumb: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude ``sqrt(Sx² + Sy²)`` of a float32 thumbnail (3x3 kernels, reflect-101),
    smoothed by a Gaussian of std :data:`GRADIENT_BLUR` pixels."""
    values = np.asarray(thumb, dtype=np.float32)
    gx = cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=3)
    smoothed: np.ndarray = cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), sigmaX=GRADIENT_BLUR)
    return smoothed


def structural_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-mean normalised cross-correlation of two maps of one shape, in [-1, 1] (0 if either is flat).

    Raises:
        ValueError: when the shapes differ (the frame size changed: compare nothing).
    """
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {a.shape} vs {b.shape}")
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator <= 1e-12:
        return 0.0
    return max(-1.0, min(1.0, float(np.dot(x, y)) / denominator))


def low_res_contrast(thumb: np.ndarray) -> float:
    """Coefficient of variation of a thumbnail, ``std / max(mean, 1)``: 0 for a uniform frame."""
    mean, std = cv2.meanStdDev(np.asarray(thumb, dtype=np.float32))
    return float(std[0, 0]) / max(float(mean[0, 0]), 1.0)


def frame_change(a: np.ndarray, b: np.ndarray) -> float:
    """Median over pixels of ``|a - b|`` for two thumbnails of one shape, grey levels (0 = identical).

    Raises:
        ValueError: when the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(f"thumbnails of different shapes: {a.shape} vs {b.shape}")
    difference = cv2.absdiff(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))
    return float(np.median(difference))


def noise_change(noise_sigma: float, k: float) -> float:
    """:func:`frame_change` expected from white noise alone: ``0.6745 · sqrt(2) · σ / k`` grey levels."""
    return _MEDIAN_ABS_NORMAL * math.sqrt(2.0) * max(noise_sigma, 0.0) / max(k, 1.0)
