"""``measure_batch``: the signals of :func:`quality.measure`, for torch uint8 tensors on any device.

All arithmetic runs on the tensors' own device (CPU or CUDA), batched over images of the same
size; frames are never copied to the host. Only the seven numbers per image come back, in one
transfer (:func:`measure_batch`), or not at all (:func:`measure_batch_tensor`);
:func:`measure_batch_scene` also gives each frame's scene thumbnail (:mod:`quality.scene`), a
float32 tensor of at most 64 x 64 on the device. torch is imported
when these functions run, so ``import quality`` works without it.

**Input.** ``images`` is either

* one uint8 tensor holding a batch: ``(N, H, W, C)`` with ``layout="nhwc"`` (the default, the
  NumPy/OpenCV layout), ``(N, C, H, W)`` with ``layout="nchw"`` (what ``torchvision.io.decode_jpeg``
  gives), C = 3 (colour) or 4 (colour + alpha, ignored); or ``(N, H, W)`` gray; or
* a sequence of single-image tensors ``(H, W, C)`` / ``(C, H, W)`` (per ``layout``) or ``(H, W)``,
  possibly of different sizes (as a GPU decoder yields them). They are grouped by shape and each
  group is processed as one batch.

``layout`` is explicit rather than guessed from the shape: a tensor whose channel axis (per
``layout``) is not 3 or 4 is refused with a ValueError, so a channels-first tensor passed as
``nhwc`` (or the reverse) cannot be misread silently. ``color_order`` is ``"bgr"`` (OpenCV) or
``"rgb"`` (torchvision decoders).

**Math, step by step as the OpenCV path:**

* luma: OpenCV's fixed point ``(9798 R + 19235 G + 3735 B + 2**14) >> 15``, done in float32 where
  every intermediate is an integer below 2**24, hence bit-exact;
* resize: ``cv2.INTER_AREA`` as two separable weighted sums (one per axis) with OpenCV's own weight
  table (:func:`quality.luma.area_taps`), rounded half up to 8 bits like OpenCV's uint8 output
  (identical except for rare exact ties on non-integer scales);
* Laplacian with reflect-101 borders, 8x8 block energies, clip mask, 10th percentile and the same
  calibration as :mod:`quality.noise`; exposure counts ``Y <= 5`` and ``Y >= 250``;
* colourfulness (:mod:`quality.colour`): each colour plane halved (rounded 2x2 means) as often as
  the CPU path does, then area-resized to the 64 px thumbnail with the same weights and rounding,
  then Hasler & Süsstrunk's formula;
* scene thumbnail (:mod:`quality.scene`): the analysis luma area-resized to at most 64 px,
  *not* rounded (float32, as ``cv2.resize`` of float32 luma).

No matrix products or convolutions are used, so TF32 settings cannot change the results. Tested
agreement with :func:`quality.measure` on photographs (including area-resized and odd sizes):
brightness, contrast and exposure ratios within 1e-3 absolute, sharpness and noise within 2%,
colourfulness within 0.05 levels, scene thumbnails within 0.05 grey levels (rare rounding ties of
the analysis luma; most pixels within 1e-4).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from quality.colour import MEAN_WEIGHT, halvings
from quality.luma import (
    DEFAULT_ANALYSIS_SIZE,
    LUMA_FIXED_POINT_BGR,
    LUMA_SHIFT,
    analysis_shape,
    area_taps,
    check_analysis_size,
)
from quality.noise import (
    LAPLACIAN_NOISE_GAIN,
    MIN_CLEAN_BLOCKS,
    NOISE_BLOCK,
    NOISE_CALIBRATION,
    NOISE_PERCENTILE,
)
from quality.report import REPORT_FIELDS, QualityReport
from quality.scene import thumbnail_shape
from quality.signals import OVEREXPOSED_LEVEL, UNDEREXPOSED_LEVEL

if TYPE_CHECKING:
    import torch

Layout = Literal["nhwc", "nchw"]
ColorOrder = Literal["bgr", "rgb"]

#: Source pixels processed at once; bounds temporary memory (~16 bytes per source pixel).
MAX_CHUNK_PIXELS = 2**25

_ACCEPTED = (
    "a uint8 tensor (N,H,W,C) [layout='nhwc'] or (N,C,H,W) [layout='nchw'] with C = 3 or 4, "
    "or (N,H,W) gray; or a sequence of (H,W,C) / (C,H,W) / (H,W) uint8 tensors"
)


def measure_batch(
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    color_order: ColorOrder = "bgr",
    layout: Layout = "nhwc",
    analysis_size: int = DEFAULT_ANALYSIS_SIZE,
) -> list[QualityReport]:
    """Measure a batch of uint8 images on their own device; one :class:`QualityReport` per image.

    See the module docstring for accepted inputs. The reports are in input order and equal those
    of :func:`quality.measure` on the same pixels within 1e-3 (brightness, contrast, exposure),
    2% (sharpness, noise) and 0.05 (colourfulness). The only device-to-host copy is the final
    ``(N, 7)`` float32 table.

    Raises:
        ValueError: for a non-uint8 dtype, a wrong shape or channel count, an empty image, or
            tensors on different devices.
    """
    table = measure_batch_tensor(images, color_order=color_order, layout=layout, analysis_size=analysis_size)
    return [QualityReport(*row) for row in table.cpu().tolist()]


def measure_batch_tensor(
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    color_order: ColorOrder = "bgr",
    layout: Layout = "nhwc",
    analysis_size: int = DEFAULT_ANALYSIS_SIZE,
) -> torch.Tensor:
    """Like :func:`measure_batch`, but return a float32 ``(N, 7)`` tensor on the input device.

    Columns are :data:`quality.report.REPORT_FIELDS` (brightness, contrast, sharpness,
    noise_sigma, underexposed_ratio, overexposed_ratio, colourfulness). No host synchronisation.
    """
    table, _ = _measure(images, color_order, layout, analysis_size, scene=False)
    return table


def measure_batch_scene(
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    color_order: ColorOrder = "bgr",
    layout: Layout = "nhwc",
    analysis_size: int = DEFAULT_ANALYSIS_SIZE,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """:func:`measure_batch_tensor`, and each image's scene thumbnail (float32 ``(h, w)``, longer side
    <= 64, on the input device, in input order), as :func:`quality.measure_scene` gives it."""
    table, thumbnails = _measure(images, color_order, layout, analysis_size, scene=True)
    return table, thumbnails


def _measure(
    images: torch.Tensor | Sequence[torch.Tensor],
    color_order: ColorOrder,
    layout: Layout,
    analysis_size: int,
    *,
    scene: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    import torch

    if color_order not in ("bgr", "rgb"):
        raise ValueError(f"color_order must be 'bgr' or 'rgb', got {color_order!r}")
    if layout not in ("nhwc", "nchw"):
        raise ValueError(f"layout must be 'nhwc' or 'nchw', got {layout!r}")
    analysis_size = check_analysis_size(analysis_size)
    groups, count, device = _groups(images, layout)
    table = torch.empty((count, len(REPORT_FIELDS)), dtype=torch.float32, device=device)
    thumbnails: list[torch.Tensor | None] = [None] * count
    with torch.inference_mode():
        for index, batch, channel_dim in groups:
            height, width = batch.shape[-2:] if channel_dim == 1 else batch.shape[1:3]
            # Luma and the three colour planes in float32: ~28 bytes per source pixel.
            chunk = max(1, MAX_CHUNK_PIXELS // (2 * int(height) * int(width)))
            for start in range(0, batch.shape[0], chunk):
                part = batch[start : start + chunk]
                members = index[start : start + chunk]
                luma = _resize(_luma(part, channel_dim, color_order), analysis_size)
                table[members] = torch.cat([_signals(luma), _colourfulness(part, channel_dim, color_order)[:, None]], 1)
                if scene:
                    small = _area(luma, *thumbnail_shape(int(luma.shape[1]), int(luma.shape[2])))
                    for position, member in enumerate(members.tolist()):
                        thumbnails[member] = small[position]
    return table, [t for t in thumbnails if t is not None]


def _groups(
    images: torch.Tensor | Sequence[torch.Tensor], layout: Layout
) -> tuple[list[tuple[torch.Tensor, torch.Tensor, int | None]], int, torch.device]:
    """Validate, then split into ``(indices, uint8 batch, channel dim or None)`` groups of one shape."""
    import torch

    if isinstance(images, torch.Tensor):
        _check_dtype(images)
        if images.ndim == 3:
            channel_dim = None
        elif images.ndim == 4:
            channel_dim = 3 if layout == "nhwc" else 1
            _check_channels(images.shape[channel_dim], tuple(images.shape), layout)
        else:
            raise ValueError(f"expected {_ACCEPTED}; got a tensor of shape {tuple(images.shape)}")
        spatial = [s for d, s in enumerate(images.shape[1:], start=1) if d != channel_dim]
        if images.shape[0] and min(spatial) == 0:
            raise ValueError(f"expected non-empty images; got a tensor of shape {tuple(images.shape)}")
        index = torch.arange(images.shape[0], device=images.device)
        groups = [(index, images, channel_dim)] if images.shape[0] else []
        return groups, int(images.shape[0]), images.device

    singles = list(images)
    if not singles:
        return [], 0, torch.device("cpu")
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(singles):
        if not isinstance(image, torch.Tensor):
            raise ValueError(f"expected {_ACCEPTED}; item {i} is a {type(image).__name__}")
        _check_dtype(image)
        if image.ndim == 3:
            _check_channels(image.shape[2 if layout == "nhwc" else 0], tuple(image.shape), layout)
        elif image.ndim != 2:
            raise ValueError(f"expected {_ACCEPTED}; item {i} has shape {tuple(image.shape)}")
        if image.numel() == 0:
            raise ValueError(f"expected non-empty images; item {i} has shape {tuple(image.shape)}")
        if image.device != singles[0].device:
            raise ValueError(
                f"all images must be on one device; item {i} is on {image.device}, not {singles[0].device}"
            )
        by_shape.setdefault(tuple(image.shape), []).append(i)
    device = singles[0].device
    out = []
    for shape, members in by_shape.items():
        channel_dim = None if len(shape) == 2 else (3 if layout == "nhwc" else 1)
        batch = torch.stack([singles[i] for i in members])  # device-side copy into one batch
        out.append((torch.tensor(members, device=device), batch, channel_dim))
    return out, len(singles), device


def _check_dtype(image: torch.Tensor) -> None:
    import torch

    if image.dtype != torch.uint8:
        raise ValueError(f"expected {_ACCEPTED}; got dtype {image.dtype} (convert to torch.uint8 first)")


def _check_channels(channels: int, shape: tuple[int, ...], layout: Layout) -> None:
    if channels not in (3, 4):
        raise ValueError(
            f"expected 3 or 4 channels on the channel axis of layout {layout!r}, got {channels} "
            f"in shape {shape} (gray images are (H,W) or (N,H,W); pass layout='nchw' for channels-first)"
        )


def _luma(batch: torch.Tensor, channel_dim: int | None, color_order: ColorOrder) -> torch.Tensor:
    """float32 ``(n, H, W)`` Rec.601 luma, integer grey levels bit-exact with OpenCV's BGR2GRAY."""
    if channel_dim is None:
        return batch.float()
    planes = batch.unbind(channel_dim)
    blue, green, red = (planes[0], planes[1], planes[2]) if color_order == "bgr" else (planes[2], planes[1], planes[0])
    wb, wg, wr = LUMA_FIXED_POINT_BGR
    # Every intermediate is an integer < 255 * 2**15 + 2**14 < 2**24: exact in float32.
    luma = blue.float().mul_(wb)
    luma.add_(green.float(), alpha=wg).add_(red.float(), alpha=wr)
    return luma.add_(1 << (LUMA_SHIFT - 1)).mul_(2.0**-LUMA_SHIFT).floor_()


