"""Additive-noise estimation: Laplacian energy of the quietest 8x8 blocks.

**Model.** The image is a clean picture plus white noise of std σ (grey levels, at analysis
scale). The 3x3 Laplacian ``L`` (:func:`quality.signals.laplacian`) responds to white noise with
variance ``20 σ²`` (the sum of its squared coefficients, 1+1+1+1+16), and to smooth image content
hardly at all; edges and texture add energy on top. The estimator is

    σ̂ = sqrt(P10(E_b) / 20) / c,      E_b = mean of L² over the 8x8 block b,

where ``P10`` is the 10th percentile (linear interpolation, as ``numpy.percentile``) over the
blocks that tile the image from its top-left corner (a partial last row/column of blocks is left
out). The quietest blocks are the flattest, so edges and texture mostly stay out of the estimate;
a plain average over the whole image (Immerkaer 1996) overestimates on photographs. This follows
block-based estimators such as Shin et al. (2005) and Tai & Yang (2008, which excludes the ~10%
strongest-gradient pixels).

**Clipping.** Where the picture is clipped at black or white the noise is cut off too, so blocks
containing any pixel with ``Y <= 5`` or ``Y >= 250`` (the exposure thresholds of
:mod:`quality.signals`) are left out, unless fewer than :data:`MIN_CLEAN_BLOCKS` blocks would
remain (a mostly black or white frame: then all blocks count and the estimate reads low, as the
noise really is cut off). Noise of std σ near a clip level is flagged only where it reaches
within 5 levels of it, so this scales with the noise itself.

**Calibration.** On pure noise the 10th percentile of block energies sits below their mean by a
factor that depends only on block size, percentile and the Laplacian's correlations, not on the
image: ``c = NOISE_CALIBRATION = 0.8543``. It was measured once with :func:`calibration_factor`
(64 frames 640x480 of flat grey 128 plus Gaussian noise σ = 20, rounded to uint8; spread between
frames ±0.3%) and is the only fitted constant: nothing was fitted to photographs. The tests check
it on pure noise of other strengths.

**Why the Laplacian.** Immerkaer's operator ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` leaks less texture
(about 3.5% instead of 5.2% mean error in ``python -m quality.bench``) but costs one more
full-image filter pass (~0.25 ms at 640x480 on the 2-core development machine), and :func:`quality.measure` must stay
under 1 ms; the Laplacian is computed for sharpness anyway.

**Accuracy** (``python -m quality.bench``: 10 natural photographs at analysis scale, Gaussian
noise σ = 5, 10, 20, 30 added then rounded and clipped to uint8 as a camera would, ground truth =
the added σ): mean absolute relative error 5.2% (σ = 5: 10.8%, 10: 5.8%, 20: 2.6%, 30: 1.4%),
against 7.9% for ``skimage.restoration.estimate_sigma`` and 10.0% for Immerkaer's plain estimator
on the same images. The error is largest at σ = 5, where the photographs' own noise and fine
texture matter most; on pure textures (grass, gravel) it is much larger (~28%), as for skimage.

Images smaller than one block (under 8 px on a side) fall back to ``sqrt(mean(L²) / 20)`` over the
whole image, which includes image structure.

Range: [0, ~128) grey levels. Unit: 8-bit grey levels of luma at analysis scale. For camera
noise that grows with brightness (shot noise) this reads the noise of the flattest regions.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from quality.signals import OVEREXPOSED_LEVEL, UNDEREXPOSED_LEVEL, check_luma, laplacian

#: Side of the square blocks, in pixels at analysis scale.
NOISE_BLOCK = 8
#: Percentile of block energies taken as the noise floor.
NOISE_PERCENTILE = 10.0
#: Σ(kernel²) of the 3x3 Laplacian: Var(L) = 20 σ² for white noise of std σ.
LAPLACIAN_NOISE_GAIN = 20.0
#: Bias of the percentile on pure Gaussian noise, measured by :func:`calibration_factor`.
NOISE_CALIBRATION = 0.8543
#: Fewer unclipped blocks than this and all blocks are used (see module docstring).
MIN_CLEAN_BLOCKS = 16


def noise_sigma(luma: np.ndarray) -> float:
    """Estimated std of additive noise in uint8 luma, 8-bit grey levels (see module docstring).

    ``sqrt(P10(8x8-block mean of L²) / 20) / 0.8543`` over blocks without clipped pixels.
    Range [0, ~128).
    """
    luma = check_luma(luma)
    energy, sum_of_squares = block_energy(laplacian(luma))
    if energy is None:
        return whole_image_sigma(sum_of_squares, luma.size)
    return sigma_from_blocks(energy, clipped_blocks(unclipped_mask(luma)))


def unclipped_mask(luma: np.ndarray) -> np.ndarray:
    """uint8 mask: 255 where ``UNDEREXPOSED_LEVEL < Y < OVEREXPOSED_LEVEL`` (5 < Y < 250), else 0."""
    return cv2.inRange(luma, UNDEREXPOSED_LEVEL + 1, OVEREXPOSED_LEVEL - 1)


def block_energy(lap: np.ndarray) -> tuple[np.ndarray | None, float]:
    """``(E, ΣL²)``: mean of ``L²`` per 8x8 block, float32 ``(H // 8, W // 8)``, and ``ΣL²`` over
    the whole image (float; exact for the integer-valued Laplacian of uint8 luma). ``E`` is None
    when the image is smaller than one block.
    """
    height, width = lap.shape
    rows, cols = height // NOISE_BLOCK, width // NOISE_BLOCK
    if rows == 0 or cols == 0:
        return None, float(cv2.norm(lap, cv2.NORM_L2SQR))
    # Σ of L² over each group of 8 rows, (rows, W): one pass, no full-size temporary. Exact in
    # float32 for uint8 luma: 8 · 1020² < 2**24.
    groups = lap[: rows * NOISE_BLOCK].reshape(rows, NOISE_BLOCK, width)
    strips = cv2.multiply(groups[:, 0], groups[:, 0])
    for i in range(1, NOISE_BLOCK):
        cv2.accumulateSquare(groups[:, i], strips)
    total = float(cv2.sumElems(strips)[0])
    if height > rows * NOISE_BLOCK:
        total += float(cv2.norm(lap[rows * NOISE_BLOCK :], cv2.NORM_L2SQR))
    # Area-averaging 8 columns of the 8-row sums: block sum / 8; one more / 8 gives the mean.
    energy = cv2.resize(strips[:, : cols * NOISE_BLOCK], (cols, rows), interpolation=cv2.INTER_AREA)
    return np.multiply(energy, 1.0 / NOISE_BLOCK, out=energy), total


def clipped_blocks(unclipped: np.ndarray) -> np.ndarray:
    """Bool ``(H // 8, W // 8)``: True where the 8x8 block holds any 0 of an :func:`unclipped_mask`."""
    height, width = unclipped.shape
    rows, cols = height // NOISE_BLOCK, width // NOISE_BLOCK
    groups = unclipped[: rows * NOISE_BLOCK].reshape(rows, NOISE_BLOCK, width)
    strips = cv2.min(groups[:, 0], groups[:, 1])
    for i in range(2, NOISE_BLOCK):
        cv2.min(strips, groups[:, i], dst=strips)
    # Area-averaging 8 columns of 0/255 values gives 255 only when all 8 are 255.
    return cv2.resize(strips[:, : cols * NOISE_BLOCK], (cols, rows), interpolation=cv2.INTER_AREA) != 255


def sigma_from_blocks(energy: np.ndarray, clipped: np.ndarray | None) -> float:
    """``sqrt(P10(E) / 20) / NOISE_CALIBRATION`` over the unclipped blocks (all if too few)."""
    values = energy.ravel()
    if clipped is not None:
        clean = values[~clipped.ravel()]
        if clean.size >= MIN_CLEAN_BLOCKS:
            values = clean
    floor = percentile_linear(values, NOISE_PERCENTILE)
    return math.sqrt(max(floor, 0.0) / LAPLACIAN_NOISE_GAIN) / NOISE_CALIBRATION


def whole_image_sigma(sum_of_squares: float, count: int) -> float:
    """Fallback below one block: ``sqrt(mean(L²) / 20)``, no percentile, no calibration."""
    return math.sqrt(sum_of_squares / count / LAPLACIAN_NOISE_GAIN)


def percentile_linear(values: np.ndarray, q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation) via a partial sort; ``values`` non-empty."""
    n = values.size
    position = (n - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, n - 1)
    ordered = np.partition(values, (low, high)) if high != low else np.partition(values, low)
    a, b = float(ordered[low]), float(ordered[high])
    return a + (position - low) * (b - a)


def calibration_factor(
    n_images: int = 64, sigma: float = 20.0, shape: tuple[int, int] = (480, 640), seed: int = 0
) -> float:
    """Mean of the uncalibrated estimate / σ on flat grey 128 plus Gaussian noise σ (uint8).

    This is how :data:`NOISE_CALIBRATION` was obtained (with the defaults); it involves no
    photograph.
    """
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_images):
        noisy = np.clip(np.rint(128.0 + rng.normal(0.0, sigma, shape)), 0, 255).astype(np.uint8)
        energy, _ = block_energy(laplacian(noisy))
        assert energy is not None
        ratios.append(math.sqrt(percentile_linear(energy.ravel(), NOISE_PERCENTILE) / LAPLACIAN_NOISE_GAIN) / sigma)
    return float(np.mean(ratios))
