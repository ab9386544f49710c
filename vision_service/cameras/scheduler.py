"""One thread shares the detector fairly between cameras: round-robin over the fresh frames.

Each camera has a one-frame slot (see :mod:`vision_service.cameras.reader`). Each round the
scheduler takes the frame waiting in every slot, starting after the camera it served first last
time, and submits them together through the same pipeline as uploads (quality + detection +
metrics, ``source`` = camera id), so the frames of one round share a detector call (with any
concurrent uploads: :mod:`vision_service.batching`). A camera gets at most one frame per round,
however fast it samples; when the detector cannot keep up, readers overwrite their slots and count
the frames ``dropped``.

Camera frames pass ``Pipeline.admit`` like uploads, so they count in ``vision_queue_depth``; when
uploads fill the queue (or the model is still loading) a frame is dropped, never waited for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from vision_service.cameras.reader import LatestFrame
from vision_service.cameras.stats import DROPPED, FAILED, CameraStats
from vision_service.errors import ImageRejected
from vision_service.pipeline import Pipeline

log = logging.getLogger(__name__)

# How long the idle scheduler sleeps before looking again, even without a wake-up.
IDLE_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Feed:
    """What the scheduler needs of a camera: its id, its frame slot, and where to report."""

    camera_id: str
    slot: LatestFrame
    stats: CameraStats


class Scheduler:
    """Round-robin over ``feeds()`` on one thread; call :meth:`wake` when a frame arrives."""

    def __init__(self, pipeline: Pipeline, feeds: Callable[[], Sequence[Feed]]) -> None:
        self.pipeline = pipeline
        self._feeds = feeds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="camera-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            # Clear before looking: a frame put after the look sets the event and ends the wait.
            self._wake.clear()
            picked = self.next_round()
            if not picked:
                self._wake.wait(IDLE_WAIT_SECONDS)
                continue
            self.process_round(picked)

    def next_round(self) -> list[tuple[Feed, np.ndarray]]:
        """Every feed's waiting frame (taken), in round-robin order after the one served first last time.

        Rotating the start keeps admission fair when the queue has room for only some of the round.
        """
        feeds = list(self._feeds())
        if not feeds:
            return []
        ids = [f.camera_id for f in feeds]
        start = ids.index(self._last) + 1 if self._last in ids else 0
        picked = []
        for offset in range(len(feeds)):
            feed = feeds[(start + offset) % len(feeds)]
            frame = feed.slot.take()
            if frame is not None:
                picked.append((feed, frame))
        if picked:
            self._last = picked[0][0].camera_id
        return picked

    def process_round(self, picked: Sequence[tuple[Feed, np.ndarray]]) -> None:
        """Admit what fits, send the admitted frames as one submission, count every outcome."""
        with ExitStack() as admitted_stack:
            admitted = []
            for feed, pixels in picked:
                try:
                    engine = admitted_stack.enter_context(self.pipeline.admit(1, pixels.shape[0] * pixels.shape[1]))
                except ImageRejected:
                    # Overloaded (uploads fill the queue or the pixel budget), or the model is not loaded yet:
                    # drop, do not wait.
                    feed.stats.count(DROPPED)
                    continue
                admitted.append((feed, pixels, engine.from_host(pixels, source=feed.camera_id)))
            if not admitted:
                return
            try:
                futures = self.pipeline.submit([frame for _, _, frame in admitted])
            except ImageRejected:  # shutting down
                for feed, _, _ in admitted:
                    feed.stats.count(DROPPED)
                return
            for (feed, pixels, _), future in zip(admitted, futures, strict=True):
                try:
                    measurement = future.result()
                except Exception as exc:
                    log.error("camera %s: processing a frame failed: %s", feed.camera_id, type(exc).__name__)
                    feed.stats.count(FAILED)
                else:
                    feed.stats.processed(pixels, measurement)
