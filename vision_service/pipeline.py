"""Frames -> the engine -> one Measurement per frame, handed to every sink exactly once.

The pipeline sits between the sources (upload routes, the camera scheduler) and the engine:

* **readiness**: it holds the engine once the model is loaded (:meth:`Pipeline.use`); until then,
  or after a failed load, every admission is refused with ``model_not_ready``;
* **admission**: at most ``max_pending`` frames, and at most ``max_pixels_in_flight`` decoded
  pixels (counted from the images' headers before decoding), may wait for the engine; the next
  caller is refused at once (``overloaded``, ``pixel_budget_full``) instead of waiting without
  bound, and a request whose images hold more than ``max_request_pixels`` with
  ``too_many_pixels``. Uploads are decoded one after the other and each frame is handed on as soon
  as it is decoded (:meth:`Pipeline.submit_images`), so a request does not hold all of its decoded
  images at once;
* **micro-batching**: frames of concurrent callers share one :meth:`Engine.run` of up to
  ``max_batch`` frames (:mod:`vision_service.batching`);
* **isolation**: when a batch fails as a whole, each of its frames is run again alone, so a
  frame that breaks the engine fails only its own caller;
* **recording**: each frame that succeeded becomes a :class:`Measurement`, built here and only
  here, and goes to the sinks (metrics, drift windows, history, conditions) once, after the retry,
  before its caller is answered. A sink that raises is logged and never fails the frame or the
  other sinks;
* **keeping pixels**: a :class:`FrameKeeper` (the evidence keeper) is asked about each measurement
  after the sinks; only when it wants the frame does the pipeline ask the engine for a small host
  copy (:meth:`Engine.thumbnail`), while the frame is still alive, and hand that to the keeper. No
  reference to a frame outlives the record step.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vision_service.batching import BatcherClosed, MicroBatcher
from vision_service.engine import Engine, Frame, FrameResult
from vision_service.engine.decode import declared_pixels
from vision_service.errors import ImageRejected, Reason
from vision_service.measurement import Measurement

if TYPE_CHECKING:
    from vision_service.core.config import Settings

#: Told each processed frame's measurement (vision_service.metrics, vision_service.drift).
Sink = Callable[[Measurement], None]
#: Told the number of frames of every forward pass of a successful run (vision_batch_size).
BatchSink = Callable[[int], None]
#: One uploaded image's fate: its measurement to come, or why it was refused.
Outcome = Future[Measurement] | ImageRejected


class FrameKeeper(Protocol):
    """A sink that keeps the pixels of a few frames (:class:`vision_service.evidence.EvidenceKeeper`)."""

    max_side: int  # longer side of the copies it is given

    def wants(self, m: Measurement) -> Any:
        """Whether to keep this frame (a truthy decision) or not (None): comparisons, no pixels."""
        ...

    def keep(self, m: Measurement, decision: Any, pixels: np.ndarray) -> None:
        """The frame's small host BGR copy, for the decision :meth:`wants` made."""
        ...


log = logging.getLogger(__name__)


