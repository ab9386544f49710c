"""The host engine: the strict CPU decoder, :func:`quality.measure` and Ultralytics' own predict.

Frames are host BGR ``(H, W, 3)`` uint8 arrays (OpenCV order). Every model format Ultralytics
loads runs here (``.pt``, ``.onnx``, ``.tflite``, TensorRT engines, a model ``.yaml``); on CUDA,
Ultralytics letterboxes on the CPU and copies each frame to the GPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

import quality
from vision_service.engine import Analysis, EngineOptions, Frame, FrameResult, ModelInfo, thumbnail_size
from vision_service.engine.decode import decode_each
from vision_service.errors import ImageRejected
from vision_service.measurement import Detection, StageTimes


class HostEngine:
    """Quality with OpenCV and detections with ``ultralytics.YOLO.predict``, one call per frame size."""

    def __init__(self, yolo: Any, model: ModelInfo, options: EngineOptions) -> None:
        self._yolo = yolo
        self.model = model
        self.options = options
        self.half = model.device.startswith("cuda")
        self.names = {int(k): str(v) for k, v in yolo.names.items()}

    def decode(self, images: Sequence[bytes], *, source: str) -> Iterator[Frame[np.ndarray] | ImageRejected]:
        return decode_each(
            images, self.options.limits, lambda bgr, seconds: self.from_host(bgr, source=source, decode_seconds=seconds)
        )

    def from_host(self, bgr: np.ndarray, *, source: str, decode_seconds: float = 0.0) -> Frame[np.ndarray]:
        return Frame(bgr, int(bgr.shape[1]), int(bgr.shape[0]), source, decode_seconds)

    def run(self, frames: Sequence[Frame[np.ndarray]]) -> Analysis:
        reports = []
        scenes = []
        quality_seconds = []
        for frame in frames:
            started = time.perf_counter()
            report, scene = quality.measure_scene(frame.pixels, analysis_size=self.options.analysis_size)
            reports.append(report)
            scenes.append(scene)
            quality_seconds.append(time.perf_counter() - started)
        detected, passes = self._detect([frame.pixels for frame in frames])
        results = [
            FrameResult(
                width=frame.width,
                height=frame.height,
                quality=report,
                detections=detections,
                times=StageTimes(frame.decode_seconds, q_s, *stage_seconds),
                scene=scene,
            )
            for frame, report, scene, q_s, (detections, stage_seconds) in zip(
                frames, reports, scenes, quality_seconds, detected, strict=True
            )
        ]
        return Analysis(results, passes)

    def thumbnail(self, frame: Frame[np.ndarray], max_side: int) -> np.ndarray:
        """The frame's BGR pixels area-downscaled (``cv2.INTER_AREA``) so the longer side is at most ``max_side``."""
        height, width = thumbnail_size(frame.height, frame.width, max_side)
        if (height, width) == (frame.height, frame.width):
            return frame.pixels.copy()
        return cv2.resize(frame.pixels, (width, height), interpolation=cv2.INTER_AREA)

    def warm_up(self) -> None:
        """Two passes on a grey frame: the first builds kernels and caches, the second confirms steady state."""
        size = self.options.image_size
        grey = np.full((size, size, 3), 114, dtype=np.uint8)
        for _ in range(2):
            self._predict([grey])

    # -- detection ------------------------------------------------------------------------------

    def _detect(
        self, pixels: Sequence[np.ndarray]
    ) -> tuple[list[tuple[list[Detection], tuple[float, float, float]]], list[int]]:
        """One predict call per frame shape: frames of one size share a call.

        Ultralytics letterboxes a batch of mixed sizes to a full ``imgsz`` square but a batch of
        one size to the smallest stride-aligned rectangle; grouping by size keeps every frame's
        detections what they would be alone, whichever frames it happened to be batched with.
        """
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(pixels):
            by_shape.setdefault(image.shape, []).append(index)
        detected: dict[int, tuple[list[Detection], tuple[float, float, float]]] = {}
        for members in by_shape.values():
            for index, result in zip(members, self._predict([pixels[i] for i in members]), strict=True):
                detected[index] = result
        return [detected[i] for i in range(len(pixels))], [len(members) for members in by_shape.values()]

    def _predict(self, images: list[np.ndarray]) -> list[tuple[list[Detection], tuple[float, float, float]]]:
        """Detections of BGR frames in each frame's own pixels, and seconds of preprocess, inference, postprocess."""
        results = self._yolo.predict(
            images,
            imgsz=self.options.image_size,
            conf=self.options.confidence,
            iou=self.options.iou,
            device=self.model.device,
            **self._precision(),
            verbose=False,
        )
        out = []
        for result in results:
            boxes = result.boxes
            detections = [
                Detection(
                    class_id=c,
                    class_name=self.names.get(c, str(c)),
                    confidence=float(p),
                    box_xyxy=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                )
                for c, p, b in zip(boxes.cls.int().tolist(), boxes.conf.tolist(), boxes.xyxy.tolist(), strict=True)
            ]
            # Ultralytics reports the batch's per-image average in milliseconds.
            speed = result.speed
            seconds = tuple(speed.get(stage, 0.0) / 1000 for stage in ("preprocess", "inference", "postprocess"))
            out.append((detections, (seconds[0], seconds[1], seconds[2])))
        return out

    def _precision(self) -> dict[str, object]:
        """FP16 on CUDA. Newer Ultralytics name it ``quantize=16`` and warn at every call given ``half``."""
        from ultralytics.cfg import DEFAULT_CFG_DICT

        if "quantize" in DEFAULT_CFG_DICT:
            return {"quantize": 16 if self.half else None}
        return {"half": self.half}
