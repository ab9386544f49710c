"""Image-quality signals for monitoring a detector's input: brightness, contrast, blur, noise, exposure.

Importable on its own (NumPy and OpenCV); torch is imported only when :func:`measure_batch` runs::

    import quality
    report = quality.measure(bgr_uint8_image)
    report.brightness, report.noise_sigma

* :func:`measure` - one NumPy image on the CPU -> :class:`QualityReport`;
* :func:`measure_batch` - torch uint8 tensors on any device -> list of :class:`QualityReport`;
* :func:`low_light`, :func:`gaussian_noise`, :func:`blur` - honest degradations for tests/demos.
"""

from quality.measure import measure
from quality.report import REPORT_FIELDS, SIGNALS, QualityReport, SignalInfo
from quality.simulate import blur, gaussian_noise, low_light
from quality.torch_batch import measure_batch, measure_batch_tensor

__all__ = [
    "REPORT_FIELDS",
    "SIGNALS",
    "QualityReport",
    "SignalInfo",
    "blur",
    "gaussian_noise",
    "low_light",
    "measure",
    "measure_batch",
    "measure_batch_tensor",
]