class Pipeline:
    """Admission, micro-batching and recording around one engine."""

    def __init__(
        self,
        *,
        max_pending: int,
        max_batch: int,
        max_batch_wait: float,
        max_request_pixels: int,
        max_pixels_in_flight: int,
        sinks: Sequence[Sink] = (),
        batch_sinks: Sequence[BatchSink] = (),
        keepers: Sequence[FrameKeeper] = (),
        accepts: Callable[[str], bool] = lambda source: True,
    ) -> None:
        self.max_pending = max_pending
        self.sinks = list(sinks)
        self.batch_sinks = list(batch_sinks)
        self.keepers = list(keepers)
        # A frame whose source went away meanwhile (a removed camera) is answered, not recorded.
        self.accepts = accepts
        self._engine: Engine[Any] | None = None
        self.load_error: str | None = None  # why the model could not be loaded, if it could not
        self.max_request_pixels = max_request_pixels
        self.max_pixels_in_flight = max_pixels_in_flight
        self._pending = 0
        self._pixels = 0
        self._pending_lock = threading.Lock()
        self.batcher: MicroBatcher[Frame[Any], Measurement] = MicroBatcher(
            self._run_batch,
            max_batch=max_batch,
            max_wait=max_batch_wait,
            # Admitted frames are queued or being decoded: waiting makes sense only for those.
            expected=lambda: self._pending,
            name="engine-batcher",
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        sinks: Sequence[Sink] = (),
        batch_sinks: Sequence[BatchSink] = (),
        keepers: Sequence[FrameKeeper] = (),
        accepts: Callable[[str], bool] = lambda source: True,
    ) -> Pipeline:
        return cls(
            max_pending=settings.max_pending_frames,
            max_batch=settings.max_batch,
            max_batch_wait=settings.max_batch_wait_ms / 1000,
            max_request_pixels=settings.max_request_pixels,
            max_pixels_in_flight=settings.max_pixels_in_flight,
            sinks=sinks,
            batch_sinks=batch_sinks,
            keepers=keepers,
            accepts=accepts,
        )

    # -- readiness ------------------------------------------------------------------------------

    def use(self, engine: Engine[Any]) -> None:
        """Run frames on ``engine`` from now on: the service is ready."""
        self.load_error = None
        self._engine = engine

    def failed(self, error: str) -> None:
        """The model could not be loaded: refuse frames, giving ``error`` as the reason."""
        self._engine = None
        self.load_error = error

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine[Any]:
        """The engine, or ``model_not_ready`` (the one readiness check of the service)."""
        engine = self._engine
        if engine is None:
            raise ImageRejected(Reason.NOT_READY, self.load_error or "the model is still loading; retry shortly")
        return engine

    # -- admission --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Frames admitted and not yet finished: the queue depth in front of the engine."""
        return self._pending

    @property
    def pixels_in_flight(self) -> int:
        """Decoded pixels of the frames admitted and not yet finished (from their headers)."""
        return self._pixels

    def admit(self, frames: int = 1, pixels: int = 0) -> Admission:
        """Reserve room for ``frames`` frames holding ``pixels`` decoded pixels, or refuse right away.

        Raises ``model_not_ready`` before the model is loaded, ``too_many_pixels`` for a request
        larger than ``max_request_pixels``, ``overloaded`` or ``pixel_budget_full`` when full. The
        reservation is released by :meth:`Admission.release` (or leaving its ``with`` block).
        """
        engine = self.engine
        if pixels > self.max_request_pixels:
            raise ImageRejected(
                Reason.TOO_MANY_PIXELS,
                f"the request's images hold {pixels} pixels; the limit per request is {self.max_request_pixels}",
            )
        with self._pending_lock:
            if self._pending + frames > self.max_pending:
                raise ImageRejected(
                    Reason.OVERLOADED,
                    f"{self._pending} frames are already waiting for the detector (limit {self.max_pending})",
                )
            if self._pixels + pixels > self.max_pixels_in_flight:
                raise ImageRejected(
                    Reason.PIXEL_BUDGET,
                    f"{self._pixels} decoded pixels are already in flight; {pixels} more would pass "
                    f"the budget of {self.max_pixels_in_flight}",
                )
            self._pending += frames
            self._pixels += pixels
        return Admission(self, engine, frames, pixels)

    def _release(self, frames: int, pixels: int) -> None:
        with self._pending_lock:
            self._pending -= frames
            self._pixels -= pixels

    def submit_images(self, images: Sequence[bytes], source: str) -> tuple[Admission, list[Outcome]]:
        """Admit an upload from its headers, then decode and submit each image as soon as the previous is.

        Blocking (the routes run it in the thread pool). Returns the admission, to release once
        every future is done, and per image its future or the :class:`ImageRejected` it was refused
        with. Raises when the upload as a whole is refused (see :meth:`admit`). An upload of
        :data:`TRIM_AFTER_PIXELS` or more comes back with :attr:`Admission.trim_after` set: once it
        is done, its caller trims the heap (:func:`trim_heap`) in a worker thread.
        """
        pixels = sum(declared_pixels(image) for image in images)
        admission = self.admit(len(images), pixels)
        admission.trim_after = pixels >= TRIM_AFTER_PIXELS
        try:
            outcomes: list[Outcome] = []
            for item in admission.engine.decode(images, source=source):
                outcomes.append(item if isinstance(item, ImageRejected) else self.submit([item])[0])
            return admission, outcomes
        except BaseException:
            admission.release()
            raise

    # -- batching ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the batcher's worker (it also starts on first use)."""
        self.batcher.start()

    def close(self, timeout: float | None = None) -> None:
        """Graceful stop: refuse new frames, finish every frame already queued, join the worker."""
        self.batcher.stop(timeout)

    def submit(self, frames: Sequence[Frame[Any]]) -> list[Future[Measurement]]:
        """Queue admitted frames for a shared engine run; one future per frame, failing alone."""
        try:
            return self.batcher.submit(frames)
        except BatcherClosed:
            raise ImageRejected(Reason.NOT_READY, "the service is shutting down") from None

    def _run_batch(self, frames: list[Frame[Any]]) -> list[Measurement | Exception]:
        """The batcher's handler: run, build each measurement, record the successes once."""
        engine = self.engine
        started = time.perf_counter()
        outcomes, passes = self._analyse(engine, frames)
        shared = time.perf_counter() - started
        measured: list[Measurement | Exception] = [
            outcome if isinstance(outcome, Exception) else self._measurement(frame, outcome, engine, shared)
            for frame, outcome in zip(frames, outcomes, strict=True)
        ]
        self._record(
            engine, [(f, m) for f, m in zip(frames, measured, strict=True) if isinstance(m, Measurement)], passes
        )
        return measured

    @staticmethod
    def _analyse(engine: Engine[Any], frames: list[Frame[Any]]) -> tuple[list[FrameResult | Exception], list[int]]:
        """Each frame's result or exception, and the forward passes of the runs that succeeded."""
        try:
            analysis = engine.run(frames)
            return list(analysis.results), analysis.forward_passes
        except Exception as exc:
            if len(frames) == 1:
                return [exc], []
            log.debug("a batch of %d frames failed (%s); running each alone", len(frames), exc)
        outcomes: list[FrameResult | Exception] = []
        passes: list[int] = []
        for frame in frames:
            try:
                alone = engine.run([frame])
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.extend(alone.results)
                passes.extend(alone.forward_passes)
        return outcomes, passes

    @staticmethod
    def _measurement(frame: Frame[Any], result: FrameResult, engine: Engine[Any], shared: float) -> Measurement:
        return Measurement(
            source=frame.source,
            width=result.width,
            height=result.height,
            quality=result.quality,
            detections=result.detections,
            times=result.times,
            device=engine.model.device,
            total_seconds=frame.decode_seconds + shared,
            scene=result.scene,
        )

    def _record(self, engine: Engine[Any], done: list[tuple[Frame[Any], Measurement]], passes: list[int]) -> None:
        for size in passes:
            for batch_sink in self.batch_sinks:
                _isolated(batch_sink, size)
        for frame, measurement in done:
            if not self.accepts(measurement.source):
                continue
            for sink in self.sinks:
                _isolated(sink, measurement)
            for keeper in self.keepers:
                _offer(keeper, engine, frame, measurement)


