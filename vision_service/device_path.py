"""The device path: decode, letterbox, quality, inference and NMS on the model's torch device.

Ultralytics' own predict path (:class:`vision_service.detector.Detector`) letterboxes on the CPU
with OpenCV, copies each frame to the GPU, and runs NMS on the GPU. This path keeps the frame on
the device from the JPEG decode onwards and copies back only boxes and numbers:

1. **decode** (:meth:`DevicePath.decode`): JPEG bytes -> ``(3, H, W)`` uint8 RGB with
   ``torchvision.io.decode_jpeg`` on the device (nvJPEG on CUDA, a batched call for a list);
   other formats, truncated JPEGs, and JPEGs whose EXIF orientation needs a turn (nvJPEG ignores
   EXIF), go through :func:`vision_service.decode.decode_image` on the CPU and are uploaded.
   The upload routes decode this way whenever the device path is on. Host frames (camera
   frames, decoded uploads) are uploaded by :meth:`DevicePath.upload` (pinned memory,
   ``non_blocking``, on CUDA).
2. **quality** from those same tensors: :func:`quality.measure_batch_tensor` (RGB, NCHW).
3. **letterbox** with Ultralytics' geometry for one image (``LetterBox(auto=True)``): scale
   ``r = min(S / h, S / w)`` for inference size ``S``, resized side ``round(side * r)``, padding
   to the next multiple of the model stride, split in two with ``round(d/2 - 0.1)`` before and
   ``round(d/2 + 0.1)`` after, filled with grey 114. The resize is bilinear with half-pixel
   centres and no antialiasing, like ``cv2.INTER_LINEAR``, rounded to 8-bit levels as OpenCV's
   uint8 output. Frames whose letterboxed shapes match share one forward pass.
4. **inference**: the Ultralytics ``DetectionModel`` (a fused copy of ``YOLO(...).model``), FP16
   on CUDA and FP32 on CPU, input ``RGB / 255``.
5. **NMS** as Ultralytics' ``non_max_suppression`` (best class per anchor, score > confidence,
   class-aware IoU suppression, at most ``max_det`` boxes per image), done for the whole batch in
   one ``torchvision.ops.batched_nms`` call with one group per (image, class).
6. **scale back**: ``x = (x' - left) * w / w'`` and ``y = (y' - top) * h / h'`` for resized size
   ``(w', h')``, clipped to the frame, as ``ultralytics.utils.ops.scale_boxes``.

Only ``.pt`` weights and model ``.yaml`` files have a torch module; exported formats (ONNX,
TFLite, TensorRT engines) use Ultralytics' path (:func:`supports`). End-to-end (NMS-free) heads
are not handled here either.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

import quality
from quality.report import QualityReport
from vision_service.decode import MIN_SIDE, decode_image
from vision_service.errors import InputError
from vision_service.measurement import Detection

if TYPE_CHECKING:
    import torch

    from vision_service.detector import Detector

#: Ultralytics' letterbox fill level.
PAD_VALUE = 114
#: Ultralytics' default cap of detections per image.
MAX_DETECTIONS = 300
#: Ultralytics' cap of candidate boxes per image fed to NMS (the highest scores are kept).
MAX_NMS_CANDIDATES = 30000
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
# Some encoders pad a few bytes after the end-of-image marker; more than this goes to the CPU decoder.
_JPEG_TAIL_SLACK = 32


@dataclass(frozen=True)
class DeviceResult:
    """One frame's outcome: detections in frame pixels, its quality, and seconds per stage.

    Stage times are the batch's wall time per stage divided evenly over its frames (as
    Ultralytics reports ``speed``), measured after a device synchronisation.
    """

    detections: list[Detection]
    quality: QualityReport
    width: int
    height: int
    quality_seconds: float
    preprocess: float
    inference: float
    postprocess: float


def supports(detector: Detector) -> bool:
    """Whether ``detector``'s model has a torch module this path can run (.pt or .yaml)."""
    return detector.format.lower() in ("pt", "yaml", "yml")


def letterbox_geometry(height: int, width: int, size: int, stride: int) -> tuple[int, int, int, int, int, int]:
    """Ultralytics' one-image letterbox: ``(new_h, new_w, top, bottom, left, right)`` in pixels.

    ``r = min(size / height, size / width)``; resized sides ``max(round(side * r), 1)``; padding
    ``d = (size - side') mod stride`` split as ``round(d/2 - 0.1)`` before, ``round(d/2 + 0.1)`` after.
    """
    r = min(size / height, size / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = ((size - new_w) % stride) / 2, ((size - new_h) % stride) / 2
    return new_h, new_w, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)


