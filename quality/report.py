"""The quality report of one image: six numbers, each with its formula, range and unit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

#: Report field names, in the order used by :func:`quality.measure_batch_tensor` columns.
REPORT_FIELDS: tuple[str, ...] = (
    "brightness",
    "contrast",
    "sharpness",
    "noise_sigma",
    "underexposed_ratio",
    "overexposed_ratio",
)


@dataclass(frozen=True)
class QualityReport:
    """Image-quality signals of one image.

    Every signal is computed on Rec.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (OpenCV's
    ``COLOR_BGR2GRAY``, 8-bit), area-resized (``cv2.INTER_AREA``) so that its longer side is at most
    ``analysis_size`` pixels (default 640, never upscaled); see :mod:`quality.luma`. ``N`` below is
    the pixel count at that scale.

    Attributes:
        brightness: mean luma / 255 = ``ΣY / (255 N)``. Range [0, 1], unitless. Daylight scenes
            sit around 0.35-0.6; below 0.15 is dark.
        contrast: RMS contrast, population std of luma / 255 = ``sqrt(Σ(Y - Ȳ)² / N) / 255``.
            Range [0, 0.5], unitless. Natural photographs are typically 0.15-0.3.
        sharpness: variance of the 3x3 Laplacian ``L = [[0,1,0],[1,-4,1],[0,1,0]] * Y``
            (``cv2.Laplacian`` with its default ``ksize=1``, reflect-101 borders):
            ``ΣL² / N - (ΣL / N)²``. Unit: grey levels². Range [0, 16 · 255² ≈ 1.04e6]; sharp street
            scenes at 640 px give roughly 500-3000, a Gaussian blur of sigma 3 px brings that under
            ~50. Low means blurry; noise raises it (white noise of std σ adds 20 σ²).
        noise_sigma: estimated standard deviation of additive noise in luma, in 8-bit grey levels
            *at analysis scale*. Range [0, ~128). Clean daylight frames read ~1-3, night frames
            with gain 8-30. Estimator: 10th percentile of 8x8-block Laplacian energy, see
            :mod:`quality.noise`.
        underexposed_ratio: fraction of luma pixels ``Y <= 5``
            (:data:`quality.signals.UNDEREXPOSED_LEVEL`). Range [0, 1], unitless.
        overexposed_ratio: fraction of luma pixels ``Y >= 250``
            (:data:`quality.signals.OVEREXPOSED_LEVEL`). Range [0, 1], unitless.
    """

    brightness: float
    contrast: float
    sharpness: float
    noise_sigma: float
    underexposed_ratio: float
    overexposed_ratio: float

    def as_dict(self) -> dict[str, float]:
        """The six signals as ``{field name: value}``, in :data:`REPORT_FIELDS` order."""
        return asdict(self)


assert tuple(f.name for f in fields(QualityReport)) == REPORT_FIELDS
