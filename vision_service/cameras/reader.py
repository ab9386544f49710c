"""One capture thread per camera: read the stream, keep only the latest sampled frame, reconnect.

The reader decodes every frame the source sends (``grab``) so the stream never backs up, but
converts to BGR (``retrieve``) only the frames due at the camera's sample rate, and puts each into
a one-frame slot. A sampled frame the scheduler has not taken yet is replaced by the next one and
counted ``dropped``: nothing queues without bound.

A failed read never produces a frame: on a failure (error, end of stream, or a stall) the capture
is released, the slot is emptied and the reader waits a capped exponential backoff with jitter
before opening a new capture; OpenCV's FFmpeg capture does not recover once its server is gone.
OpenCV returns a few held-back frames with ``True`` after a read timeout, so a ``grab`` that took
the whole read timeout counts as a stall too, and its frame is discarded.

Backend: OpenCV's FFmpeg backend (``cv2.CAP_FFMPEG``) with open and read timeouts. PyAV would
give finer control, but it is not a dependency, and OpenCV already ships FFmpeg with RTSP, HTTP
and file demuxers and bounded timeouts.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vision_service.cameras.config import Camera
from vision_service.cameras.stats import DROPPED, FAILED, CameraStats, Status
from vision_service.cameras.url import CameraSource, redact

log = logging.getLogger(__name__)

# FFmpeg options for every capture, unless the operator set their own. OpenCV's default is
# rtsp_flags=prefer_tcp (TCP, then UDP), which setting this variable replaces, so it is restated;
# a 1 s analyzeduration opens a stream in ~1 s instead of ~3 s of probing.
FFMPEG_CAPTURE_OPTIONS = "rtsp_flags;prefer_tcp|analyzeduration;1000000"
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)
# OpenCV serialises every FFmpeg open in the process behind one lock (opencv/opencv#20114), so a
# camera whose server accepts and never answers holds up every other camera's connect, reconnect
# and file restart for its whole open timeout, attempt after attempt. FFmpeg built with threads
# (OpenCV's wheels' is) opens separate captures safely in parallel; OpenCV >= 4.8 drops its lock
# when told so (opencv/opencv#23601), and then logs one warning per open saying it did.
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

# A grab that took this fraction of the read timeout returned a held-back frame after a stall.
STALL_FRACTION = 0.9
# Recordings play in real time at their own rate; this one when the container does not say.
DEFAULT_FILE_FPS = 25.0

OpenCapture = Callable[[CameraSource, float], "cv2.VideoCapture | None"]


class LatestFrame:
    """A one-frame slot of BGR uint8 pixels: ``put`` replaces, ``take`` empties. Never holds more than one frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None

    def put(self, frame: np.ndarray) -> bool:
        """Store ``frame``; return True when it replaced one nobody took (a dropped frame)."""
        with self._lock:
            replaced = self._frame is not None
            self._frame = frame
        return replaced

    def take(self) -> np.ndarray | None:
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    def clear(self) -> bool:
        """Empty the slot; return True when a frame was discarded."""
        return self.take() is not None


