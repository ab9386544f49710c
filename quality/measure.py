"""``measure(image)``: every quality signal of one image, on the CPU with NumPy/OpenCV."""

from __future__ import annotations

import numpy as np

from quality.luma import DEFAULT_ANALYSIS_SIZE, to_luma
from quality.noise import noise_sigma
from quality.report import QualityReport
from quality.signals import brightness_contrast, exposure, histogram, sharpness


def measure(image: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> QualityReport:
    """Measure a uint8 BGR (HxWx3), BGRA (HxWx4) or gray (HxW) image; raise ValueError otherwise."""
    luma = to_luma(image, analysis_size)
    brightness, contrast = brightness_contrast(luma)
    hist = histogram(luma)
    under, over = exposure(hist)
    return QualityReport(
        brightness=brightness,
        contrast=contrast,
        sharpness=sharpness(luma),
        noise_sigma=noise_sigma(luma, has_clipping=bool(hist[0] or hist[255])),
        underexposed_ratio=under,
        overexposed_ratio=over,
    )
