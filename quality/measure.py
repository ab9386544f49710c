"""``measure(image)``: all seven quality signals of one image, on the CPU with OpenCV.

Gives the same numbers as the pure functions of :mod:`quality.signals` and :mod:`quality.noise`
applied to :func:`quality.luma.analysis_luma` (and :func:`quality.colour.colourfulness` of the
image), but computes the luma signals in one pass over shared intermediates (one Laplacian for
sharpness and noise, one exposure mask reused for the noise clip mask, exposure counted only when
the image reaches the thresholds) to stay near 1 ms for a 640x480 BGR frame on one CPU core
(``python -m quality.bench``).

:func:`measure_scene` also returns the frame's scene thumbnail (:func:`quality.scene.thumbnail`)
from the same analysis luma, for the camera-health checks that compare frames over time.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality.colour import colourfulness
from quality.luma import DEFAULT_ANALYSIS_SIZE, analysis_luma
from quality.noise import block_energy, clipped_blocks, sigma_from_blocks, unclipped_mask, whole_image_sigma
from quality.report import QualityReport
from quality.scene import thumbnail
from quality.signals import (
    OVEREXPOSED_LEVEL,
    UNDEREXPOSED_LEVEL,
    laplacian,
    laplacian_sum,
    laplacian_variance,
)


def measure(image: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> QualityReport:
    """Measure one image: uint8 BGR ``HxWx3`` (OpenCV order), BGRA ``HxWx4`` or gray ``HxW``.

    The image is converted to Rec.601 luma and area-resized so its longer side is at most
    ``analysis_size`` pixels (never upscaled); see :class:`QualityReport` for each signal.

    Raises:
        ValueError: for any other dtype or shape, or an empty array.
    """
    return measure_luma(analysis_luma(image, analysis_size), colourfulness(image))


def measure_scene(image: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> tuple[QualityReport, np.ndarray]:
    """:func:`measure`, and the float32 scene thumbnail of the same analysis luma (:mod:`quality.scene`)."""
    luma = analysis_luma(image, analysis_size)
    return measure_luma(luma, colourfulness(image)), thumbnail(luma)


def measure_luma(luma: np.ndarray, colour: float = 0.0) -> QualityReport:
    """All signals of uint8 luma already at analysis scale (no validation, no resize), with the
    image's colourfulness as given (0 for a gray image)."""
    count = luma.size
    mean, std = cv2.meanStdDev(luma)
    low, high, _, _ = cv2.minMaxLoc(luma)

    unclipped = None
    under = over = 0.0
    dark, bright = low <= UNDEREXPOSED_LEVEL, high >= OVEREXPOSED_LEVEL
    if dark or bright:  # otherwise no pixel reaches either threshold: both ratios are 0
        unclipped = unclipped_mask(luma)
        outside = count - cv2.countNonZero(unclipped)
        if dark and bright:
            mask = cv2.threshold(luma, UNDEREXPOSED_LEVEL, 255, cv2.THRESH_BINARY_INV)[1]
            n_under = cv2.countNonZero(mask)
            under, over = n_under / count, (outside - n_under) / count
        elif dark:
            under = outside / count
        else:
            over = outside / count

    lap = laplacian(luma)
    energy, sum_of_squares = block_energy(lap)
    sharpness = laplacian_variance(sum_of_squares, laplacian_sum(luma), count)
    if energy is None:
        noise = whole_image_sigma(sum_of_squares, count)
    else:
        noise = sigma_from_blocks(energy, None if unclipped is None else clipped_blocks(unclipped))

    return QualityReport(
        brightness=float(mean[0, 0]) / 255.0,
        contrast=float(std[0, 0]) / 255.0,
        sharpness=sharpness,
        noise_sigma=noise,
        underexposed_ratio=under,
        overexposed_ratio=over,
        colourfulness=colour,
    )