class Backoff:
    """Capped exponential backoff with jitter: ``initial * 2**n`` capped at ``maximum``, times U(0.5, 1).

    The jitter keeps cameras behind one failed switch from reconnecting in lock-step; its lower
    bound of one half keeps a retry from coming right away.
    """

    def __init__(self, initial: float, maximum: float, *, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


def open_capture(source: CameraSource, timeout: float) -> cv2.VideoCapture | None:
    """Open ``source`` with OpenCV's FFmpeg backend, bounded by ``timeout`` to open and per read."""
    if source.kind == "device":
        capture = cv2.VideoCapture(int(source.target))
    else:
        ms = max(1, int(timeout * 1000))
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        capture = cv2.VideoCapture(str(source.target), cv2.CAP_FFMPEG, params)
    if capture.isOpened():
        return capture
    capture.release()
    return None


def as_bgr(pixels: np.ndarray | None) -> np.ndarray | None:
    """A decoded frame as contiguous 3-channel uint8 BGR, or None when it is not an image."""
    if pixels is None or pixels.size == 0 or pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if pixels.ndim != 3:
        return None
    channels = pixels.shape[2]
    if channels == 3:
        return np.ascontiguousarray(pixels)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return None


class CameraReader:
    """Reads one camera on its own thread into ``slot``; reports to ``stats``; wakes ``on_frame``."""

    def __init__(
        self,
        camera: Camera,
        *,
        slot: LatestFrame,
        stats: CameraStats,
        on_frame: Callable[[], None],
        timeout: float,
        backoff: Backoff,
        open_capture: OpenCapture = open_capture,
    ) -> None:
        self.camera = camera
        self.source = camera.source()
        self.slot = slot
        self.stats = stats
        self.timeout = timeout
        self.backoff = backoff
        self._on_frame = on_frame
        self._open_capture = open_capture
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does after its current open or read (bounded by the timeout)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._discard_pending()

    def _loop(self) -> None:
        reconnecting = False
        warned = False
        while not self._stop.is_set():
            if reconnecting:
                self.stats.reconnect()
            outcome, delivered = self._connect_and_read()
            if self._stop.is_set():
                return
            self._discard_pending()
            if outcome == "ended" and delivered:
                if self.camera.loop:
                    reconnecting = False  # starting a file over is not a reconnect
                    continue
                self.stats.set_status(Status.ENDED, "end of file")
                log.info("camera %s: end of file", self.camera.id)
                return
            if delivered:
                self.backoff.reset()
                warned = False
            delay = self.backoff.next()
            error = self._error or "the stream failed"
            self.stats.set_status(Status.RECONNECTING, error)
            level = logging.DEBUG if warned else logging.WARNING
            log.log(
                level,
                "camera %s (%s): %s; reconnecting in %.1f s",
                self.camera.id,
                self.camera.masked_url,
                error,
                delay,
            )
            warned = True
            reconnecting = True
            if self._stop.wait(delay):
                return

    def _connect_and_read(self) -> tuple[str, bool]:
        """Open a new capture and read until it fails or ends: ('failed' | 'ended' | 'stopped', delivered)."""
        self._error = None
        try:
            capture = self._open_capture(self.source, self.timeout)
        except Exception as exc:  # cv2.error and friends: report, never crash the thread
            self._error = f"could not open: {type(exc).__name__}: {redact(str(exc), self.camera.url)}"
            return "failed", False
        if capture is None:
            what = {"file": "the video file", "device": "the device"}.get(self.source.kind, "the stream")
            self._error = f"could not open {what}"
            return "failed", False
        try:
            return self._read(capture)
        except Exception as exc:
            self.stats.count(FAILED)
            self._error = f"read error: {type(exc).__name__}: {redact(str(exc), self.camera.url)}"
            return "failed", False  # do not reset the backoff: this may repeat at every connect
        finally:
            capture.release()

    def _read(self, capture: cv2.VideoCapture) -> tuple[str, bool]:
        is_file = self.source.kind == "file"
        pace = 0.0
        # Play recordings (a local file, or a video over HTTP with a frame count) in real time at
        # their own rate; live streams (RTSP, MJPEG, devices) are paced by their source.
        if is_file or (self.source.kind == "network" and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0):
            native = capture.get(cv2.CAP_PROP_FPS)
            pace = 1.0 / (native if 1.0 <= native <= 240.0 else DEFAULT_FILE_FPS)
        period = 1.0 / self.camera.fps
        next_sample = next_grab = time.monotonic()
        delivered = False
        while not self._stop.is_set():
            if pace:
                delay = next_grab - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_grab = max(next_grab + pace, time.monotonic() - pace)
            started = time.monotonic()
            ok = capture.grab()
            took = time.monotonic() - started
            if not ok:
                if is_file and delivered:
                    return "ended", True
                self.stats.count(FAILED)
                self._error = "the stream stopped delivering frames"
                return "failed", delivered
            if self.source.kind == "network" and took >= STALL_FRACTION * self.timeout:
                self.stats.count(FAILED)
                self._error = f"stalled: no frame for {took:.1f} s"
                return "failed", delivered
            if not delivered:
                delivered = True
                self.stats.set_status(Status.UP)
                log.info("camera %s: receiving frames from %s", self.camera.id, self.camera.masked_url)
            self.stats.frame_read()
            now = time.monotonic()
            if now < next_sample:
                continue
            ok, pixels = capture.retrieve()
            frame = as_bgr(pixels) if ok else None
            if frame is None:
                self.stats.count(FAILED)
                self._error = "could not decode a frame"
                return "failed", delivered
            if self.slot.put(frame):
                self.stats.count(DROPPED)
            self._on_frame()
            next_sample += period
            if next_sample < now:
                next_sample = now + period
        return "stopped", delivered

    def _discard_pending(self) -> None:
        """A sampled frame nobody took before the stream failed or stopped is dropped, not kept."""
        if self.slot.clear():
            self.stats.count(DROPPED)
