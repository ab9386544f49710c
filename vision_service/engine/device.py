"""The device engine: decode, quality, letterbox, inference and NMS on the model's torch device.

The host engine (``host.py``, Ultralytics' own predict) letterboxes on the CPU with OpenCV, copies
each frame to the GPU, and runs NMS on the GPU. This engine keeps the frame on the device from the
JPEG decode onwards and copies back only boxes and numbers:

1. **decode** (:meth:`DeviceEngine.decode`): JPEG bytes -> ``(3, H, W)`` uint8 RGB with
   ``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA, a batched call for a list);
   other formats, truncated JPEGs, and JPEGs whose EXIF orientation needs a turn (nvJPEG ignores
   EXIF), go through :func:`vision_service.engine.decode.decode_image` on the CPU and are
   uploaded. Camera frames are uploaded by :meth:`DeviceEngine.from_host` (pinned memory,
   ``non_blocking``, on CUDA).
2. **quality** from those same tensors: :func:`quality.measure_batch_scene` (RGB, NCHW): the
   report table and each frame's 64 px scene thumbnail, copied to the host together.
3. **letterbox** with Ultralytics' geometry for one image (``LetterBox(auto=True)``): scale
   ``r = min(S / h, S / w)`` for inference size ``S``, resized side ``round(side * r)``, padding
   to the next multiple of the model stride, split in two with ``round(d/2 - 0.1)`` before and
   ``round(d/2 + 0.1)`` after, filled with grey 114. The resize is bilinear with half-pixel
   centres and no antialiasing, like ``cv2.INTER_LINEAR``, rounded to 8-bit levels as OpenCV's
   uint8 output. Frames whose letterboxed shapes match share one forward pass.
4. **inference**: the Ultralytics ``DetectionModel`` of ``YOLO(...).model`` itself (fused and cast in
   place: one copy of the weights on the device), FP16 on CUDA and FP32 on CPU, input ``RGB / 255``.
5. **NMS** as Ultralytics' ``non_max_suppression`` (best class per anchor, score > confidence,
   class-aware IoU suppression, at most ``max_det`` boxes per image), done for the whole batch in
   one ``torchvision.ops.batched_nms`` call with one group per (image, class).
6. **scale back**: ``x = (x' - left) * w / w'`` and ``y = (y' - top) * h / h'`` for resized size
   ``(w', h')``, clipped to the frame, as ``ultralytics.utils.ops.scale_boxes``.

Only ``.pt`` weights and model ``.yaml`` files have a torch module; exported formats (ONNX,
TFLite, TensorRT engines) run on the host engine (:func:`supports`). End-to-end (NMS-free) heads
are not handled here either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import quality
from quality.report import QualityReport
from vision_service.engine import (
    Analysis,
    DecodeLimits,
    EngineOptions,
    Frame,
    FrameResult,
    ModelInfo,
    thumbnail_size,
)
from vision_service.engine.decode import MIN_SIDE, decode_each
from vision_service.engine.jpeg import read_jpeg_header
from vision_service.errors import ImageRejected
from vision_service.measurement import Detection, StageTimes

if TYPE_CHECKING:
    import torch

#: Ultralytics' letterbox fill level.
PAD_VALUE = 114
#: Ultralytics' default cap of detections per image.
MAX_DETECTIONS = 300
#: Ultralytics' cap of candidate boxes per image fed to NMS (the highest scores are kept).
MAX_NMS_CANDIDATES = 30000

# Letterboxed geometry of one frame: (new_h, new_w, top, bottom, left, right) in pixels.
Geometry = tuple[int, int, int, int, int, int]


def supports(model_format: str) -> bool:
    """Whether a model of this format (file suffix) has a torch module this engine can run (.pt or .yaml)."""
    return model_format.lower() in ("pt", "yaml", "yml")


def letterbox_geometry(height: int, width: int, size: int, stride: int) -> Geometry:
    """Ultralytics' one-image letterbox: ``(new_h, new_w, top, bottom, left, right)`` in pixels.

    ``r = min(size / height, size / width)``; resized sides ``max(round(side * r), 1)``; padding
    ``d = (size - side') mod stride`` split as ``round(d/2 - 0.1)`` before, ``round(d/2 + 0.1)`` after.
    """
    r = min(size / height, size / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = ((size - new_w) % stride) / 2, ((size - new_h) % stride) / 2
    return new_h, new_w, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)


class DeviceEngine:
    """Runs frames through quality, letterbox, the model and NMS without leaving the model's device."""

    def __init__(
        self,
        module: torch.nn.Module,
        names: dict[int, str],
        model: ModelInfo,
        options: EngineOptions,
        *,
        max_det: int = MAX_DETECTIONS,
    ) -> None:
        import torch

        self.model = model
        self.names = names
        self.options = options
        self.device = torch.device(model.device)
        self.half = self.device.type == "cuda"
        self.max_det = max_det
        self.stride = max(int(getattr(module, "stride", torch.tensor([32])).max()), 32)
        # The module itself, moved, fused and cast in place: the weights exist once on the device.
        module = module.to(self.device).eval()
        fuse = getattr(module, "fuse", None)
        if callable(fuse):  # Conv + BatchNorm folded, as Ultralytics' AutoBackend does
            module = fuse(verbose=False)
        self.module = module.half() if self.half else module.float()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @classmethod
    def from_yolo(cls, yolo: Any, model: ModelInfo, options: EngineOptions) -> DeviceEngine:
        """The engine of a loaded ``ultralytics.YOLO`` with .pt weights or a .yaml model (see :func:`supports`)."""
        if not supports(model.format):
            raise ValueError(f"the device engine needs .pt weights or a model .yaml, not .{model.format}")
        if getattr(yolo.model, "end2end", False):
            raise ValueError("end-to-end (NMS-free) heads are not supported by the device engine")
        return cls(yolo.model, {int(k): str(v) for k, v in yolo.names.items()}, model, options)

    # -- frames onto the device -------------------------------------------------------------------

    def from_host(self, bgr: np.ndarray, *, source: str, decode_seconds: float = 0.0) -> Frame[torch.Tensor]:
        """A host BGR ``(H, W, 3)`` uint8 frame -> a frame of ``(3, H, W)`` RGB uint8 on the device."""
        import torch

        host = torch.from_numpy(np.ascontiguousarray(bgr))
        if self.device.type == "cuda":
            # Pinned staging lets the copy run asynchronously, overlapping the host's next work.
            host = host.pin_memory()
        pixels = host.to(self.device, non_blocking=True).permute(2, 0, 1).flip(0)
        return Frame(pixels, int(bgr.shape[1]), int(bgr.shape[0]), source, decode_seconds)

    def decode(self, images: Sequence[bytes], *, source: str) -> Iterator[Frame[torch.Tensor] | ImageRejected]:
        """Image bytes -> frames on the device, in order, or the :class:`ImageRejected` naming each bad image.

        JPEGs that pass :func:`device_decodable` are decoded together in one batched
        ``decode_jpeg`` call on the device (its time split evenly over them), at the first frame
        asked for; everything else goes through the strict CPU decoder
        (:func:`vision_service.engine.decode.decode_image`) when its turn comes, and is uploaded.
        One bad image yields its own error and never fails the others.
        """
        jpegs = [i for i, blob in enumerate(images) if device_decodable(blob, self.options.limits)]
        on_device: dict[int, Frame[torch.Tensor]] = {}
        if jpegs:
            started = time.perf_counter()
            decoded = self._decode_jpegs([images[i] for i in jpegs])
            each = (time.perf_counter() - started) / len(jpegs)
            for index, pixels in zip(jpegs, decoded, strict=True):
                if pixels is not None:
                    on_device[index] = Frame(pixels, int(pixels.shape[2]), int(pixels.shape[1]), source, each)
        for index, blob in enumerate(images):
            if index in on_device:
                yield on_device.pop(index)
                continue
            yield from decode_each(
                [blob],
                self.options.limits,
                lambda bgr, seconds: self.from_host(bgr, source=source, decode_seconds=seconds),
            )

    def _decode_jpegs(self, blobs: list[bytes]) -> list[torch.Tensor | None]:
        """One batched ``decode_jpeg`` on the device; all None when one JPEG fails the whole call.

        (The strict CPU decoder then names the culprit.)
        """
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in blobs]
        try:
            return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device))
        except RuntimeError:
            return [None] * len(blobs)

    # -- the pass ---------------------------------------------------------------------------------

    def run(self, frames: Sequence[Frame[torch.Tensor]]) -> Analysis:
        """Quality and detections of every frame, in order; one forward pass per letterboxed shape.

        Stage times are the batch's wall time per stage divided evenly over its frames (as
        Ultralytics reports ``speed``), measured after a device synchronisation.
        """
        import torch

        if not frames:
            return Analysis([], [])
        images = [frame.pixels for frame in frames]
        with torch.inference_mode():
            started = self._now()
            table, thumbnails = quality.measure_batch_scene(
                images, color_order="rgb", layout="nchw", analysis_size=self.options.analysis_size
            )
            measured = self._now()
            groups, geometry = self._letterbox_groups(images)
            packed, (pre, inference, post) = self._detect(images, groups, geometry)
            reports = [QualityReport(*row) for row in table.cpu().tolist()]
            scenes = _to_host(thumbnails)
        count = len(frames)
        detections = self._unpack(packed, count)
        stage = ((measured - started) / count, pre / count, inference / count, post / count)
        results = [
            FrameResult(frame.width, frame.height, report, found, StageTimes(frame.decode_seconds, *stage), scene)
            for frame, report, found, scene in zip(frames, reports, detections, scenes, strict=True)
        ]
        return Analysis(results, [len(members) for members in groups])

    def thumbnail(self, frame: Frame[torch.Tensor], max_side: int) -> np.ndarray:
        """The frame downscaled on the device (area averaging) and copied back as host BGR uint8.

        Only the small image crosses to the host; the returned array is a fresh copy, never a view
        of the frame's tensor.
        """
        import torch
        import torch.nn.functional as F

        height, width = thumbnail_size(frame.height, frame.width, max_side)
        with torch.inference_mode():
            image = frame.pixels
            if (height, width) != (frame.height, frame.width):
                small = F.interpolate(image[None].float(), size=(height, width), mode="area")[0]
                image = small.round_().clamp_(0, 255).to(torch.uint8)
            # RGB (3, h, w) -> BGR (h, w, 3); flip and contiguous() copy, so nothing refers to the frame.
            bgr = image.flip(0).permute(1, 2, 0).contiguous().cpu()
        thumb: np.ndarray = bgr.numpy()
        return thumb

    def warm_up(self) -> None:
        """Two passes on a grey frame, so the first real batch does not pay for kernel selection."""
        size = self.options.image_size
        grey = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
        for _ in range(2):
            self.run([self.from_host(grey, source="warm-up")])

    def _letterbox_groups(self, images: Sequence[torch.Tensor]) -> tuple[list[list[int]], list[Geometry]]:
        """Each frame's letterbox geometry, and the frames grouped by letterboxed shape (one forward pass each)."""
        groups: dict[tuple[int, int], list[int]] = {}
        geometry = []
        for index, image in enumerate(images):
            geo = letterbox_geometry(int(image.shape[1]), int(image.shape[2]), self.options.image_size, self.stride)
            geometry.append(geo)
            new_h, new_w, top, bottom, left, right = geo
            groups.setdefault((new_h + top + bottom, new_w + left + right), []).append(index)
        return list(groups.values()), geometry

    def _detect(
        self, images: Sequence[torch.Tensor], groups: list[list[int]], geometry: list[Geometry]
    ) -> tuple[torch.Tensor, tuple[float, float, float]]:
        """Forward passes and NMS; rows ``x1, y1, x2, y2, score, class, frame index`` on the host, and stage seconds."""
        import torch

        pre = inference = 0.0
        found: list[torch.Tensor] = []
        started = self._now()
        for members in groups:
            a = self._now()
            batch = torch.stack([self._letterbox(images[i], geometry[i]) for i in members])
            batch = (batch.half() if self.half else batch.float()).div_(255.0)
            b = self._now()
            raw = self.module(batch)
            preds = raw[0] if isinstance(raw, (tuple, list)) else raw
            c = self._now()
            pre, inference = pre + b - a, inference + c - b
            found.append(self._nms(preds.float(), members, geometry, images))
        # The only device -> host copy of detections: seven numbers per box.
        packed = torch.cat(found).cpu()
        post = self._now() - started - pre - inference
        return packed, (pre, inference, post)

    def _unpack(self, packed: torch.Tensor, count: int) -> list[list[Detection]]:
        per_frame: list[list[Detection]] = [[] for _ in range(count)]
        for x1, y1, x2, y2, score, cls, owner in packed.tolist():
            class_id = int(cls)
            per_frame[int(owner)].append(
                Detection(class_id, self.names.get(class_id, str(class_id)), float(score), (x1, y1, x2, y2))
            )
        return per_frame

    def _now(self) -> float:
        # Stage times need the queued kernels finished; on CPU this is a plain clock read.
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _letterbox(self, image: torch.Tensor, geo: Geometry) -> torch.Tensor:
        """``(3, H, W)`` uint8 -> ``(3, H', W')`` float32 letterboxed, 8-bit levels, pad 114."""
        import torch.nn.functional as F

        new_h, new_w, top, bottom, left, right = geo
        resized = image.float()[None]
        if (new_h, new_w) != tuple(image.shape[1:]):
            resized = F.interpolate(resized, size=(new_h, new_w), mode="bilinear", align_corners=False)
            resized = resized.round_().clamp_(0, 255)  # OpenCV's uint8 output levels
        return F.pad(resized, (left, right, top, bottom), value=float(PAD_VALUE))[0]

    def _nms(
        self,
        preds: torch.Tensor,
        members: list[int],
        geometry: list[Geometry],
        images: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Ultralytics' NMS for one forward pass ``(n, 4 + classes, anchors)``.

        Rows ``x1, y1, x2, y2, score, class, frame index``, boxes in frame pixels.
        """
        import torch
        from torchvision.ops import batched_nms

        n, channels, _ = preds.shape
        classes = channels - 4
        rows = preds.transpose(1, 2)  # (n, anchors, 4 + classes)
        scores, labels = rows[..., 4:].max(dim=2)
        keep = scores > self.options.confidence
        image_of = torch.arange(n, device=preds.device)[:, None].expand_as(scores)[keep]
        xywh, scores, labels = rows[..., :4][keep], scores[keep], labels[keep]
        if scores.numel() > MAX_NMS_CANDIDATES * n:
            top = scores.topk(MAX_NMS_CANDIDATES * n).indices
            xywh, scores, labels, image_of = xywh[top], scores[top], labels[top], image_of[top]
        half_wh = xywh[:, 2:] / 2
        xyxy = torch.cat([xywh[:, :2] - half_wh, xywh[:, :2] + half_wh], dim=1)
        kept = batched_nms(xyxy, scores, image_of * classes + labels, self.options.iou)  # sorted by score
        # At most max_det per image: rank each kept box within its image (stable, by score).
        kept_images = image_of[kept]
        order = torch.sort(kept_images, stable=True).indices
        kept, kept_images = kept[order], kept_images[order]
        first = torch.searchsorted(kept_images, kept_images, right=False)
        rank = torch.arange(kept.numel(), device=preds.device) - first
        kept, kept_images = kept[rank < self.max_det], kept_images[rank < self.max_det]
        # Back to frame pixels: subtract the padding, divide by the per-axis resize gain, clip.
        geo = torch.tensor(
            [
                [g[4], g[2], g[1] / images[i].shape[2], g[0] / images[i].shape[1]]
                for i, g in ((i, geometry[i]) for i in members)
            ],
            device=preds.device,
            dtype=torch.float32,
        )  # columns: left, top, gain_x, gain_y
        size = torch.tensor(
            [[images[i].shape[2], images[i].shape[1]] for i in members], device=preds.device, dtype=torch.float32
        )
        g = geo[kept_images]
        boxes = xyxy[kept]
        boxes = torch.stack(
            [
                ((boxes[:, 0] - g[:, 0]) / g[:, 2]).clamp(min=0).minimum(size[kept_images, 0]),
                ((boxes[:, 1] - g[:, 1]) / g[:, 3]).clamp(min=0).minimum(size[kept_images, 1]),
                ((boxes[:, 2] - g[:, 0]) / g[:, 2]).clamp(min=0).minimum(size[kept_images, 0]),
                ((boxes[:, 3] - g[:, 1]) / g[:, 3]).clamp(min=0).minimum(size[kept_images, 1]),
            ],
            dim=1,
        )
        owner = torch.tensor(members, device=preds.device)[kept_images]
        return torch.cat([boxes, scores[kept][:, None], labels[kept][:, None].float(), owner[:, None].float()], dim=1)


def _to_host(thumbnails: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Small device tensors -> host float32 arrays in one copy (flattened, concatenated, split again)."""
    import torch

    if not thumbnails:
        return []
    flat = torch.cat([t.reshape(-1) for t in thumbnails]).cpu().numpy()
    out = []
    offset = 0
    for t in thumbnails:
        size = int(t.numel())
        out.append(flat[offset : offset + size].reshape(tuple(t.shape)))
        offset += size
    return out


def device_decodable(blob: bytes, limits: DecodeLimits) -> bool:
    """True for a JPEG that is safe to hand to ``decode_jpeg`` on the device, read from its markers alone.

    That is: within the byte limit, a complete file (it ends with the end-of-image marker, so a
    truncated upload is refused by the strict CPU decoder instead of being decoded, possibly into
    grey rows, by nvJPEG), within the pixel, scan and minimum-side limits, grey or colour (not
    CMYK), and no EXIF turn to apply (nvJPEG ignores EXIF). See :mod:`vision_service.engine.jpeg`.
    """
    if len(blob) > limits.max_bytes:
        return False
    header = read_jpeg_header(blob)
    return (
        header is not None
        and header.complete
        and header.components in (1, 3)
        and header.orientation == 1
        and header.scans <= limits.max_scans
        and min(header.width, header.height) >= MIN_SIDE
        and header.width * header.height <= limits.max_pixels
    )
