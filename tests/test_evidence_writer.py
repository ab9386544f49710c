"""The evidence writer: encoding and storing off the recording thread, a bounded queue, pruning while idle."""

from __future__ import annotations

import cv2
import numpy as np

from tests.conftest import Clock
from tests.infra import wait_for
from tests.streams import photographs
from tests.test_evidence_store import sample
from vision_service.evidence.store import MemoryStore
from vision_service.evidence.writer import EvidenceWriter


def small_photo() -> np.ndarray:
    return cv2.resize(photographs()[0], (160, 120), interpolation=cv2.INTER_AREA)


def test_a_queued_frame_is_stored_as_a_jpeg_of_it() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=3600, clock=clock)
    writer = EvidenceWriter(store)
    photo = small_photo()
    kept = sample("cam", "latest.0", time=clock.now)
    assert writer.submit(kept, photo)
    writer.close()
    decoded = cv2.imdecode(np.frombuffer(store.image("cam", kept.id) or b"", np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == photo.shape
    assert cv2.PSNR(decoded, photo) > 25  # JPEG quality 85 of a detailed 160 px photo
    assert (writer.written, writer.dropped, writer.failed) == (1, 0, 0)


def test_after_close_frames_are_refused_and_counted() -> None:
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=3600)
    writer = EvidenceWriter(store)
    writer.close()  # never started: nothing to drain
    assert not writer.submit(sample("cam", "latest.0", time=Clock().now), small_photo())
    assert writer.dropped == 1 and store.count() == 0


def test_close_writes_everything_queued() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=3600, clock=clock)
    writer = EvidenceWriter(store, queue_size=8)
    with store._lock:  # hold the writer inside its first put while the queue fills
        for i in range(8):
            assert writer.submit(sample("cam", f"low_light.{i}", time=clock.now + i), small_photo())
    writer.close()
    assert store.count() == 8 and writer.written == 8


def test_a_frame_the_store_refuses_is_counted_as_failed() -> None:
    store = MemoryStore(max_bytes=100, max_age_seconds=3600)  # smaller than any JPEG
    writer = EvidenceWriter(store)
    writer.submit(sample("cam", "latest.0", time=Clock().now), small_photo())
    writer.close()
    assert (writer.written, writer.failed) == (0, 1)


def test_an_idle_writer_prunes_expired_frames() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=60, clock=clock)
    writer = EvidenceWriter(store, prune_seconds=0.05)
    writer.submit(sample("cam", "latest.0", time=clock.now), small_photo())
    wait_for(lambda: store.count() == 1, timeout=30, what="the frame stored", interval=0.01)
    clock.now += 61  # no frame arrives any more; the idle thread deletes it
    wait_for(lambda: store.count() == 0, timeout=30, what="the expired frame pruned", interval=0.01)
    assert store.total_bytes == 0 and store.expired == 1
    writer.close()


def test_flush_waits_for_what_is_queued_and_the_writer_goes_on() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=10_000_000, max_age_seconds=3600, clock=clock)
    writer = EvidenceWriter(store)
    for i in range(3):
        writer.submit(sample("cam", f"low_light.{i}", time=clock.now + i), small_photo())
    assert writer.flush() and writer.pending() == 0 and store.count() == 3
    assert writer.submit(sample("cam", "latest.0", time=clock.now), small_photo())  # still open
    writer.close()
    assert store.count() == 4
