"""Additive-noise estimation: Immerkaer's operator on the quietest blocks of the image.

Immerkaer (1996) filters luma with ``M = [[1,-2,1],[-2,4,-2],[1,-2,1]]``, the difference of two
Laplacians, which cancels image structure up to second order; for white Gaussian noise of std σ
the residual has std ``6σ`` (ΣM² = 36). Averaged over a whole photo, edges and texture leak into
the residual and the estimate runs high (~10% on natural photos). So, in the spirit of block-based
estimators (e.g. Shin et al. 2005), the residual energy ``r²`` is averaged over 8x8 blocks and
only the quietest blocks count: σ̂ = sqrt(P10(block mean r²)) / 6 / c. Blocks touching clipped
pixels (Y = 0 or 255, where noise is cut off) are left out when enough others remain.

The low percentile of block energies is biased low even on pure noise, by a factor ``c`` that
depends only on block size and percentile, not on the image. ``c = 0.793`` was measured once on
pure Gaussian noise (σ = 20, 640x480, 20 draws) and is checked by the tests on pure noise of
other strengths. Accuracy on natural photographs with added noise: see ``python -m quality.bench``.

Range: [0, ~128) grey levels. Unit: 8-bit grey levels of luma at analysis size.
"""

from __future__ import annotations

import cv2
import numpy as np

IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
RESIDUAL_GAIN = 6.0  # sqrt(sum(IMMERKAER**2))
BLOCK = 8
PERCENTILE = 10.0
CALIBRATION = 0.793  # P10 bias on pure Gaussian noise for 8x8 blocks (see module docstring)
MIN_UNCLIPPED_FRACTION = 0.05
_KERNEL3 = np.ones((3, 3), np.uint8)
_TAPS = np.array([1, -2, 1], dtype=np.float32)


def noise_sigma(luma: np.ndarray, *, has_clipping: bool = True) -> float:
    """Estimated std of additive noise in a uint8 luma image, grey levels (see module docstring).

    ``has_clipping=False`` (no pixel at 0 or 255, known from a histogram) skips the clip mask.
    """
    # M is separable, [1,-2,1]ᵀ[1,-2,1]: two 3-tap passes beat one 3x3 pass.
    residual = cv2.sepFilter2D(luma.astype(np.float32), cv2.CV_32F, _TAPS, _TAPS)[1:-1, 1:-1]
    height, width = residual.shape
    rows, cols = height // BLOCK, width // BLOCK
    if rows == 0 or cols == 0:  # smaller than one block: fall back to the plain estimator
        return float(np.sqrt(np.mean(residual * residual))) / RESIDUAL_GAIN
    residual = residual[: rows * BLOCK, : cols * BLOCK]
    energy = cv2.resize(cv2.multiply(residual, residual), (cols, rows), interpolation=cv2.INTER_AREA)
    if not has_clipping:
        return _sigma(energy.ravel())
    unclipped = cv2.erode(cv2.inRange(luma, 1, 254), _KERNEL3)[1:-1, 1:-1][: rows * BLOCK, : cols * BLOCK]
    whole = cv2.resize(unclipped, (cols, rows), interpolation=cv2.INTER_AREA) == 255
    if np.count_nonzero(whole) >= MIN_UNCLIPPED_FRACTION * whole.size:
        return _sigma(energy[whole])
    return _sigma(energy.ravel())


def _sigma(block_energy: np.ndarray) -> float:
    return float(np.sqrt(np.percentile(block_energy, PERCENTILE))) / RESIDUAL_GAIN / CALIBRATION