def _offer(keeper: FrameKeeper, engine: Engine[Any], frame: Frame[Any], measurement: Measurement) -> None:
    """Ask a keeper about a frame; make the small copy only when it wants it. Failures are logged, never raised."""
    try:
        decision = keeper.wants(measurement)
        if decision:
            keeper.keep(measurement, decision, engine.thumbnail(frame, keeper.max_side))
    except Exception:
        log.exception("keeper %r failed", keeper)


# After an upload of this many decoded pixels, freed memory is handed back to the system.
TRIM_AFTER_PIXELS = 8_000_000


def _load_malloc_trim() -> Callable[[int], object] | None:
    """glibc's ``malloc_trim``, loaded once; None where there is none (not glibc: nothing to trim)."""
    try:
        malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return malloc_trim


_MALLOC_TRIM = _load_malloc_trim()


def trim_heap() -> None:
    """``malloc_trim(0)``: glibc keeps freed memory in the heaps of the threads that used it (decode
    threads, the batcher); after a large upload that is hundreds of MB the process would hold on to.

    Blocking (it walks every heap): called for large uploads only (:attr:`Admission.trim_after`),
    from a worker thread, never on the event loop. A no-op where there is no ``malloc_trim``.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Admission:
    """Room reserved in front of the engine for some frames and their decoded pixels; released once."""

    def __init__(self, pipeline: Pipeline, engine: Engine[Any], frames: int, pixels: int) -> None:
        self.engine = engine
        self._pipeline = pipeline
        self._reserved: tuple[int, int] | None = (frames, pixels)
        self._lock = threading.Lock()
        # Set by Pipeline.submit_images for a large upload: once it is done, its caller trims the heap.
        self.trim_after = False

    def release(self) -> None:
        with self._lock:
            reserved, self._reserved = self._reserved, None
        if reserved is not None:
            self._pipeline._release(*reserved)

    def __enter__(self) -> Engine[Any]:
        return self.engine

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _isolated(sink: Callable[[Any], None], value: object) -> None:
    """Call a sink; a sink that raises is a bug to log, never a reason to fail the frame or the other sinks."""
    try:
        sink(value)
    except Exception:
        log.exception("sink %r failed", sink)
