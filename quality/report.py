"""The quality report of one image: six numbers, each with its formula, range and unit."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class QualityReport:
    """Image-quality signals, all computed on Rec.601 luma at analysis size (see :mod:`quality.luma`).

    Attributes:
        brightness: mean(Y) / 255, in [0, 1]. Daylight scenes sit around 0.35-0.6; below 0.15 is dark.
        contrast: RMS contrast, std(Y) / 255, in [0, 0.5]. Natural photos are typically 0.15-0.3.
        sharpness: Var(∇²Y), the variance of the 3x3 Laplacian ``[[0,1,0],[1,-4,1],[0,1,0]]`` of Y,
            in grey levels². In [0, ~3.3e5); sharp street scenes at 640 px give ~500-3000, a
            Gaussian blur of sigma 3 px brings that under ~50. Low means blurry (noise raises it).
        noise_sigma: estimated standard deviation of additive noise in Y, 8-bit grey levels,
            in [0, ~128) (see :func:`quality.noise.noise_sigma`). Clean daylight frames 1-3,
            night frames with gain 8-30.
        underexposed_ratio: fraction of pixels with Y <= 5 (:data:`quality.signals.DARK_LEVEL`), in [0, 1].
        overexposed_ratio: fraction of pixels with Y >= 250 (:data:`quality.signals.BRIGHT_LEVEL`), in [0, 1].
    """

    brightness: float
    contrast: float
    sharpness: float
    noise_sigma: float
    underexposed_ratio: float
    overexposed_ratio: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
