"""Per-camera status and counters, and the telemetry they are reported to.

Readers and the scheduler report events here; :class:`CameraStats` keeps what the API shows and
forwards each event to a :class:`CameraTelemetry` (``vision_service.metrics.Metrics`` in the
service). After :meth:`CameraStats.close` nothing more is forwarded, so a thread that finishes late
cannot re-create the series of a removed camera.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from vision_service.measurement import Measurement

# Frame outcomes, the values of the ``outcome`` label.
PROCESSED = "processed"
DROPPED = "dropped"
FAILED = "failed"
OUTCOMES = (PROCESSED, DROPPED, FAILED)
# vision_camera_fps: frames processed over this many recent seconds.
FPS_WINDOW_SECONDS = 10.0


class CameraTelemetry(Protocol):
    """Where camera events go; the service's ``Metrics`` implements it."""

    def camera_added(self, camera: str, fps: Callable[[], float]) -> None: ...

    def camera_removed(self, camera: str) -> None: ...

    def camera_status(self, camera: str, up: bool) -> None: ...

    def camera_frame(self, camera: str, outcome: str) -> None: ...

    def camera_reconnect(self, camera: str) -> None: ...

    def camera_frame_read(self, camera: str, timestamp: float) -> None: ...

    def shard_changed(self, members: int, cameras: int) -> None: ...


class Status(StrEnum):
    CONNECTING = "connecting"  # first open in progress
    UP = "up"  # frames arriving
    RECONNECTING = "reconnecting"  # the stream failed; waiting to reopen, or reopening
    ENDED = "ended"  # a local file reached its end (loop: false)
    DISABLED = "disabled"  # configured with enabled: false
    INVALID = "invalid"  # the camera file's entry cannot run as written (see ``error``)
    STOPPED = "stopped"  # removed or the service is shutting down


class CameraStats:
    """Thread-safe state of one camera, forwarded to telemetry until closed."""

    def __init__(
        self, camera: str, telemetry: CameraTelemetry, *, status: Status = Status.CONNECTING, error: str | None = None
    ) -> None:
        self.camera = camera
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._closed = False
        self.status = status
        self.error = error
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.reconnects = 0
        self.last_frame_at: float | None = None  # wall time of the last frame read from the camera
        self._processed_at: deque[float] = deque(maxlen=int(FPS_WINDOW_SECONDS * 64))
        self.last_measurement: Measurement | None = None
        self.last_pixels: np.ndarray | None = None
        self.last_processed_at: float | None = None
        self._started = time.monotonic()
        telemetry.camera_added(camera, self.fps)

    def set_status(self, status: Status, error: str | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self.status = status
            if error is not None or status == Status.UP:
                self.error = error
            self._telemetry.camera_status(self.camera, status == Status.UP)

    def frame_read(self) -> None:
        now = time.time()
        with self._lock:
            if self._closed:
                return
            self.last_frame_at = now
            self._telemetry.camera_frame_read(self.camera, now)

    def count(self, outcome: str) -> None:
        with self._lock:
            if self._closed:
                return
            self.counts[outcome] += 1
            self._telemetry.camera_frame(self.camera, outcome)

    def reconnect(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.reconnects += 1
            self._telemetry.camera_reconnect(self.camera)

    def processed(self, pixels: np.ndarray, measurement: Measurement) -> None:
        """A frame went through the pipeline: keep it for the snapshot and count it."""
        with self._lock:
            if self._closed:
                return
            self.counts[PROCESSED] += 1
            self._processed_at.append(time.monotonic())
            self.last_pixels = pixels
            self.last_measurement = measurement
            self.last_processed_at = time.time()
            self._telemetry.camera_frame(self.camera, PROCESSED)

    def fps(self) -> float:
        """Frames processed per second over the last :data:`FPS_WINDOW_SECONDS` (less while younger)."""
        now = time.monotonic()
        with self._lock:
            recent = sum(1 for t in self._processed_at if now - t <= FPS_WINDOW_SECONDS)
        window = min(FPS_WINDOW_SECONDS, max(now - self._started, 1.0))
        return recent / window

    def close(self) -> None:
        """Stop forwarding and remove this camera's series."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.status = Status.STOPPED
            self.last_pixels = None
            self._telemetry.camera_removed(self.camera)

    def last_frame(self) -> tuple[np.ndarray, Measurement] | None:
        with self._lock:
            if self.last_pixels is None or self.last_measurement is None:
                return None
            return self.last_pixels, self.last_measurement

    def view(self) -> dict[str, Any]:
        """Status and counters as the API shows them."""
        with self._lock:
            m = self.last_measurement
            last = None
            if m is not None:
                last = {
                    "processed_at": self.last_processed_at,
                    "quality": m.quality.as_dict(),
                    "brightness_band": m.brightness_band,
                    "detections": len(m.detections),
                    "image": {"width": m.width, "height": m.height},
                }
            view = {
                "status": self.status.value,
                "up": self.status == Status.UP,
                "error": self.error,
                "frames": dict(self.counts),
                "reconnects": self.reconnects,
                "last_frame_at": self.last_frame_at,
                "last": last,
            }
        view["measured_fps"] = round(self.fps(), 3)
        return view
