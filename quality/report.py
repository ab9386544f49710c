"""The quality report of one image: seven numbers, each with its formula, range and unit.

Adding a signal: a field of :class:`QualityReport` (with its formula), its :data:`SIGNALS` entry,
and its computation in :func:`quality.measure` and :func:`quality.measure_batch_tensor`. The
service exports, stores and compares every field listed here (metrics, API, drift) by itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class SignalInfo:
    """How a report field is named and binned when it is monitored.

    Attributes:
        field: the :class:`QualityReport` attribute.
        name: the name with its unit, Prometheus style (``vision_image_<name>`` in the service).
        description: one line for people (metric help, API schema).
        buckets: histogram upper bounds over the signal's real range, finer where problems live.
    """

    field: str
    name: str
    description: str
    buckets: tuple[float, ...]


#: Every signal of the report, in :class:`QualityReport` field order.
SIGNALS: tuple[SignalInfo, ...] = (
    SignalInfo(
        "brightness",
        "brightness_ratio",
        "Mean Rec.601 luma / 255, 0..1.",
        # Finer steps at the dark end, where low light lives.
        (0.02, 0.05, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0),
    ),
    SignalInfo(
        "contrast",
        "contrast_ratio",
        "RMS contrast (std of luma / 255), 0..0.5.",
        # Photographs rarely exceed 0.35; 0.5 is the theoretical maximum.
        (0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5),
    ),
    SignalInfo(
        "sharpness",
        "sharpness",
        "Variance of the Laplacian of luma, grey levels squared (low = blurry).",
        # Spans decades (blurred ~10, sharp street scene ~1000+): log-spaced.
        (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000),
    ),
    SignalInfo(
        "noise_sigma",
        "noise_sigma",
        "Estimated additive noise std, 8-bit grey levels.",
        # Clean daylight 1-3, night with gain 8-30.
        (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50),
    ),
    SignalInfo(
        "underexposed_ratio",
        "underexposed_ratio",
        "Fraction of pixels clipped dark (luma <= 5).",
        # Most frames clip almost nothing: resolve the low end finely.
        (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
    ),
    SignalInfo(
        "overexposed_ratio",
        "overexposed_ratio",
        "Fraction of pixels clipped bright (luma >= 250).",
        (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
    ),
    SignalInfo(
        "colourfulness",
        "colourfulness",
        "Hasler-Suesstrunk colourfulness of the 64 px colour thumbnail, 8-bit opponent-colour levels "
        "(0 = grey, e.g. infrared night mode).",
        # Fine below 5, where monochrome (IR) frames sit; then Hasler & Suesstrunk's category
        # boundaries (slightly 15, moderately 33, averagely 45, quite 59, highly 82, extremely 109).
        (0.5, 1, 2, 3, 5, 8, 11, 15, 20, 25, 33, 45, 59, 82, 109, 150),
    ),
)

#: Report field names, in the order used by :func:`quality.measure_batch_tensor` columns.
REPORT_FIELDS: tuple[str, ...] = tuple(signal.field for signal in SIGNALS)


@dataclass(frozen=True)
class QualityReport:
    """Image-quality signals of one image.

    Every signal but colourfulness is computed on Rec.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (OpenCV's
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
        colourfulness: Hasler & Süsstrunk's (2003) colourfulness of the *colour* image
            area-resized to a longer side of at most 64 px (:mod:`quality.colour`): with
            ``rg = R - G`` and ``yb = (R + G) / 2 - B``,
            ``M = sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²)``. Unit: 8-bit opponent-colour
            levels. Range [0, ~298]; 0 for grey images, which is what a camera sends in its
            infrared night mode; colour photographs read ~15-110. The only signal not computed
            on luma.
    """

    brightness: float
    contrast: float
    sharpness: float
    noise_sigma: float
    underexposed_ratio: float
    overexposed_ratio: float
    colourfulness: float

    def as_dict(self) -> dict[str, float]:
        """The seven signals as ``{field name: value}``, in :data:`REPORT_FIELDS` order."""
        return asdict(self)


assert tuple(f.name for f in fields(QualityReport)) == REPORT_FIELDS