def _resize(luma: torch.Tensor, analysis_size: int) -> torch.Tensor:
    """Area-resize ``(n, H, W)`` luma like ``cv2.INTER_AREA`` on uint8 (rounded half up)."""
    height, width = int(luma.shape[1]), int(luma.shape[2])
    new_height, new_width = analysis_shape(height, width, analysis_size)
    if (new_height, new_width) == (height, width):
        return luma
    return _area(luma, new_height, new_width).add_(0.5).floor_()


def _area(planes: torch.Tensor, new_height: int, new_width: int) -> torch.Tensor:
    """``cv2.INTER_AREA`` of float32 ``(n, H, W)`` planes to ``(n, new_height, new_width)``, unrounded."""
    height, width = int(planes.shape[1]), int(planes.shape[2])
    out = planes
    if new_width != width:
        index, weight = _taps(width, new_width, str(planes.device))
        taps = weight.shape[1]
        gathered = out.index_select(2, index).view(out.shape[0], height, new_width, taps)
        out = (gathered * weight).sum(dim=3)
    if new_height != height:
        index, weight = _taps(height, new_height, str(planes.device))
        taps = weight.shape[1]
        gathered = out.index_select(1, index).view(out.shape[0], new_height, taps, new_width)
        out = (gathered * weight[:, :, None]).sum(dim=2)
    return out if out is not planes else planes.clone()


