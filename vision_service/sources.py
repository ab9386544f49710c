"""The sources the service accepts frames from, and the one object that owns that set.

A *source* is an id that labels frames in metrics, drift windows and the API: ``upload`` (the
default of ``/v1/detect``), the ids in ``VISION_SOURCES`` (uploads that name one), and each
camera's id while the camera exists. Any other id a client sends is refused, never turned into
a label.

Camera ids come and go from other threads (the camera API, the shard refresh); routes read the
set on the event loop. The set is an immutable ``frozenset`` replaced under a lock, so a reader
never sees it half-changed and never waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from vision_service.core.config import UPLOAD_SOURCE


class Sources:
    """Accepted source ids: the fixed ones (``upload`` and ``VISION_SOURCES``) plus the current cameras.

    ``on_removed`` callbacks are told an id that stopped being a source (a removed camera whose
    id is not also a fixed source), so per-source state can go with it.
    """

    def __init__(self, configured: Iterable[str] = (), *, on_removed: Iterable[Callable[[str], None]] = ()) -> None:
        self.fixed = frozenset([UPLOAD_SOURCE, *configured])
        self._cameras: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._on_removed = list(on_removed)

    def __contains__(self, source: object) -> bool:
        return source in self.fixed or source in self._cameras

    def ids(self) -> list[str]:
        """Every accepted id, sorted."""
        return sorted(self.fixed | self._cameras)

    def add_camera(self, camera_id: str) -> None:
        with self._lock:
            self._cameras = self._cameras | {camera_id}

    def remove_camera(self, camera_id: str) -> None:
        with self._lock:
            if camera_id not in self._cameras:
                return
            self._cameras = self._cameras - {camera_id}
        if camera_id not in self.fixed:
            for callback in self._on_removed:
                callback(camera_id)
