"""Frame -> quality + detections -> Measurement, handed to every sink (metrics, drift windows)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

import quality
from vision_service.detector import Detector
from vision_service.errors import InputError, Reason
from vision_service.measurement import Measurement, StageTimes

Sink = Callable[[Measurement], None]


@dataclass(frozen=True)
class PendingFrame:
    """A decoded frame waiting for the model, with where it came from and what decoding cost."""

    pixels: np.ndarray
    source: str
    decode_seconds: float = 0.0


class Pipeline:
    """Runs quality analysis and detection on frames and records the result in every sink.

    Admission is bounded: at most ``max_pending`` frames may wait for the detector at once;
    the next caller is refused with ``overloaded`` instead of waiting without bound.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        analysis_size: int = 640,
        max_pending: int = 64,
        sinks: Sequence[Sink] = (),
        batch_sinks: Sequence[Callable[[int], None]] = (),
    ) -> None:
        self.detector = detector
        self.analysis_size = analysis_size
        self.max_pending = max_pending
        self.sinks = list(sinks)
        # Told the number of frames of every detector call (vision_batch_size).
        self.batch_sinks = list(batch_sinks)
        self._pending = 0
        self._pending_lock = threading.Lock()

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

    def process(self, frames: Sequence[PendingFrame]) -> list[Measurement]:
        """Measure and detect a group of frames in one model call; record and return the results."""
        if not self.detector.loaded:
            raise InputError(Reason.NOT_READY, "the model is still loading; retry shortly")
        started = time.perf_counter()
        reports = []
        quality_seconds = []
        for frame in frames:
            t0 = time.perf_counter()
            reports.append(quality.measure(frame.pixels, analysis_size=self.analysis_size))
            quality_seconds.append(time.perf_counter() - t0)
        detected = self.detector.predict([f.pixels for f in frames])
        for batch_sink in self.batch_sinks:
            batch_sink(len(frames))
        shared = time.perf_counter() - started
        measurements = []
        for frame, report, q_s, det in zip(frames, reports, quality_seconds, detected, strict=True):
            height, width = frame.pixels.shape[:2]
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
        for measurement in measurements:
            for sink in self.sinks:
                sink(measurement)
        return measurements
