"""Where kept frames live: in memory, or on disk under the operator's directory; bounded either way.

Both stores keep the same index (samples by source, the slot each holds) and enforce the same
limits on every :meth:`EvidenceStore.put`, before anything is written:

* **slots**: a new sample takes over its slots; a sample left holding no slot is deleted, so a
  source never has more than :data:`vision_service.evidence.rules.SLOTS_PER_SOURCE` samples;
* **age**: samples older than ``max_age_seconds`` are deleted (also by :meth:`EvidenceStore.prune`,
  which the writer thread calls while idle), and never listed;
* **size**: samples are deleted until the new one fits under ``max_bytes``, counting each sample
  as its JPEG plus its JSON record: the oldest first, but those holding a slot of a *lasting* kind
  (``lasting_kinds``: the keeper's condition onsets, which no later frame can replace) only when
  no other is left. Deletion happens first, so the total never exceeds the cap, not even while a
  file is being written.

:class:`DiskStore` layout: ``<dir>/<source>/<id>.jpg`` and ``<id>.json`` (written to a temporary
file and renamed, so a reader never sees half a file). At start it reads back the records it
finds (a later sample wins a slot claimed twice), deletes its own leftovers (temporary files, a
JPEG without its record and the reverse) and applies the limits. It touches no file whose name
is not one it writes. :func:`read_samples` lists a store directory without opening it for
writing (``vision-service export --store``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Required, TypedDict, Unpack

from vision_service.core.config import SOURCE_ID_PATTERN
from vision_service.evidence.sample import SAMPLE_ID, Sample, SampleError

log = logging.getLogger(__name__)


class StoreLimits(TypedDict, total=False):
    """The keyword arguments of :class:`EvidenceStore`, for the stores that pass them on."""

    max_bytes: Required[int]
    max_age_seconds: Required[float]
    lasting_kinds: Iterable[str]
    clock: Callable[[], float]


class EvidenceStore:
    """The index and the limits; subclasses say where the bytes go. Thread-safe."""

    def __init__(
        self,
        *,
        max_bytes: int,
        max_age_seconds: float,
        lasting_kinds: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 1 or max_age_seconds <= 0:
            raise ValueError("the evidence store needs max_bytes >= 1 and max_age_seconds > 0")
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.lasting_kinds = frozenset(lasting_kinds)
        self.clock = clock
        self._lock = threading.Lock()
        self._samples: dict[str, dict[str, Sample]] = {}  # source -> id -> sample (slots: those it holds now)
        self._slots: dict[tuple[str, str], str] = {}  # (source, slot) -> sample id
        self._sizes: dict[str, int] = {}  # sample id -> bytes counted against the cap
        self.total_bytes = 0
        self.evicted = 0  # samples deleted to stay under the size cap
        self.expired = 0  # samples deleted for their age

    # -- where the bytes go (subclasses) ------------------------------------------------------------

    def _write(self, sample: Sample, jpeg: bytes, record: bytes) -> None:
        raise NotImplementedError

    def _delete(self, sample: Sample) -> None:
        raise NotImplementedError

    def _read(self, sample: Sample) -> bytes | None:
        raise NotImplementedError

    # -- writing ------------------------------------------------------------------------------------

    def put(self, sample: Sample, jpeg: bytes) -> bool:
        """Store ``sample`` with its JPEG in the slots it names; False when it alone exceeds the cap."""
        sample = replace(sample, bytes=len(jpeg))
        record = _record_bytes(sample)
        size = len(jpeg) + len(record)
        if size > self.max_bytes:
            log.warning("evidence frame of %s (%d bytes) is larger than the whole cap", sample.source, size)
            return False
        with self._lock:
            self._prune_locked(self.clock())
            for slot in sample.slots:
                previous = self._slots.get((sample.source, slot))
                if previous is not None:
                    self._release_locked(sample.source, previous, slot)
            while self.total_bytes + size > self.max_bytes and self._sizes:
                self._evict_oldest_locked()
            self._write(sample, jpeg, record)
            self._index_locked(sample, size)
        return True

    def _index_locked(self, sample: Sample, size: int) -> None:
        self._samples.setdefault(sample.source, {})[sample.id] = sample
        for slot in sample.slots:
            self._slots[(sample.source, slot)] = sample.id
        self._sizes[sample.id] = size
        self.total_bytes += size

    def _release_locked(self, source: str, sample_id: str, slot: str) -> None:
        """``sample_id`` gives up ``slot``; deleted when it holds no slot any more."""
        sample = self._samples.get(source, {}).get(sample_id)
        self._slots.pop((source, slot), None)
        if sample is None:
            return
        left = tuple(s for s in sample.slots if s != slot)
        if left:
            self._samples[source][sample_id] = replace(sample, slots=left)
        else:
            self._remove_locked(sample)

    def _remove_locked(self, sample: Sample) -> None:
        by_id = self._samples.get(sample.source, {})
        current = by_id.pop(sample.id, sample)
        if not by_id:
            self._samples.pop(sample.source, None)
        for slot in current.slots:
            if self._slots.get((sample.source, slot)) == sample.id:
                del self._slots[(sample.source, slot)]
        self.total_bytes -= self._sizes.pop(sample.id, 0)
        try:
            self._delete(current)
        except OSError as exc:
            log.error("could not delete evidence frame %s of %s: %s", sample.id, sample.source, exc)

    def _evict_oldest_locked(self) -> None:
        """Delete the oldest sample, those holding a lasting kind last."""
        victim = min(
            (s for by_id in self._samples.values() for s in by_id.values()),
            key=lambda s: (bool(self.lasting_kinds.intersection(s.kinds)), s.time),
        )
        self._remove_locked(victim)
        self.evicted += 1

    def prune(self) -> int:
        """Delete every sample older than the age limit; how many went."""
        with self._lock:
            return self._prune_locked(self.clock())

    def _prune_locked(self, now: float) -> int:
        limit = now - self.max_age_seconds
        old = [s for by_id in self._samples.values() for s in by_id.values() if s.time < limit]
        for sample in old:
            self._remove_locked(sample)
        self.expired += len(old)
        return len(old)

    # -- reading ------------------------------------------------------------------------------------

    def samples(self, source: str) -> list[Sample]:
        """The samples of ``source`` within the age limit, newest first (``slots``: those they hold now)."""
        limit = self.clock() - self.max_age_seconds
        with self._lock:
            found = [s for s in self._samples.get(source, {}).values() if s.time >= limit]
        return sorted(found, key=lambda s: s.time, reverse=True)

    def get(self, source: str, sample_id: str) -> Sample | None:
        if not SAMPLE_ID.match(sample_id):
            return None
        with self._lock:
            sample = self._samples.get(source, {}).get(sample_id)
        if sample is None or sample.time < self.clock() - self.max_age_seconds:
            return None
        return sample

    def image(self, source: str, sample_id: str) -> bytes | None:
        """The JPEG of a sample, None when there is no such sample (any more)."""
        sample = self.get(source, sample_id)
        return None if sample is None else self._read(sample)

    def sources(self) -> list[str]:
        with self._lock:
            return sorted(self._samples)

    def count(self) -> int:
        with self._lock:
            return len(self._sizes)


def _record_bytes(sample: Sample) -> bytes:
    return json.dumps(sample.to_json(), separators=(",", ":")).encode() + b"\n"


class MemoryStore(EvidenceStore):
    """JPEGs in a dictionary; gone with the process."""

    def __init__(self, **limits: Unpack[StoreLimits]) -> None:
        super().__init__(**limits)
        self._images: dict[str, bytes] = {}

    def _write(self, sample: Sample, jpeg: bytes, record: bytes) -> None:
        self._images[sample.id] = jpeg

    def _delete(self, sample: Sample) -> None:
        self._images.pop(sample.id, None)

    def _read(self, sample: Sample) -> bytes | None:
        return self._images.get(sample.id)


class DiskStore(EvidenceStore):
    """JPEG and JSON files under ``directory``, one folder per source; survives restarts."""

    def __init__(self, directory: Path, **limits: Unpack[StoreLimits]) -> None:
        super().__init__(**limits)
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def _paths(self, sample: Sample) -> tuple[Path, Path]:
        # Both parts were validated by Sample (source id pattern, 16 hex digits): no path comes from a client.
        folder = self.directory / sample.source
        return folder / f"{sample.id}.jpg", folder / f"{sample.id}.json"

    def _write(self, sample: Sample, jpeg: bytes, record: bytes) -> None:
        image, meta = self._paths(sample)
        image.parent.mkdir(exist_ok=True)
        _atomic_write(image, jpeg)
        try:
            _atomic_write(meta, record)
        except OSError:
            image.unlink(missing_ok=True)
            raise

    def _delete(self, sample: Sample) -> None:
        for path in self._paths(sample):
            path.unlink(missing_ok=True)

    def _read(self, sample: Sample) -> bytes | None:
        try:
            return self._paths(sample)[0].read_bytes()
        except FileNotFoundError:
            return None

    def _load(self) -> None:
        """Index the records found, newest taking a slot claimed twice; delete leftovers; apply the limits."""
        found = sorted(_scan(self.directory, cleanup=True), key=lambda item: item[0].time)
        with self._lock:
            for sample, size in found:
                for slot in sample.slots:
                    previous = self._slots.get((sample.source, slot))
                    if previous is not None:
                        self._release_locked(sample.source, previous, slot)
                self._index_locked(sample, size)
            self._prune_locked(self.clock())
            while self.total_bytes > self.max_bytes and self._sizes:
                self._evict_oldest_locked()
        if found:
            log.info(
                "evidence store %s: %d frames, %d bytes kept from before",
                self.directory,
                self.count(),
                self.total_bytes,
            )


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _scan(directory: Path, *, cleanup: bool) -> Iterator[tuple[Sample, int]]:
    """Each valid sample record under ``directory`` with its size (JPEG + JSON); with ``cleanup``,
    delete this store's own leftovers: temporary files, and a JPEG or record without its partner."""
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and SOURCE_ID_PATTERN.match(p.name)):
        names = {p.name for p in folder.iterdir()}
        for name in sorted(names):
            stem, _, suffix = name.partition(".")
            path = folder / name
            if name.startswith(".") and name.endswith(".tmp"):
                if cleanup:
                    path.unlink(missing_ok=True)
                continue
            if not SAMPLE_ID.match(stem) or suffix not in ("jpg", "json"):
                continue  # not ours: leave it alone
            partner = f"{stem}.json" if suffix == "jpg" else f"{stem}.jpg"
            if partner not in names:
                if cleanup:
                    path.unlink(missing_ok=True)
                continue
            if suffix == "jpg":
                continue
            try:
                record = path.read_bytes()
                sample = Sample.from_json(json.loads(record))
                jpeg_size = (folder / partner).stat().st_size
            except (OSError, ValueError, SampleError) as exc:
                log.warning("ignoring evidence record %s: %s", path, exc)
                continue
            if sample.id != stem or sample.source != folder.name:
                log.warning("ignoring evidence record %s: it names %s/%s", path, sample.source, sample.id)
                continue
            yield sample, jpeg_size + len(record)


def read_samples(directory: Path) -> list[Sample]:
    """Every sample record of a disk store's directory, oldest first, without changing anything."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no evidence directory {directory}")
    return sorted((sample for sample, _ in _scan(directory, cleanup=False)), key=lambda s: s.time)


def jpeg_path(directory: Path, sample: Sample) -> Path:
    """Where a disk store keeps the JPEG of ``sample``."""
    return directory / sample.source / f"{sample.id}.jpg"