class DevicePath:
    """Runs frames through quality, letterbox, the model and NMS without leaving ``device``."""

    def __init__(
        self,
        model: torch.nn.Module,
        names: dict[int, str],
        *,
        device: str,
        image_size: int = 640,
        confidence: float = 0.25,
        iou: float = 0.7,
        analysis_size: int = 640,
        half: bool | None = None,
        max_det: int = MAX_DETECTIONS,
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.half = self.device.type == "cuda" if half is None else half
        self.names = names
        self.image_size = image_size
        self.confidence = confidence
        self.iou = iou
        self.analysis_size = analysis_size
        self.max_det = max_det
        self.stride = max(int(getattr(model, "stride", torch.tensor([32])).max()), 32)
        # A private copy: Ultralytics' predictor fuses and casts the module it was given in place.
        module = copy.deepcopy(model).to(self.device).eval()
        fuse = getattr(module, "fuse", None)
        if callable(fuse):  # Conv + BatchNorm folded, as Ultralytics' AutoBackend does
            module = fuse(verbose=False)
        self.model = module.half() if self.half else module.float()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @classmethod
    def from_detector(cls, detector: Detector, *, analysis_size: int = 640) -> DevicePath:
        """Build from a loaded :class:`Detector` with .pt weights or a .yaml model (see :func:`supports`)."""
        if not supports(detector):
            raise ValueError(f"the device path needs .pt weights or a model .yaml, not .{detector.format}")
        yolo = detector.ultralytics_model
        if getattr(yolo.model, "end2end", False):
            raise ValueError("end-to-end (NMS-free) heads are not supported by the device path")
        return cls(
            yolo.model,
            detector.names,
            device=detector.device,
            image_size=detector.image_size,
            confidence=detector.confidence,
            iou=detector.iou,
            analysis_size=analysis_size,
            half=detector.half,
        )

    # -- getting frames onto the device ---------------------------------------------------------

    def upload(self, pixels: np.ndarray) -> torch.Tensor:
        """A host BGR ``(H, W, 3)`` uint8 frame -> ``(3, H, W)`` RGB uint8 on the device."""
        import torch

        host = torch.from_numpy(np.ascontiguousarray(pixels))
        if self.device.type == "cuda":
            # Pinned staging lets the copy run asynchronously, overlapping the host's next work.
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True).permute(2, 0, 1).flip(0)

    def decode(self, data: Sequence[bytes], *, max_bytes: int, max_pixels: int) -> list[torch.Tensor | InputError]:
        """Image bytes -> ``(3, H, W)`` RGB uint8 device tensors, or the error naming each bad image.

        JPEGs that pass :func:`device_decodable` are decoded together in one batched
        ``decode_jpeg`` call on the device; everything else goes through the strict CPU decoder
        (:func:`vision_service.decode.decode_image`) and is uploaded. One bad image yields its
        own :class:`~vision_service.errors.InputError` and never fails the others.
        """
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        out: list[torch.Tensor | InputError | None] = [None] * len(data)
        jpegs = [i for i, blob in enumerate(data) if device_decodable(blob, max_bytes, max_pixels)]
        if jpegs:
            encoded = [torch.frombuffer(bytearray(data[i]), dtype=torch.uint8) for i in jpegs]
            try:
                decoded: list[torch.Tensor | None] = list(
                    decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device)
                )
            except RuntimeError:  # one undecodable JPEG fails the batched call: the CPU decoder names it
                decoded = [None] * len(jpegs)
            for index, image in zip(jpegs, decoded, strict=True):
                out[index] = image
        for index, blob in enumerate(data):
            if out[index] is None:
                try:
                    out[index] = self.upload(decode_image(blob, max_bytes=max_bytes, max_pixels=max_pixels).pixels)
                except InputError as exc:
                    out[index] = exc
        return [item for item in out if item is not None]

    # -- the pass ---------------------------------------------------------------------------------

    def run(
        self, images: Sequence[torch.Tensor], *, on_forward: Callable[[int], None] | None = None
    ) -> list[DeviceResult]:
        """Quality and detections for ``(3, H, W)`` RGB uint8 device tensors, in input order.

        ``on_forward`` is told the number of frames of every forward pass (``vision_batch_size``).
        """
        import torch

        if not images:
            return []
        count = len(images)
        with torch.inference_mode():
            t0 = self._now()
            table = quality.measure_batch_tensor(
                list(images), color_order="rgb", layout="nchw", analysis_size=self.analysis_size
            )
            t1 = self._now()
            groups: dict[tuple[int, ...], list[int]] = {}
            geometry = []
            for index, image in enumerate(images):
                height, width = int(image.shape[1]), int(image.shape[2])
                geo = letterbox_geometry(height, width, self.image_size, self.stride)
                geometry.append(geo)
                new_h, new_w, top, bottom, left, right = geo
                groups.setdefault((new_h + top + bottom, new_w + left + right), []).append(index)
            t_pre = t_inf = 0.0
            boxes_out: list[torch.Tensor] = []
            scores_out: list[torch.Tensor] = []
            classes_out: list[torch.Tensor] = []
            owners: list[torch.Tensor] = []
            for members in groups.values():
                a = self._now()
                batch = torch.stack([self._letterbox(images[i], geometry[i]) for i in members])
                batch = batch.half() if self.half else batch.float()
                batch = batch.div_(255.0)
                b = self._now()
                raw = self.model(batch)
                if on_forward is not None:
                    on_forward(len(members))
                preds = raw[0] if isinstance(raw, (tuple, list)) else raw
                c = self._now()
                t_pre += b - a
                t_inf += c - b
                boxes, scores, classes, owner = self._nms(preds.float(), members, geometry, images)
                boxes_out.append(boxes)
                scores_out.append(scores)
                classes_out.append(classes)
                owners.append(owner)
            # The only device -> host copies: a few numbers per detection and six per frame.
            packed = torch.cat(
                [
                    torch.cat(boxes_out),
                    torch.cat(scores_out)[:, None],
                    torch.cat(classes_out)[:, None].float(),
                    torch.cat(owners)[:, None].float(),
                ],
                dim=1,
            ).cpu()
            reports = [QualityReport(*row) for row in table.cpu().tolist()]
            t_post = self._now() - c if groups else 0.0
        per_image: list[list[Detection]] = [[] for _ in range(count)]
        for x1, y1, x2, y2, score, cls, owner in packed.tolist():
            class_id = int(cls)
            per_image[int(owner)].append(
                Detection(
                    class_id=class_id,
                    class_name=self.names.get(class_id, str(class_id)),
                    confidence=float(score),
                    box_xyxy=(x1, y1, x2, y2),
                )
            )
        return [
            DeviceResult(
                detections=per_image[i],
                quality=reports[i],
                width=int(images[i].shape[2]),
                height=int(images[i].shape[1]),
                quality_seconds=(t1 - t0) / count,
                preprocess=t_pre / count,
                inference=t_inf / count,
                postprocess=t_post / count,
            )
            for i in range(count)
        ]

    def _now(self) -> float:
        # Stage times need the queued kernels finished; on CPU this is a plain clock read.
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _letterbox(self, image: torch.Tensor, geo: tuple[int, int, int, int, int, int]) -> torch.Tensor:
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
        geometry: list[tuple[int, int, int, int, int, int]],
        images: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ultralytics' NMS for one forward pass ``(n, 4 + classes, anchors)``, boxes in frame pixels."""
        import torch
        from torchvision.ops import batched_nms

        n, channels, _ = preds.shape
        classes = channels - 4
        rows = preds.transpose(1, 2)  # (n, anchors, 4 + classes)
        scores, labels = rows[..., 4:].max(dim=2)
        keep = scores > self.confidence
        image_of = torch.arange(n, device=preds.device)[:, None].expand_as(scores)[keep]
        xywh, scores, labels = rows[..., :4][keep], scores[keep], labels[keep]
        if scores.numel() > MAX_NMS_CANDIDATES * n:
            top = scores.topk(MAX_NMS_CANDIDATES * n).indices
            xywh, scores, labels, image_of = xywh[top], scores[top], labels[top], image_of[top]
        half_wh = xywh[:, 2:] / 2
        xyxy = torch.cat([xywh[:, :2] - half_wh, xywh[:, :2] + half_wh], dim=1)
        kept = batched_nms(xyxy, scores, image_of * classes + labels, self.iou)  # sorted by score
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
        return boxes, scores[kept], labels[kept], owner


def device_decodable(blob: bytes, max_bytes: int, max_pixels: int) -> bool:
    """True for a JPEG that is safe to hand to ``decode_jpeg`` on the device.

    That is: within ``max_bytes``, a complete file (the end-of-image marker ``FF D9`` is present,
    so a truncated upload is refused by the strict CPU decoder instead of being decoded, possibly
    into grey rows, by nvJPEG), a header within the pixel limit and the minimum side, grey or RGB
    (not CMYK), and no EXIF turn to apply (nvJPEG ignores EXIF). Reads only the header.
    """
    import io

    from PIL import Image

    if blob[:3] != _JPEG_MAGIC or len(blob) > max_bytes or _JPEG_END not in blob[-_JPEG_TAIL_SLACK:]:
        return False
    try:
        with Image.open(io.BytesIO(blob)) as image:
            width, height = image.size
            upright = image.getexif().get(0x0112, 1) == 1
            gray_or_rgb = image.mode in ("L", "RGB")
    except Exception:
        return False
    return upright and gray_or_rgb and min(width, height) >= MIN_SIDE and width * height <= max_pixels
