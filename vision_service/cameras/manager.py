"""The set of cameras: load from the file, add, remove, list, and start/stop their threads.

Each enabled camera has a reader thread (:mod:`~vision_service.cameras.reader`); one scheduler
thread (:mod:`~vision_service.cameras.scheduler`) feeds all of them to the pipeline. A camera's id
is an accepted source (:class:`vision_service.sources.Sources`) while the camera exists. Removing
a camera stops its reader and removes its ``vision_camera_*`` series.

Persistence: with ``persist`` and a ``cameras_file``, every add and remove first rewrites the
YAML file atomically (temporary file + fsync + rename, see :func:`config.save_cameras`) and only
then changes the running set, so the file and the service never disagree. A failed write fails
the request and changes nothing. Comments in a rewritten file are not kept.

Sharding (``shard``, see :mod:`~vision_service.cameras.sharding`): every replica reads the same
camera file and runs only the cameras it owns. A refresh thread reads the member list and the file
again every ``refresh_seconds`` and starts or stops cameras to match, so cameras move when a
replica joins or leaves and a changed file (a Kubernetes ConfigMap) applies without a restart.
The API cannot add or remove cameras then (409 ``cameras_sharded``): the file is the one list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vision_service.cameras.config import (
    Camera,
    CameraConfigError,
    InvalidCamera,
    load_cameras,
    parse_camera,
    remove_stale_temporaries,
    save_cameras,
)
from vision_service.cameras.health import CameraHealth, HealthConfig
from vision_service.cameras.reader import Backoff, CameraReader, LatestFrame
from vision_service.cameras.scheduler import Feed, Scheduler
from vision_service.cameras.sharding import Shard, parse_shard
from vision_service.cameras.snapshot import annotated_jpeg
from vision_service.cameras.stats import CameraStats, CameraTelemetry, Status
from vision_service.cameras.stream import StreamPolicy, route_ffmpeg_log
from vision_service.cameras.url import LocalAccess
from vision_service.errors import ApiError, Reason
from vision_service.pipeline import Pipeline
from vision_service.sources import Sources

if TYPE_CHECKING:
    from vision_service.core.config import Settings

log = logging.getLogger(__name__)


@dataclass
class _Camera:
    camera: Camera | InvalidCamera
    stats: CameraStats
    slot: LatestFrame
    reader: CameraReader | None  # None while disabled or invalid

    @property
    def feed(self) -> Feed:
        return Feed(self.camera.id, self.slot, self.stats)


class CameraManager:
    """Owns the cameras and their threads. Call :meth:`start` once, :meth:`stop` at shutdown."""

    def __init__(
        self,
        pipeline: Pipeline,
        telemetry: CameraTelemetry,
        sources: Sources,
        *,
        cameras_file: Path | None = None,
        persist: bool = False,
        local_dirs: Sequence[Path] = (),
        max_cameras: int = 16,
        timeout: float = 5.0,
        max_pixels: int = 40_000_000,
        ca_file: Path | None = None,
        reconnect_min: float = 0.5,
        reconnect_max: float = 15.0,
        shard: Shard | None = None,
        refresh_seconds: float = 10.0,
        health: HealthConfig | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.health = health or HealthConfig()
        self.sources = sources
        self.cameras_file = cameras_file
        self.persist = persist
        # Cameras added over the API may read local video files in these folders only.
        self.api_local = LocalAccess.within(local_dirs)
        self.max_cameras = max_cameras
        self.policy = StreamPolicy(timeout, max_pixels, ca_file or StreamPolicy.default_ca_file())
        self.reconnect_min = reconnect_min
        self.reconnect_max = max(reconnect_max, reconnect_min)
        self._cameras: dict[str, _Camera] = {}
        self._feeds: tuple[Feed, ...] = ()
        self._lock = threading.Lock()
        self.scheduler = Scheduler(pipeline, lambda: self._feeds)
        self.shard = shard
        self.refresh_seconds = refresh_seconds
        self.members: frozenset[str] = frozenset()
        self._configured: list[Camera | InvalidCamera] = []  # sharded: every camera of the file, owned or not
        self._file_stamp: tuple[int, int] | None = None
        self._refresher: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, pipeline: Pipeline, telemetry: CameraTelemetry, sources: Sources
    ) -> CameraManager:
        return cls(
            pipeline,
            telemetry,
            sources,
            cameras_file=settings.cameras_file,
            persist=settings.cameras_persist,
            local_dirs=settings.local_source_dirs,
            max_cameras=settings.max_cameras,
            timeout=settings.camera_timeout_seconds,
            max_pixels=settings.max_image_pixels,
            ca_file=settings.camera_ca_file,
            reconnect_min=settings.camera_reconnect_min_seconds,
            reconnect_max=settings.camera_reconnect_max_seconds,
            shard=parse_shard(settings.shard_id or "", settings.shard_peers) if settings.shard_peers else None,
            refresh_seconds=settings.shard_refresh_seconds,
            health=HealthConfig(
                min_seconds=settings.tamper_min_seconds,
                reference_frames=settings.tamper_reference_frames,
                analysis_size=settings.analysis_size,
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Read the camera file (if any) and start every enabled camera and the scheduler.

        Raises :class:`CameraConfigError` (a message safe to log) when the file cannot be read as
        a list of cameras; a camera that cannot run as written is listed invalid, with its error.
        """
        route_ffmpeg_log()
        cameras: list[Camera | InvalidCamera] = []
        if self.cameras_file is not None:
            if self.persist:
                for leftover in remove_stale_temporaries(self.cameras_file):
                    log.warning("removed %s, left by an interrupted write of the camera file", leftover.name)
            if self.cameras_file.exists() or not self.persist:
                self._file_stamp = self._stamp()
                cameras = load_cameras(self.cameras_file)
            if self.shard is None and len(cameras) > self.max_cameras:
                raise CameraConfigError(
                    f"camera file {self.cameras_file}: {len(cameras)} cameras, more than max_cameras={self.max_cameras}"
                )
        self._stopping.clear()
        if self.shard is not None:
            self._configured = cameras
            self.refresh()
            self._refresher = threading.Thread(target=self._refresh_loop, name="camera-shard-refresh", daemon=True)
            self._refresher.start()
            return
        with self._lock:
            for camera in cameras:
                self._start(camera)
        if cameras:
            log.info("started %d camera(s) from %s", len(cameras), self.cameras_file)

    def stop(self) -> None:
        """Stop every reader and the scheduler and drop the cameras (the file is not touched).

        A later :meth:`start` reads the file again.
        """
        self._stopping.set()
        if self._refresher is not None:
            self._refresher.join(timeout=self.policy.timeout + 5)
            self._refresher = None
        with self._lock:
            entries = list(self._cameras.values())
            self._cameras.clear()
            self._feeds = ()
            for entry in entries:
                self.sources.remove_camera(entry.camera.id)
        for entry in entries:
            if entry.reader is not None:
                entry.reader.stop()
        self.scheduler.stop(timeout=self.policy.timeout + 5)
        for entry in entries:
            entry.stats.close()
            if entry.reader is not None:
                entry.reader.join(timeout=2 * self.policy.timeout + 1)

    # -- changes -----------------------------------------------------------------------------

    def parse(self, data: object) -> Camera:
        """Validate a camera definition from a client; raise ``invalid_camera`` with a safe detail."""
        try:
            return parse_camera(data, local=self.api_local)
        except CameraConfigError as exc:
            raise ApiError(Reason.INVALID_CAMERA, str(exc)) from None

    def add(self, data: object) -> dict[str, Any]:
        """Add and start a camera (``data`` is a mapping or a :class:`Camera`); return its view."""
        self._refuse_when_sharded()
        camera = data if isinstance(data, Camera) else self.parse(data)
        with self._lock:
            if camera.id in self._cameras:
                raise ApiError(Reason.CAMERA_EXISTS, f"camera {camera.id!r} already exists")
            if len(self._cameras) >= self.max_cameras:
                raise ApiError(Reason.TOO_MANY_CAMERAS, f"at most {self.max_cameras} cameras (VISION_MAX_CAMERAS)")
            self._save([*(c.camera for c in self._cameras.values()), camera])
            entry = self._start(camera)
        log.info("camera %s added: %s at %g fps", camera.id, camera.masked_url, camera.fps)
        return self._view(entry)

    def remove(self, camera_id: str) -> None:
        """Stop a camera, forget it as a source and remove its series."""
        with self._lock:
            entry = self._cameras.get(camera_id)
            if entry is None:
                raise self._not_found(camera_id)
            self._refuse_when_sharded()
            self._save([c.camera for c in self._cameras.values() if c.camera.id != camera_id])
            self._forget(camera_id)
        self._stop_entries([entry])

    def _forget(self, camera_id: str) -> None:
        """Drop a camera from the running set and the accepted sources; the caller holds the lock."""
        del self._cameras[camera_id]
        self._feeds = tuple(c.feed for c in self._cameras.values() if c.reader is not None)
        self.sources.remove_camera(camera_id)

    def _stop_entries(self, entries: list[_Camera]) -> None:
        """Stop forgotten cameras' readers and remove their series (outside the lock: it may wait)."""
        for entry in entries:
            if entry.reader is not None:
                entry.reader.stop()  # all at once: they end in parallel
            entry.stats.close()  # from here on, late events of this camera are ignored
        for entry in entries:
            if entry.reader is not None and not entry.reader.join(timeout=2 * self.policy.timeout + 1):
                log.warning("camera %s: reader still busy after removal; it ends on its own", entry.camera.id)
            log.info("camera %s removed", entry.camera.id)

    def _start(self, camera: Camera | InvalidCamera) -> _Camera:
        """Register and start ``camera``; the caller holds the lock."""
        health = CameraHealth(self.health)
        if isinstance(camera, InvalidCamera):
            log.error("camera %s cannot run as written, listed as invalid: %s", camera.id, camera.error)
            stats = CameraStats(camera.id, self.telemetry, status=Status.INVALID, error=camera.error, health=health)
        else:
            status = Status.CONNECTING if camera.enabled else Status.DISABLED
            stats = CameraStats(camera.id, self.telemetry, status=status, health=health)
        slot = LatestFrame()
        reader = None
        if isinstance(camera, Camera) and camera.enabled:
            reader = CameraReader(
                camera,
                slot=slot,
                stats=stats,
                on_frame=self.scheduler.wake,
                policy=self.policy,
                backoff=Backoff(self.reconnect_min, self.reconnect_max),
            )
        entry = _Camera(camera, stats, slot, reader)
        self._cameras[camera.id] = entry
        self.sources.add_camera(camera.id)
        self._feeds = tuple(c.feed for c in self._cameras.values() if c.reader is not None)
        if reader is not None:
            reader.start()
            self.scheduler.start()  # with the first camera: a service without cameras runs no scheduler
        return entry

    def _refuse_when_sharded(self) -> None:
        if self.shard is not None:
            raise ApiError(
                Reason.CAMERAS_SHARDED,
                "cameras are sharded across replicas: edit the shared camera file (VISION_CAMERAS_FILE) instead",
            )

    # -- sharding ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Sharded: read the member list and (when it changed) the camera file, then run what this replica owns."""
        assert self.shard is not None
        try:
            self.members = self.shard.members()
        except (OSError, ValueError) as exc:
            log.warning("shard members (%s) unreadable, keeping the last list: %s", self.shard.peers, exc)
        if self.cameras_file is not None and (stamp := self._stamp()) != self._file_stamp:
            try:
                self._configured = load_cameras(self.cameras_file)
                self._file_stamp = stamp
                log.info("camera file %s read: %d camera(s)", self.cameras_file, len(self._configured))
            except (OSError, CameraConfigError) as exc:
                log.error("camera file %s invalid, keeping the last list: %s", self.cameras_file, exc)
        owned = [c for c in self._configured if self.shard.owns(c.id, self.members)]
        self._apply(owned[: self.max_cameras])
        if len(owned) > self.max_cameras:
            log.error("this replica owns %d cameras, runs the first %d (max_cameras)", len(owned), self.max_cameras)
        self.telemetry.shard_changed(len(self.members), min(len(owned), self.max_cameras))

    def _apply(self, wanted: list[Camera | InvalidCamera]) -> None:
        """Start the cameras in ``wanted`` not running yet; stop those not wanted or defined differently."""
        stale: list[_Camera] = []
        with self._lock:
            if self._stopping.is_set():
                return
            by_id = {c.id: c for c in wanted}
            for camera_id, entry in list(self._cameras.items()):
                if by_id.get(camera_id) != entry.camera:
                    self._forget(camera_id)
                    stale.append(entry)
            started = [self._start(c) for c in wanted if c.id not in self._cameras]
        self._stop_entries(stale)
        if stale or started:
            log.info(
                "shard %s of %d: now reading %d camera(s) (+%d, -%d)",
                self.shard.self_id if self.shard else "-",
                len(self.members),
                len(wanted),
                len(started),
                len(stale),
            )
            self.scheduler.wake()

    def _refresh_loop(self) -> None:
        while not self._stopping.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # a refresh must never end the thread
                log.exception("camera shard refresh failed")

    def _stamp(self) -> tuple[int, int] | None:
        assert self.cameras_file is not None
        try:
            st = self.cameras_file.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _save(self, cameras: list[Camera | InvalidCamera]) -> None:
        if not self.persist or self.cameras_file is None:
            return
        try:
            save_cameras(self.cameras_file, cameras)
        except OSError as exc:
            log.error("could not write camera file %s: %s", self.cameras_file, exc.strerror or exc)
            raise

    # -- reading -----------------------------------------------------------------------------

    def shard_view(self) -> dict[str, Any] | None:
        """Sharded: this replica's id, the members it sees, and how many cameras it owns of how many."""
        if self.shard is None:
            return None
        with self._lock:
            running = len(self._cameras)
        return {
            "id": self.shard.self_id,
            "peers": self.shard.peers,
            "members": sorted(self.members),
            "cameras_owned": running,
            "cameras_configured": len(self._configured),
        }

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._cameras)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._cameras.values())
        return [self._view(e) for e in entries]

    def get(self, camera_id: str) -> dict[str, Any]:
        return self._view(self._entry(camera_id))

    def reset_reference(self, camera_id: str) -> None:
        """Forget the camera's reference scenes and tampering state (after a PTZ move); they are learned again."""
        self._entry(camera_id).stats.reset_health()
        log.info("camera %s: reference scene reset", camera_id)

    def snapshot(self, camera_id: str) -> bytes:
        """The last processed frame of the camera as a JPEG with its detections drawn."""
        entry = self._entry(camera_id)
        last = entry.stats.last_frame()
        if last is None:
            raise ApiError(
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
    def _not_found(camera_id: str) -> ApiError:
        return ApiError(Reason.CAMERA_NOT_FOUND, f"no camera {camera_id[:64]!r}")

    @staticmethod
    def _view(entry: _Camera) -> dict[str, Any]:
        return {**entry.camera.public(), **entry.stats.view()}
