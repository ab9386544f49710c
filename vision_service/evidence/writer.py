"""The evidence writer: JPEG encoding and store writes on one background thread, behind a bounded queue.

The pipeline's record step hands a kept frame's small BGR image to :meth:`EvidenceWriter.submit`,
which only queues it (``put_nowait``): when the queue is full the frame is dropped and counted,
never waited for, so a slow disk cannot slow detection. The thread encodes (OpenCV, JPEG quality
:data:`JPEG_QUALITY`) and calls :meth:`EvidenceStore.put`; while idle it prunes expired samples
every ``prune_seconds``. Memory: at most ``queue_size`` small images wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from vision_service.evidence.sample import Sample
from vision_service.evidence.store import EvidenceStore

log = logging.getLogger(__name__)

JPEG_QUALITY = 85
QUEUE_SIZE = 32
PRUNE_SECONDS = 30.0


@dataclass(frozen=True)
class _Job:
    sample: Sample
    bgr: np.ndarray


_STOP = object()


class EvidenceWriter:
    """Encodes and stores kept frames on its own thread; started on first use, stopped by :meth:`close`."""

    def __init__(
        self,
        store: EvidenceStore,
        *,
        queue_size: int = QUEUE_SIZE,
        jpeg_quality: int = JPEG_QUALITY,
        prune_seconds: float = PRUNE_SECONDS,
    ) -> None:
        self.store = store
        self.jpeg_quality = jpeg_quality
        self.prune_seconds = prune_seconds
        self._queue: queue.Queue[_Job | object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.written = 0  # frames stored
        self.dropped = 0  # frames refused because the queue was full
        self.failed = 0  # frames that could not be encoded or stored

    def submit(self, sample: Sample, bgr: np.ndarray) -> bool:
        """Queue a frame for encoding; False (and counted) when the queue is full or the writer closed."""
        with self._lock:
            if self._closed:
                self.dropped += 1
                return False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(_Job(sample, bgr))
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        return True

    def pending(self) -> int:
        """Frames queued or being written."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every frame queued so far is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Refuse new frames, write the queued ones, stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)  # blocks only while the queue is full, i.e. while the thread drains it
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self.prune_seconds)
            except queue.Empty:
                self._prune()
                continue
            try:
                if job is _STOP:
                    return
                assert isinstance(job, _Job)
                self._write(job)
            finally:
                self._queue.task_done()

    def _write(self, job: _Job) -> None:
        try:
            ok, buffer = cv2.imencode(".jpg", job.bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            stored = self.store.put(job.sample, buffer.tobytes())
        except Exception as exc:  # a full disk or a bad frame must not stop the thread
            log.error("could not keep an evidence frame of %s: %s", job.sample.source, exc)
            stored = False
        with self._lock:
            if stored:
                self.written += 1
            else:
                self.failed += 1

    def _prune(self) -> None:
        try:
            self.store.prune()
        except Exception as exc:
            log.error("could not prune the evidence store: %s", exc)
