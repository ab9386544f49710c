"""Image-quality signals for monitoring a detector's input: brightness, contrast, blur, noise, exposure,
colourfulness; and the scene thumbnail camera-health checks compare frames with.

Importable on its own (NumPy and OpenCV); torch is imported only when :func:`measure_batch` runs::

    import quality
    report = quality.measure(bgr_uint8_image)
    report.brightness, report.noise_sigma

* :func:`measure` - one NumPy image on the CPU -> :class:`QualityReport`;
  :func:`measure_scene` - the same and the frame's scene thumbnail (:mod:`quality.scene`);
* :func:`measure_batch` - torch uint8 tensors on any device -> list of :class:`QualityReport`;
  :func:`measure_batch_scene` - the report table and the thumbnails, on the device;
* :mod:`quality.scene` - thumbnails, gradient maps and how two frames compare (pure functions);
* :func:`low_light`, :func:`gaussian_noise`, :func:`blur`, :func:`haze`, :func:`covered`,
  :func:`camera_view`, :func:`infrared` - honest degradations for tests/demos.
"""

from quality.colour import colourfulness
from quality.measure import measure, measure_scene
from quality.report import REPORT_FIELDS, SIGNALS, QualityReport, SignalInfo
from quality.simulate import blur, camera_view, covered, gaussian_noise, haze, infrared, low_light
from quality.torch_batch import measure_batch, measure_batch_scene, measure_batch_tensor

__all__ = [
    "REPORT_FIELDS",
    "SIGNALS",
    "QualityReport",
    "SignalInfo",
    "blur",
    "camera_view",
    "colourfulness",
    "covered",
    "gaussian_noise",
    "haze",
    "infrared",
    "low_light",
    "measure",
    "measure_batch",
    "measure_batch_scene",
    "measure_batch_tensor",
    "measure_scene",
]
