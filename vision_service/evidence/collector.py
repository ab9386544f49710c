"""Exports the evidence store's size and the keeper's counters to Prometheus at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from vision_service.evidence.keeper import EvidenceKeeper


class EvidenceCollector(Collector):
    """``vision_evidence_frames_total{outcome}``, ``vision_evidence_stored_frames``, ``vision_evidence_stored_bytes``
    and ``vision_evidence_max_bytes``; no per-source labels (the API lists frames per source)."""

    def __init__(self, keeper: EvidenceKeeper) -> None:
        self.keeper = keeper

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        keeper, writer, store = self.keeper, self.keeper.writer, self.keeper.store
        frames = CounterMetricFamily(
            "vision_evidence_frames",
            "Frames chosen as evidence, by outcome: stored; dropped (the writer's queue was full); failed "
            "(encoding or writing failed); skipped (over the per-source budget for improvements, no image made).",
            labels=["outcome"],
        )
        for outcome, value in (
            ("stored", writer.written),
            ("dropped", writer.dropped),
            ("failed", writer.failed),
            ("skipped", keeper.skipped),
        ):
            frames.add_metric([outcome], value)
        yield frames
        yield GaugeMetricFamily("vision_evidence_stored_frames", "Evidence frames kept now.", value=store.count())
        yield GaugeMetricFamily(
            "vision_evidence_stored_bytes",
            "Bytes of the evidence frames kept now (JPEG + JSON).",
            value=store.total_bytes,
        )
        yield GaugeMetricFamily(
            "vision_evidence_max_bytes",
            "Size cap of the evidence store (VISION_EVIDENCE_MAX_BYTES).",
            value=store.max_bytes,
        )

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield CounterMetricFamily("vision_evidence_frames", "", labels=["outcome"])
        yield GaugeMetricFamily("vision_evidence_stored_frames", "")
        yield GaugeMetricFamily("vision_evidence_stored_bytes", "")
        yield GaugeMetricFamily("vision_evidence_max_bytes", "")
