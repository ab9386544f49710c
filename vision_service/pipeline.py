"""Frame -> quality + detections -> Measurement, handed to every sink (metrics, drift windows).

Uploads and camera frames reach the detector through one :class:`~vision_service.batching.MicroBatcher`
(:meth:`Pipeline.submit`, :meth:`Pipeline.run`, :meth:`Pipeline.gather`): frames of concurrent
callers share one model call of up to ``max_batch`` frames. :meth:`Pipeline.process` is that
model call, for one group of frames, on the caller's thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

import quality
from vision_service.batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_SECONDS, BatcherClosed, MicroBatcher
from vision_service.detector import Detector, FrameDetections
from vision_service.device_path import DevicePath, supports
from vision_service.errors import InputError, Reason
from vision_service.measurement import Measurement, StageTimes

if TYPE_CHECKING:
    import torch

Sink = Callable[[Measurement], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingFrame:
    """A decoded frame waiting for the model, with where it came from and what decoding cost.

    ``pixels`` is a host BGR ``(H, W, 3)`` uint8 array (camera frames, the CPU decoder) or, for
    an upload decoded by the device path, an RGB ``(3, H, W)`` uint8 tensor on the model's device.
    """

    pixels: np.ndarray | torch.Tensor
    source: str
    decode_seconds: float = 0.0


class Pipeline:
    """Runs quality analysis and detection on frames and records the result in every sink.

    Admission is bounded: at most ``max_pending`` frames may wait for the detector at once;
    the next caller is refused with ``overloaded`` instead of waiting without bound. Admitted
    frames are batched: up to ``max_batch`` frames per model call, the first one waiting at most
    ``max_batch_wait`` seconds for company, and only while other admitted frames are on their way.
    Frames submitted without :meth:`admit` never hold a call back.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        analysis_size: int = 640,
        max_pending: int = 64,
        sinks: Sequence[Sink] = (),
        batch_sinks: Sequence[Callable[[int], None]] = (),
        max_batch: int = DEFAULT_MAX_BATCH,
        max_batch_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        device_path_mode: Literal["auto", "on", "off"] = "off",
    ) -> None:
        self.detector = detector
        self.analysis_size = analysis_size
        self.max_pending = max_pending
        self.sinks = list(sinks)
        # Told the number of frames of every detector call (vision_batch_size).
        self.batch_sinks = list(batch_sinks)
        self._pending = 0
        self._pending_lock = threading.Lock()
        # auto: the device path on CUDA only; the CPU keeps Ultralytics' own path.
        self.device_path_mode = device_path_mode
        self._device_path: DevicePath | None = None
        self._device_path_resolved = False
        self._device_path_lock = threading.Lock()
        self.batcher: MicroBatcher[PendingFrame, Measurement] = MicroBatcher(
            self.process,
            max_batch=max_batch,
            max_wait=max_batch_wait,
            # Admitted frames are queued or being decoded: waiting makes sense only for those.
            expected=lambda: self._pending,
            name="detector-batcher",
        )

    @property
    def pending(self) -> int:
        """Frames admitted and not yet finished: the queue depth in front of the detector."""
        return self._pending

    @contextmanager
    def admit(self, frames: int = 1) -> Iterator[None]:
        """Reserve room for ``frames`` frames or raise ``overloaded`` right away."""
        with self._pending_lock:
            if self._pending + frames > self.max_pending:
                raise InputError(
                    Reason.OVERLOADED,
                    f"{self._pending} frames are already waiting for the detector (limit {self.max_pending})",
                )
            self._pending += frames
        try:
            yield
        finally:
            with self._pending_lock:
                self._pending -= frames

    @property
    def device_path(self) -> DevicePath | None:
        """The device path when enabled and the model allows it (decided once the model is loaded)."""
        if self._device_path_resolved or not self.detector.loaded:
            return self._device_path
        with self._device_path_lock:
            if not self._device_path_resolved:
                mode = self.device_path_mode
                wanted = mode == "on" or (mode == "auto" and self.detector.device.startswith("cuda"))
                if wanted and supports(self.detector):
                    self._device_path = DevicePath.from_detector(self.detector, analysis_size=self.analysis_size)
                    log.info("device path on %s", self.detector.device)
                elif wanted:
                    log.warning("device path unavailable for .%s models: using Ultralytics' path", self.detector.format)
                self._device_path_resolved = True
        return self._device_path

    def start(self) -> None:
        """Start the batcher's worker (it also starts on first use)."""
        self.batcher.start()

    def close(self, timeout: float | None = None) -> None:
        """Graceful stop: refuse new frames, finish every frame already queued, join the worker."""
        self.batcher.stop(timeout)

    def submit(self, frames: Sequence[PendingFrame]) -> list[Future[Measurement]]:
        """Queue admitted frames for a shared model call; one future per frame.

        A frame that fails (even inside a shared batch) fails only its own future.
        """
        try:
            return self.batcher.submit(frames)
        except BatcherClosed:
            raise InputError(Reason.NOT_READY, "the service is shutting down") from None

    def run(self, frames: Sequence[PendingFrame]) -> list[Measurement]:
        """:meth:`submit` and wait (blocking threads such as the camera scheduler)."""
        return [future.result() for future in self.submit(frames)]

    async def gather(self, frames: Sequence[PendingFrame]) -> list[Measurement]:
        """:meth:`submit` and await, never blocking the event loop (the HTTP routes)."""
        futures = [asyncio.wrap_future(f) for f in self.submit(frames)]
        return list(await asyncio.gather(*futures))

    def _detect(self, frames: Sequence[np.ndarray]) -> list[FrameDetections]:
        """One model call per frame shape: frames of one size share a call.

        Ultralytics letterboxes a batch of mixed sizes to a full ``imgsz`` square but a batch of
        one size to the smallest stride-aligned rectangle; grouping by size keeps every frame's
        detections what they would be alone, whichever frames it happened to be batched with.
        """
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(index)
        detected: list[FrameDetections | None] = [None] * len(frames)
        for members in by_shape.values():
            for index, result in zip(members, self.detector.predict([frames[i] for i in members]), strict=True):
                detected[index] = result
            self._batch_size(len(members))
        return [d for d in detected if d is not None]

    def process(self, frames: Sequence[PendingFrame]) -> list[Measurement]:
        """Measure and detect a group of frames (one model call per frame size); record and return the results."""
        if not self.detector.loaded:
            raise InputError(Reason.NOT_READY, "the model is still loading; retry shortly")
        device_path = self.device_path
        if device_path is not None:
            return self._record(self._process_on_device(device_path, frames))
        started = time.perf_counter()
        pixels = [host_bgr(frame.pixels) for frame in frames]
        reports = []
        quality_seconds = []
        for bgr in pixels:
            t0 = time.perf_counter()
            reports.append(quality.measure(bgr, analysis_size=self.analysis_size))
            quality_seconds.append(time.perf_counter() - t0)
        detected = self._detect(pixels)
        shared = time.perf_counter() - started
        measurements = []
        for frame, bgr, report, q_s, det in zip(frames, pixels, reports, quality_seconds, detected, strict=True):
            height, width = bgr.shape[:2]
            measurements.append(
                Measurement(
                    source=frame.source,
                    width=int(width),
                    height=int(height),
                    quality=report,
                    detections=det.detections,
                    times=StageTimes(
                        decode=frame.decode_seconds,
                        quality=q_s,
                        preprocess=det.preprocess,
                        inference=det.inference,
                        postprocess=det.postprocess,
                    ),
                    device=self.detector.device,
                    total_seconds=frame.decode_seconds + shared,
                )
            )
        return self._record(measurements)

    def _process_on_device(self, device_path: DevicePath, frames: Sequence[PendingFrame]) -> list[Measurement]:
        started = time.perf_counter()
        images = [device_path.upload(f.pixels) if isinstance(f.pixels, np.ndarray) else f.pixels for f in frames]
        results = device_path.run(images, on_forward=self._batch_size)
        shared = time.perf_counter() - started
        return [
            Measurement(
                source=frame.source,
                width=result.width,
                height=result.height,
                quality=result.quality,
                detections=result.detections,
                times=StageTimes(
                    decode=frame.decode_seconds,
                    quality=result.quality_seconds,
                    preprocess=result.preprocess,
                    inference=result.inference,
                    postprocess=result.postprocess,
                ),
                device=self.detector.device,
                total_seconds=frame.decode_seconds + shared,
            )
            for frame, result in zip(frames, results, strict=True)
        ]

    def _batch_size(self, frames: int) -> None:
        for batch_sink in self.batch_sinks:
            batch_sink(frames)

    def _record(self, measurements: list[Measurement]) -> list[Measurement]:
        for measurement in measurements:
            for sink in self.sinks:
                sink(measurement)
        return measurements


def host_bgr(pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    """Host BGR ``(H, W, 3)`` pixels, copying back a device-decoded RGB ``(3, H, W)`` tensor if need be."""
    if isinstance(pixels, np.ndarray):
        return pixels
    return np.ascontiguousarray(pixels.permute(1, 2, 0).flip(2).cpu().numpy())
