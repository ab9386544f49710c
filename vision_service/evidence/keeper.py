"""The evidence keeper: the pipeline sink that decides, per frame, whether to keep it, and hands it on.

The pipeline asks :meth:`EvidenceKeeper.wants` about every processed frame. The answer costs a
few comparisons against numbers remembered per source (the rules of
:mod:`vision_service.evidence.rules`); only when it is yes does the pipeline ask the engine for a
small copy of the frame (``Engine.thumbnail``) and give it to :meth:`EvidenceKeeper.keep`, which
queues it for the writer thread (:mod:`vision_service.evidence.writer`). Nothing here touches a
frame's pixels, a file or a device.

Work is bounded per source: a new block of the drift window, the latest frame (every
:data:`~vision_service.evidence.rules.LATEST_SECONDS`) and condition onsets are bounded by
construction; *improvements* within a block (a frame darker than the block's darkest so far,
frequent while a scene darkens steadily) are paced by a token bucket of
:data:`IMPROVEMENTS_PER_SECOND` (burst :data:`IMPROVEMENT_BURST`); a frame over the budget is
skipped and counted. Not thread-safe for writers: :meth:`wants` and :meth:`keep` are called by the
pipeline's one recording thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vision_service.evidence.rules import EXTREMES, LATEST, LATEST_SECONDS, ONSET_KINDS, ONSETS_KEPT
from vision_service.evidence.sample import MAX_DETECTIONS, Sample, new_id
from vision_service.evidence.store import DiskStore, EvidenceStore, MemoryStore, StoreLimits
from vision_service.evidence.writer import EvidenceWriter
from vision_service.measurement import Measurement

if TYPE_CHECKING:
    from vision_service.core.config import Settings

IMPROVEMENTS_PER_SECOND = 1.0
IMPROVEMENT_BURST = 5.0


@dataclass(frozen=True)
class Decision:
    """What a frame would be kept for: the slots it takes and the state to remember once it is queued."""

    slots: tuple[str, ...]
    block: int
    extremes: tuple[tuple[str, int, float], ...]  # (kind, slot index, value)
    onsets: tuple[str, ...]
    latest: bool
    conditions: tuple[str, ...]


@dataclass
class _SourceState:
    frames: int = 0
    latest_at: float = float("-inf")
    # kind -> per slot index: (block, value) of the frame it holds
    extremes: dict[str, list[tuple[int, float] | None]] = field(default_factory=dict)
    conditions: frozenset[str] = frozenset()
    onsets: dict[str, int] = field(default_factory=dict)  # condition -> onsets kept so far
    tokens: float = IMPROVEMENT_BURST
    refilled_at: float = float("-inf")


class EvidenceKeeper:
    """Per-source selection state, the store and the writer."""

    def __init__(
        self,
        store: EvidenceStore,
        writer: EvidenceWriter | None = None,
        *,
        max_side: int = 640,
        block_frames: int = 250,
        active: Callable[[str], frozenset[str]] = lambda source: frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if block_frames < 1:
            raise ValueError(f"block_frames must be at least 1, got {block_frames}")
        self.store = store
        self.writer = writer or EvidenceWriter(store)
        self.max_side = max_side
        self.block_frames = block_frames
        self.active = active
        self.clock = clock
        self._states: dict[str, _SourceState] = {}
        self.decided = 0  # frames the rules chose, thumbnail requested
        self.skipped = 0  # improvements over the per-source budget

    @classmethod
    def from_settings(
        cls, settings: Settings, *, active: Callable[[str], frozenset[str]] = lambda source: frozenset()
    ) -> EvidenceKeeper:
        # Under the size cap the moments conditions began go last: no later frame can replace them.
        limits = StoreLimits(
            max_bytes=settings.evidence_max_bytes,
            max_age_seconds=settings.evidence_max_age_hours * 3600,
            lasting_kinds=ONSET_KINDS,
        )
        store: EvidenceStore
        if settings.evidence_dir is not None:
            store = DiskStore(settings.evidence_dir, **limits)
        else:
            store = MemoryStore(**limits)
        return cls(
            store,
            max_side=settings.evidence_max_side,
            block_frames=max(1, settings.drift_window_frames // 2),
            active=active,
        )

    # -- the hot path -------------------------------------------------------------------------------

    def wants(self, m: Measurement) -> Decision | None:
        """Whether to keep this frame, and for what: comparisons only."""
        now = self.clock()
        state = self._states.get(m.source)
        if state is None:
            state = self._states[m.source] = _SourceState()
        block = state.frames // self.block_frames
        state.frames += 1
        active = self.active(m.source)
        began = tuple(sorted(active - state.conditions))
        state.conditions = active  # an onset is a moment: it is not offered again
        latest = now - state.latest_at >= LATEST_SECONDS
        new_block: list[tuple[str, int, float]] = []
        better: list[tuple[str, int, float]] = []
        for rule in EXTREMES:
            value = rule.of(m)
            if value is None:
                continue
            index = block % 2
            held = state.extremes.get(rule.kind, [None, None])[index]
            if held is None or held[0] != block:
                new_block.append((rule.kind, index, value))
            elif rule.beats(value, held[1]):
                better.append((rule.kind, index, value))
        if better and not self._take_token(state, now):
            self.skipped += 1
            better = []
        extremes = (*new_block, *better)
        if not (extremes or began or latest):
            return None
        slots = [f"{name}.{state.onsets.get(name, 0) % ONSETS_KEPT}" for name in began]
        slots += [f"{kind}.{index}" for kind, index, _ in extremes]
        if latest:
            slots.append(f"{LATEST}.0")
        self.decided += 1
        return Decision(tuple(slots), block, extremes, began, latest, tuple(sorted(active)))

    def _take_token(self, state: _SourceState, now: float) -> bool:
        elapsed = max(0.0, now - state.refilled_at) if state.refilled_at != float("-inf") else IMPROVEMENT_BURST
        state.tokens = min(IMPROVEMENT_BURST, state.tokens + elapsed * IMPROVEMENTS_PER_SECOND)
        state.refilled_at = now
        if state.tokens < 1.0:
            return False
        state.tokens -= 1.0
        return True

    def keep(self, m: Measurement, decision: Decision, bgr: np.ndarray) -> None:
        """Queue the frame's small image for the writer; remember it only when it was queued."""
        sample = Sample(
            id=new_id(),
            source=m.source,
            time=self.clock(),
            slots=decision.slots,
            width=m.width,
            height=m.height,
            image_width=int(bgr.shape[1]),
            image_height=int(bgr.shape[0]),
            quality=m.quality.as_dict(),
            mean_confidence=m.mean_confidence,
            detections=tuple(d.as_dict() for d in m.detections[:MAX_DETECTIONS]),
            conditions=decision.conditions,
        )
        state = self._states.get(m.source)
        if state is None or not self.writer.submit(sample, bgr):
            return  # the source was removed meanwhile, or the writer is full (counted there)
        if decision.latest:
            state.latest_at = sample.time
        for kind, index, value in decision.extremes:
            slots = state.extremes.setdefault(kind, [None, None])
            slots[index] = (decision.block, value)
        for name in decision.onsets:
            state.onsets[name] = state.onsets.get(name, 0) + 1

    def forget(self, source: str) -> None:
        """Drop a source's selection state (its kept frames stay until they age out or are evicted)."""
        self._states.pop(source, None)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued and stop the writer thread."""
        self.writer.close(timeout)
