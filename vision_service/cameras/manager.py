"""The set of cameras: load from the file, add, remove, list, and start/stop their threads.

Each enabled camera has a reader thread (:mod:`~vision_service.cameras.reader`); one scheduler
thread (:mod:`~vision_service.cameras.scheduler`) feeds all of them to the pipeline. A camera's id
becomes an accepted ``source`` while it exists. Removing a camera stops its reader and removes
its ``vision_camera_*`` series.

Persistence: with ``persist`` and a ``cameras_file``, every add and remove first rewrites the
YAML file atomically (temporary file + fsync + rename, see :func:`config.save_cameras`) and only
then changes the running set, so the file and the service never disagree. A failed write fails
the request and changes nothing. Comments in a rewritten file are not kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision_service.cameras.config import Camera, CameraConfigError, load_cameras, parse_camera, save_cameras
from vision_service.cameras.reader import Backoff, CameraReader, LatestFrame, OpenCapture, open_capture
from vision_service.cameras.scheduler import Feed, Scheduler
from vision_service.cameras.snapshot import annotated_jpeg
from vision_service.cameras.stats import CameraStats, CameraTelemetry, Status
from vision_service.errors import InputError, Reason
from vision_service.pipeline import Pipeline

if TYPE_CHECKING:
    from vision_service.core.config import Settings

log = logging.getLogger(__name__)


@dataclass
class _Camera:
    camera: Camera
    stats: CameraStats
    slot: LatestFrame
    reader: CameraReader | None  # None while disabled

    @property
    def feed(self) -> Feed:
        return Feed(self.camera.id, self.slot, self.stats)


class CameraManager:
    """Owns the cameras and their threads. Call :meth:`start` once, :meth:`stop` at shutdown."""

    def __init__(
        self,
        pipeline: Pipeline,
        telemetry: CameraTelemetry,
        sources: set[str],
        *,
        reserved_sources: Iterable[str] = (),
        cameras_file: Path | None = None,
        persist: bool = False,
        allow_local: bool = True,
        max_cameras: int = 16,
        timeout: float = 5.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 15.0,
        open_capture: OpenCapture = open_capture,
    ) -> None:
        self.telemetry = telemetry
        self.sources = sources
        self.reserved_sources = frozenset(reserved_sources)
        self.cameras_file = cameras_file
        self.persist = persist
        self.allow_local = allow_local
        self.max_cameras = max_cameras
        self.timeout = timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = max(reconnect_max, reconnect_min)
        self._open_capture = open_capture
        self._cameras: dict[str, _Camera] = {}
        self._feeds: tuple[Feed, ...] = ()
        self._lock = threading.Lock()
        self.scheduler = Scheduler(pipeline, lambda: self._feeds)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, pipeline: Pipeline, telemetry: CameraTelemetry, sources: set[str]
    ) -> CameraManager:
        return cls(
            pipeline,
            telemetry,
            sources,
            reserved_sources=settings.known_sources,
            cameras_file=settings.cameras_file,
            persist=settings.cameras_persist,
            allow_local=settings.allow_local_sources,
            max_cameras=settings.max_cameras,
            timeout=settings.camera_timeout_seconds,
            reconnect_min=settings.camera_reconnect_min_seconds,
            reconnect_max=settings.camera_reconnect_max_seconds,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Read the camera file (if any) and start every enabled camera and the scheduler.

        Raises :class:`CameraConfigError` (a message safe to log) when the file is invalid.
        """
        cameras: list[Camera] = []
        if self.cameras_file is not None:
            if self.cameras_file.exists() or not self.persist:
                cameras = load_cameras(self.cameras_file, allow_local=self.allow_local)
            if len(cameras) > self.max_cameras:
                raise CameraConfigError(
                    f"camera file {self.cameras_file}: {len(cameras)} cameras, more than max_cameras={self.max_cameras}"
                )
        self.scheduler.start()
        with self._lock:
            for camera in cameras:
                self._start(camera)
        if cameras:
            log.info("started %d camera(s) from %s", len(cameras), self.cameras_file)

    def stop(self) -> None:
        """Stop every reader and the scheduler and drop the cameras (the file is not touched).

        A later :meth:`start` reads the file again.
        """
        with self._lock:
            entries = list(self._cameras.values())
            self._cameras.clear()
            self._feeds = ()
            for entry in entries:
                if entry.camera.id not in self.reserved_sources:
                    self.sources.discard(entry.camera.id)
        for entry in entries:
            if entry.reader is not None:
                entry.reader.stop()
        self.scheduler.stop(timeout=self.timeout + 5)
        for entry in entries:
            entry.stats.close()
            if entry.reader is not None:
                entry.reader.join(timeout=2 * self.timeout + 1)

    # -- changes -----------------------------------------------------------------------------

    def parse(self, data: object) -> Camera:
        """Validate a camera definition from a client; raise ``invalid_camera`` with a safe detail."""
        try:
            return parse_camera(data, allow_local=self.allow_local)
        except CameraConfigError as exc:
            raise InputError(Reason.INVALID_CAMERA, str(exc)) from None

    def add(self, data: object) -> dict[str, Any]:
        """Add and start a camera (``data`` is a mapping or a :class:`Camera`); return its view."""
        camera = data if isinstance(data, Camera) else self.parse(data)
        with self._lock:
            if camera.id in self._cameras:
                raise InputError(Reason.CAMERA_EXISTS, f"camera {camera.id!r} already exists")
            if len(self._cameras) >= self.max_cameras:
                raise InputError(Reason.TOO_MANY_CAMERAS, f"at most {self.max_cameras} cameras (VISION_MAX_CAMERAS)")
            self._save([*(c.camera for c in self._cameras.values()), camera])
            entry = self._start(camera)
        self.scheduler.start()
        log.info("camera %s added: %s at %g fps", camera.id, camera.masked_url, camera.fps)
        return self._view(entry)

    def remove(self, camera_id: str) -> None:
        """Stop a camera, forget it as a source and remove its series."""
        with self._lock:
            entry = self._cameras.get(camera_id)
            if entry is None:
                raise self._not_found(camera_id)
            self._save([c.camera for c in self._cameras.values() if c.camera.id != camera_id])
            del self._cameras[camera_id]
            self._feeds = tuple(c.feed for c in self._cameras.values() if c.reader is not None)
            if camera_id not in self.reserved_sources:
                self.sources.discard(camera_id)
        if entry.reader is not None:
            entry.reader.stop()
        entry.stats.close()  # from here on, late events of this camera are ignored
        if entry.reader is not None and not entry.reader.join(timeout=2 * self.timeout + 1):
            log.warning("camera %s: reader still busy after removal; it ends on its own", camera_id)
        log.info("camera %s removed", camera_id)

    def _start(self, camera: Camera) -> _Camera:
        """Register and start ``camera``; the caller holds the lock."""
        status = Status.CONNECTING if camera.enabled else Status.DISABLED
        stats = CameraStats(camera.id, self.telemetry, status=status)
        slot = LatestFrame()
        reader = None
        if camera.enabled:
            reader = CameraReader(
                camera,
                slot=slot,
                stats=stats,
                on_frame=self.scheduler.wake,
                timeout=self.timeout,
                backoff=Backoff(self.reconnect_min, self.reconnect_max),
                open_capture=self._open_capture,
            )
        entry = _Camera(camera, stats, slot, reader)
        self._cameras[camera.id] = entry
        self.sources.add(camera.id)
        self._feeds = tuple(c.feed for c in self._cameras.values() if c.reader is not None)
        if reader is not None:
            reader.start()
        return entry

    def _save(self, cameras: list[Camera]) -> None:
        if not self.persist or self.cameras_file is None:
            return
        try:
            save_cameras(self.cameras_file, cameras)
        except OSError as exc:
            log.error("could not write camera file %s: %s", self.cameras_file, exc.strerror or exc)
            raise

    # -- reading -----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._cameras)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._cameras.values())
        return [self._view(e) for e in entries]

    def get(self, camera_id: str) -> dict[str, Any]:
        return self._view(self._entry(camera_id))

    def stats(self, camera_id: str) -> CameraStats:
        return self._entry(camera_id).stats

    def snapshot(self, camera_id: str) -> bytes:
        """The last processed frame of the camera as a JPEG with its detections drawn."""
        entry = self._entry(camera_id)
        last = entry.stats.last_frame()
        if last is None:
            raise InputError(
                Reason.NO_FRAME, f"camera {camera_id!r} has no processed frame yet (status: {entry.stats.status.value})"
            )
        pixels, measurement = last
        return annotated_jpeg(pixels, measurement.detections)

    def _entry(self, camera_id: str) -> _Camera:
        with self._lock:
            entry = self._cameras.get(camera_id)
        if entry is None:
            raise self._not_found(camera_id)
        return entry

    @staticmethod
    def _not_found(camera_id: str) -> InputError:
        return InputError(Reason.CAMERA_NOT_FOUND, f"no camera {camera_id[:64]!r}")

    @staticmethod
    def _view(entry: _Camera) -> dict[str, Any]:
        return {**entry.camera.public(), **entry.stats.view()}
