"""Evidence frames: per source, a bounded set of kept sample frames behind the numbers (docs/evidence.md).

| module | one concept |
|---|---|
| ``rules`` | the kinds of evidence, the slots they fill, which kept frame stands for a kind now |
| ``sample`` | one kept frame's record (numbers, detections, slots) and its JSON form |
| ``keeper`` | the pipeline sink: decides per frame with comparisons, hands kept frames to the writer |
| ``writer`` | JPEG encoding and store writes on a background thread, bounded queue |
| ``store`` | memory or disk, with a size cap, an age limit and fixed slots per source |
| ``collector`` | the Prometheus collector read at scrape time |
"""

from vision_service.evidence.collector import EvidenceCollector
from vision_service.evidence.keeper import Decision, EvidenceKeeper
from vision_service.evidence.rules import DESCRIPTIONS, KINDS, SLOTS_PER_SOURCE, current_kinds
from vision_service.evidence.sample import SAMPLE_ID, Sample
from vision_service.evidence.store import DiskStore, EvidenceStore, MemoryStore, read_samples
from vision_service.evidence.writer import EvidenceWriter

__all__ = [
    "DESCRIPTIONS",
    "KINDS",
    "SAMPLE_ID",
    "SLOTS_PER_SOURCE",
    "Decision",
    "DiskStore",
    "EvidenceCollector",
    "EvidenceKeeper",
    "EvidenceStore",
    "EvidenceWriter",
    "MemoryStore",
    "Sample",
    "current_kinds",
    "read_samples",
]