def _colourfulness(batch: torch.Tensor, channel_dim: int | None, color_order: ColorOrder) -> torch.Tensor:
    """Hasler & Süsstrunk's colourfulness of each image's 64 px colour thumbnail (:mod:`quality.colour`); 0 for gray."""
    import torch
    import torch.nn.functional as F

    n = batch.shape[0]
    if channel_dim is None:
        return torch.zeros(n, dtype=torch.float32, device=batch.device)
    planes = batch.unbind(channel_dim)
    blue, green, red = (planes[0], planes[1], planes[2]) if color_order == "bgr" else (planes[2], planes[1], planes[0])
    height, width = int(blue.shape[1]), int(blue.shape[2])
    new_height, new_width = thumbnail_shape(height, width)
    stacked = torch.stack([blue, green, red], dim=1).float().reshape(n * 3, height, width)
    for _ in range(halvings(height, width)):  # 2x2 means rounded half up: OpenCV's INTER_AREA fast path
        stacked = F.avg_pool2d(stacked[:, None], 2)[:, 0].mul_(4.0).add_(2.0).div_(4.0).floor_()
        height, width = height // 2, width // 2
    if (new_height, new_width) != (height, width):
        stacked = _area(stacked, new_height, new_width).add_(0.5).floor_()  # OpenCV's uint8 output levels
    b, g, r = stacked.view(n, 3, new_height * new_width).unbind(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0)).sqrt()
    return spread + MEAN_WEIGHT * (rg.mean(dim=1).square() + yb.mean(dim=1).square()).sqrt()


