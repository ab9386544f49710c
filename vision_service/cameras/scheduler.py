"""One thread shares the detector fairly between cameras: round-robin over the fresh frames.

Each camera has a one-frame slot (see :mod:`vision_service.cameras.reader`). The scheduler takes
the next camera after the one it served last that has a frame waiting, sends that single frame
through the same pipeline as uploads (quality + detection + metrics, ``source`` = camera id), and
moves on. A camera gets at most one frame per round, however fast it samples; when the detector
cannot keep up, readers overwrite their slots and count the frames ``dropped``.

Camera frames pass ``Pipeline.admit`` like uploads, so they count in ``vision_queue_depth``; when
uploads fill the queue (or the model is still loading) the frame is dropped, never waited for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vision_service.cameras.reader import Frame, LatestFrame
from vision_service.cameras.stats import DROPPED, FAILED, CameraStats
from vision_service.errors import InputError
from vision_service.pipeline import PendingFrame, Pipeline

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
            picked = self.next_frame()
            if picked is None:
                self._wake.wait(IDLE_WAIT_SECONDS)
                continue
            self.process(*picked)

    def next_frame(self) -> tuple[Feed, Frame] | None:
        """The next feed after the last one served that has a frame, and that frame (taken)."""
        feeds = list(self._feeds())
        if not feeds:
            return None
        ids = [f.camera_id for f in feeds]
        start = ids.index(self._last) + 1 if self._last in ids else 0
        for offset in range(len(feeds)):
            feed = feeds[(start + offset) % len(feeds)]
            frame = feed.slot.take()
            if frame is not None:
                self._last = feed.camera_id
                return feed, frame
        return None

    def process(self, feed: Feed, frame: Frame) -> None:
        """Send one frame through the pipeline and count the outcome."""
        try:
            with self.pipeline.admit(1):
                (measurement,) = self.pipeline.process([PendingFrame(frame.pixels, feed.camera_id)])
        except InputError:
            # Overloaded (uploads fill the queue) or the model is still loading: drop, do not wait.
            feed.stats.count(DROPPED)
            return
        except Exception as exc:
            log.error("camera %s: processing a frame failed: %s", feed.camera_id, type(exc).__name__)
            feed.stats.count(FAILED)
            return
        feed.stats.processed(frame.pixels, measurement)
