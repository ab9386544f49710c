"""Input validation, Rec.601 luma, and the area resize to analysis scale.

**Luma.** Every signal is computed on Rec.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B``, exactly
as OpenCV's ``cv2.cvtColor(..., COLOR_BGR2GRAY)`` computes it for 8-bit images: in 15-bit fixed
point, ``Y = (9798 R + 19235 G + 3735 B + 2**14) >> 15`` (:data:`LUMA_FIXED_POINT_BGR`, checked
bit-exact against OpenCV over all 2**24 colours). The torch path (:mod:`quality.torch_batch`)
uses the same integers, so both paths see the same luma.

**Analysis scale.** Luma is then resized with area interpolation (``cv2.INTER_AREA``) so that its
longer side is at most ``analysis_size`` pixels (default 640, the usual YOLO input size); smaller
images are never upscaled. A 4K camera and a VGA camera filming the same scene then give
comparable sharpness and noise, because both are measured at the same scale. It also means that
``noise_sigma`` is the noise *at analysis scale*: area-averaging a 1280 px frame down to 640 px
averages 2x2 pixels and halves independent pixel noise.

Limitation: comparability is best for integer ratios (1280 or 1920 px to 640). For a scale factor
just above 1 the area filter itself blurs: most output pixels straddle two source pixels, so a
704 px frame reads roughly 0.5-0.65x the sharpness of the same scene at 640 or 1280 px
(about 0.7-0.85x at factor 1.5). Compare sharpness across cameras of similar resolution, or
against each camera's own baseline.

For a non-integer scale factor ``s = src / dst``, ``INTER_AREA`` is a weighted box filter: output
pixel ``i`` averages the source interval ``[i s, (i + 1) s)``, weighting partially covered source
pixels by their covered fraction. :func:`area_taps` reproduces OpenCV's weight table
(``computeResizeAreaTab``) so the torch path can apply the same filter.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

#: Longer side, in pixels, of the luma every signal is computed on (see module docstring).
DEFAULT_ANALYSIS_SIZE = 640

#: Rec.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` in OpenCV's 8-bit fixed point: the weights for
#: (B, G, R), scaled by ``2**LUMA_SHIFT``.
LUMA_FIXED_POINT_BGR = (3735, 19235, 9798)
LUMA_SHIFT = 15


def check_image(image: object) -> np.ndarray:
    """Return ``image`` if it is a non-empty uint8 HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA) array.

    Raises:
        ValueError: naming what was received and what is accepted.
    """
    accepted = "a numpy uint8 array of shape HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA)"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected {accepted}; got {type(image).__name__}, not a numpy.ndarray")
    if image.dtype != np.uint8:
        raise ValueError(f"expected {accepted}; got dtype {image.dtype} (convert to 8-bit uint8 first)")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"expected {accepted}; got shape {image.shape} ({image.ndim}-D)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected {accepted} with at least 1x1 pixels; got an empty image, shape {image.shape}")
    return image


def check_analysis_size(analysis_size: object) -> int:
    """Return ``analysis_size`` if it is an int >= 1; else raise ValueError."""
    if isinstance(analysis_size, bool) or not isinstance(analysis_size, (int, np.integer)) or analysis_size < 1:
        raise ValueError(f"analysis_size must be an int >= 1 (pixels), got {analysis_size!r}")
    return int(analysis_size)


def to_luma(image: np.ndarray) -> np.ndarray:
    """Rec.601 luma of a uint8 gray/BGR/BGRA image at full resolution: uint8 HxW, grey levels 0-255.

    Gray input is returned as is (made C-contiguous if needed); alpha is ignored.
    """
    image = check_image(image)
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if not image.flags.c_contiguous:  # e.g. image[:, ::-1]; OpenCV needs positive strides
        image = np.ascontiguousarray(image)
    code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    return cv2.cvtColor(image, code)


def analysis_shape(height: int, width: int, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> tuple[int, int]:
    """(height, width) after scaling so the longer side is at most ``analysis_size`` (never up).

    The scaled sides are rounded half up, and are at least 1.
    """
    analysis_size = check_analysis_size(analysis_size)
    longer = max(height, width)
    if longer <= analysis_size:
        return height, width
    scale = analysis_size / longer
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_for_analysis(luma: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> np.ndarray:
    """Area-resize (``cv2.INTER_AREA``) uint8 luma so its longer side is <= ``analysis_size``.

    Returns ``luma`` itself when it is already small enough (no upscaling).
    """
    height, width = analysis_shape(luma.shape[0], luma.shape[1], analysis_size)
    if (height, width) == luma.shape[:2]:
        return luma
    return cv2.resize(luma, (width, height), interpolation=cv2.INTER_AREA)


def analysis_luma(image: np.ndarray, analysis_size: int = DEFAULT_ANALYSIS_SIZE) -> np.ndarray:
    """:func:`to_luma` then :func:`resize_for_analysis`: the uint8 luma every signal is computed on."""
    return resize_for_analysis(to_luma(image), analysis_size)


@lru_cache(maxsize=256)
def area_taps(src_size: int, dst_size: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's ``INTER_AREA`` weights for shrinking one axis from ``src_size`` to ``dst_size``.

    Returns ``(index, weight)``, both shaped ``(dst_size, K)``: output ``i`` along the axis is
    ``Σ_k weight[i, k] · x[index[i, k]]`` (unused taps have weight 0). With ``s = src / dst``,
    output ``i`` covers ``[i s, (i + 1) s)``; each source pixel is weighted by its covered length
    divided by the cell width (``s``, or what is left of the axis for the last cell), exactly as
    OpenCV's ``computeResizeAreaTab``. Weights of a row sum to 1. For ``src <= dst`` (no shrink)
    the result is the identity (``K = 1``). The returned arrays are cached: do not modify them.
    """
    if src_size < 1 or dst_size < 1:
        raise ValueError(f"sizes must be >= 1, got {src_size} -> {dst_size}")
    if dst_size >= src_size:
        if dst_size != src_size:
            raise ValueError(f"area_taps only shrinks, got {src_size} -> {dst_size}")
        return np.arange(src_size, dtype=np.int64)[:, None], np.ones((src_size, 1))
    scale = 1.0 / (dst_size / src_size)  # as OpenCV: scale_x = 1 / inv_scale_x
    rows: list[list[tuple[int, float]]] = []
    for dx in range(dst_size):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, src_size - fsx1)
        sx1 = math.ceil(fsx1)
        sx2 = min(math.floor(fsx2), src_size - 1)
        sx1 = min(sx1, sx2)
        taps: list[tuple[int, float]] = []
        if sx1 - fsx1 > 1e-3:
            taps.append((sx1 - 1, (sx1 - fsx1) / cell))
        taps.extend((sx, 1.0 / cell) for sx in range(sx1, sx2))
        if fsx2 - sx2 > 1e-3:
            taps.append((sx2, min(min(fsx2 - sx2, 1.0), cell) / cell))
        rows.append(taps)
    width = max(len(t) for t in rows)
    index = np.zeros((dst_size, width), dtype=np.int64)
    weight = np.zeros((dst_size, width), dtype=np.float64)
    for i, taps in enumerate(rows):
        for k, (sx, w) in enumerate(taps):
            index[i, k] = sx
            weight[i, k] = w
    index.flags.writeable = False
    weight.flags.writeable = False
    return index, weight