@lru_cache(maxsize=128)
def _taps(src: int, dst: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quality.luma.area_taps` as device tensors: flat int64 index, float32 ``(dst, K)`` weights."""
    import torch

    index, weight = area_taps(src, dst)
    return (
        torch.from_numpy(index.reshape(-1).copy()).to(device),
        torch.from_numpy(weight.astype("float32")).to(device),
    )


def _signals(luma: torch.Tensor) -> torch.Tensor:
    """``(n, 6)`` report values for float32 luma ``(n, h, w)``, in :data:`REPORT_FIELDS` order."""
    import torch
    import torch.nn.functional as F

    n, height, width = luma.shape
    count = height * width
    brightness = luma.mean(dim=(1, 2)) / 255.0
    contrast = luma.std(dim=(1, 2), correction=0) / 255.0
    under = (luma <= UNDEREXPOSED_LEVEL).sum(dim=(1, 2)).float() / count
    over = (luma >= OVEREXPOSED_LEVEL).sum(dim=(1, 2)).float() / count

    # 3x3 Laplacian, reflect-101 borders (torch 'reflect' == OpenCV BORDER_REFLECT_101; a side of
    # 1 pixel reflects onto itself, i.e. 'replicate').
    padded = luma[:, None]
    if height > 1 and width > 1:
        padded = F.pad(padded, (1, 1, 1, 1), mode="reflect")
    else:
        padded = F.pad(padded, (1, 1, 0, 0), mode="reflect" if width > 1 else "replicate")
        padded = F.pad(padded, (0, 0, 1, 1), mode="reflect" if height > 1 else "replicate")
    padded = padded[:, 0]
    lap = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1]
    lap += padded[:, 1:-1, :-2]
    lap += padded[:, 1:-1, 2:]
    lap.sub_(luma, alpha=4.0)
    squares = lap * lap
    sum_of_squares = squares.sum(dim=(1, 2))
    mean_lap = lap.sum(dim=(1, 2)) / count
    sharpness = (sum_of_squares / count - mean_lap * mean_lap).clamp_(min=0.0)

    rows, cols = height // NOISE_BLOCK, width // NOISE_BLOCK
    if rows == 0 or cols == 0:
        noise = (sum_of_squares / count / LAPLACIAN_NOISE_GAIN).sqrt()
    else:
        crop = (slice(None), slice(0, rows * NOISE_BLOCK), slice(0, cols * NOISE_BLOCK))
        energy = F.avg_pool2d(squares[crop][:, None], NOISE_BLOCK).reshape(n, rows * cols)
        near = (luma[crop] <= UNDEREXPOSED_LEVEL) | (luma[crop] >= OVEREXPOSED_LEVEL)
        clipped = near.reshape(n, rows, NOISE_BLOCK, cols, NOISE_BLOCK).any(dim=4).any(dim=2).reshape(n, -1)
        clean = ~clipped
        enough = clean.sum(dim=1, keepdim=True) >= MIN_CLEAN_BLOCKS
        use = torch.where(enough, clean, torch.ones_like(clean))
        ordered = torch.where(use, energy, torch.full_like(energy, float("inf"))).sort(dim=1).values
        kept = use.sum(dim=1, keepdim=True)
        # numpy.percentile's linear interpolation at rank (kept - 1) * q / 100.
        position = (kept - 1).double() * (NOISE_PERCENTILE / 100.0)
        low = position.floor().long()
        high = torch.minimum(low + 1, kept - 1)
        frac = (position - low.double()).float()
        a, b = ordered.gather(1, low), ordered.gather(1, high)
        floor_energy = (a + frac * (b - a))[:, 0]
        noise = (floor_energy.clamp(min=0.0) / LAPLACIAN_NOISE_GAIN).sqrt() / NOISE_CALIBRATION

    return torch.stack([brightness, contrast, sharpness, noise, under, over], dim=1)
