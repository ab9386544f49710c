"""Image-quality signals for monitoring a detector's input: brightness, contrast, blur, noise, exposure.

Importable on its own (NumPy and OpenCV; torch only for :func:`measure_batch`)::

    import quality
    report = quality.measure(bgr_uint8_image)
    report.brightness, report.noise_sigma
"""

from quality.measure import measure
from quality.report import QualityReport
from quality.torch_batch import measure_batch

__all__ = ["QualityReport", "measure", "measure_batch"]
