"""One reader thread per camera: read the stream, keep only the latest sampled frame, reconnect.

The reader decodes every frame the source sends so the stream never backs up, but converts to
BGR only the frames due at the camera's sample rate, and puts each into a one-frame slot. A
sampled frame the scheduler has not taken yet is replaced by the next one and counted
``dropped``: nothing queues without bound. A frame larger than the pixel limit is counted
``failed`` and never converted, and a stream that announces such frames is not read at all.

A failed read never produces a frame: on a failure (an error, the end of a live stream, a read
that timed out) the stream is closed, the slot is emptied and the reader waits a capped
exponential backoff with jitter before opening a new one.

Opening, options and FFmpeg's log are :mod:`vision_service.cameras.stream`'s (FFmpeg through PyAV).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vision_service.cameras.config import Camera
from vision_service.cameras.stats import DROPPED, FAILED, CameraStats, Status
from vision_service.cameras.stream import SECRETS, StreamPolicy, frame_pixels_ok, open_stream
from vision_service.cameras.url import redact

log = logging.getLogger(__name__)

# Recordings play in real time at their own rate; this one when the container does not say.
DEFAULT_FILE_FPS = 25.0


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


class CameraReader:
    """Reads one camera on its own thread into ``slot``; reports to ``stats``; wakes ``on_frame``."""

    def __init__(
        self,
        camera: Camera,
        *,
        slot: LatestFrame,
        stats: CameraStats,
        on_frame: Callable[[], None],
        policy: StreamPolicy,
        backoff: Backoff,
    ) -> None:
        self.camera = camera
        self.source = camera.source()
        self.slot = slot
        self.stats = stats
        self.policy = policy
        self.backoff = backoff
        self._on_frame = on_frame
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
        # Masked wherever FFmpeg repeats them; this reader's own registration, so that a reader of the
        # same camera id started before this one ends (a redefined or re-added camera) keeps its own.
        registration = SECRETS.add(self.camera.url)
        try:
            self._loop()
        finally:
            self._discard_pending()
            SECRETS.remove(registration)

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
        """Open a new stream and read until it fails or ends: ('failed' | 'ended' | 'stopped', delivered)."""
        self._error = None
        try:
            container = open_stream(self.source, self.policy, tls_verify=self.camera.tls_verify)
        except Exception as exc:  # av.FFmpegError and OSError: report, never crash the thread
            self._error = f"could not open the stream: {self._describe(exc)}"
            return "failed", False
        try:
            return self._read(container)
        except Exception as exc:
            self.stats.count(FAILED)
            self._error = f"read error: {self._describe(exc)}"
            return "failed", False  # do not reset the backoff: this may repeat at every connect
        finally:
            container.close()

    def _describe(self, exc: Exception) -> str:
        """A short cause without the URL or file name FFmpeg's messages carry; credentials masked all the same."""
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        if "exit requested" in str(reason).lower():  # PyAV's interrupt: the open or read timeout
            reason = f"no answer within {self.policy.timeout:g} s"
        return redact(str(reason), self.camera.url)

    def _read(self, container: Any) -> tuple[str, bool]:
        if not container.streams.video:
            self.stats.count(FAILED)
            self._error = "the stream has no video"
            return "failed", False
        stream = container.streams.video[0]
        too_large = frame_pixels_ok(stream.codec_context.width, stream.codec_context.height, self.policy)
        if too_large:  # refused from the codec parameters, before a single frame is decoded
            self.stats.count(FAILED)
            self._error = too_large
            return "failed", False
        pace = self._playback_period(stream)
        period = 1.0 / self.camera.fps
        next_sample = next_frame = time.monotonic()
        delivered = False
        for frame in container.decode(stream):
            if self._stop.is_set():
                return "stopped", delivered
            if pace:
                delay = next_frame - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return "stopped", delivered
                next_frame = max(next_frame + pace, time.monotonic() - pace)
            if not delivered:
                delivered = True
                self.stats.set_status(Status.UP)
                log.info("camera %s: receiving frames from %s", self.camera.id, self.camera.masked_url)
            self.stats.frame_read()
            now = time.monotonic()
            if now < next_sample:
                continue
            next_sample = max(next_sample + period, now)
            too_large = frame_pixels_ok(frame.width, frame.height, self.policy)
            if too_large:  # the stream changed resolution: count it, never convert it
                self.stats.count(FAILED)
                self._error = too_large
                continue
            if self.slot.put(frame.to_ndarray(format="bgr24")):
                self.stats.count(DROPPED)
            self._on_frame()
        if self._stop.is_set():
            return "stopped", delivered
        if self.source.kind == "file" and delivered:
            return "ended", True
        self.stats.count(FAILED)
        self._error = "the stream stopped delivering frames"
        return "failed", delivered

    def _playback_period(self, stream: Any) -> float:
        """Seconds per frame for recordings (a local file, or a video over HTTP with a frame count),
        played in real time at their own rate; 0 for live streams (RTSP, MJPEG, devices), paced by their source."""
        if self.source.kind != "file" and not (self.source.kind == "network" and stream.frames > 0):
            return 0.0
        rate = float(stream.average_rate or 0)
        return 1.0 / (rate if 1.0 <= rate <= 240.0 else DEFAULT_FILE_FPS)

    def _discard_pending(self) -> None:
        """A sampled frame nobody took before the stream failed or stopped is dropped, not kept."""
        if self.slot.clear():
            self.stats.count(DROPPED)
