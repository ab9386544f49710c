"""The evidence metrics, read at scrape time from the keeper, its writer and its store."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from tests.conftest import Clock
from tests.streams import parse_samples, sample
from tests.test_evidence_store import sample as evidence_sample
from tests.test_evidence_writer import small_photo
from vision_service.evidence import EvidenceCollector, EvidenceKeeper, MemoryStore


def test_counters_and_store_size_are_exported() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=1_000_000, max_age_seconds=3600, clock=clock)
    keeper = EvidenceKeeper(store, clock=clock)
    registry = CollectorRegistry()
    registry.register(EvidenceCollector(keeper))
    keeper.writer.submit(evidence_sample("cam", "latest.0", time=clock.now), small_photo())
    keeper.writer.close()
    keeper.writer.submit(evidence_sample("cam", "latest.0", time=clock.now), small_photo())  # closed: dropped
    samples = parse_samples(generate_latest(registry).decode())
    assert sample(samples, "vision_evidence_frames_total", outcome="stored") == 1
    assert sample(samples, "vision_evidence_frames_total", outcome="dropped") == 1
    assert sample(samples, "vision_evidence_frames_total", outcome="skipped") == 0
    assert sample(samples, "vision_evidence_stored_frames") == 1
    assert sample(samples, "vision_evidence_stored_bytes") == store.total_bytes > 0
    assert sample(samples, "vision_evidence_max_bytes") == 1_000_000
