"""Which frames are evidence: the kinds, the slots they fill, and which kept frame stands for each kind now.

Per source, every kind has a fixed number of slots, so the number of frames kept per source is
fixed too (:data:`SLOTS_PER_SOURCE`):

* ``latest``, 1 slot: taken when :data:`LATEST_SECONDS` have passed since the last one was kept;
* ``darkest``, ``blurriest``, ``noisiest``, ``lowest_confidence``, 2 slots each: taken by the most
  extreme frame of each half of the drift window (below);
* each condition of :mod:`vision_service.conditions`, :data:`ONSETS_KEPT` slots: taken by a frame
  at the moment the condition began for its source (a ring: the oldest onset goes).

**Extremes of the drift window.** The drift window is the source's last ``N`` frames
(``VISION_DRIFT_WINDOW_FRAMES``). Frames are counted in blocks of ``N / 2``; slot ``darkest.<b % 2>``
holds the darkest frame of block ``b``. A frame takes the slot when it is the first of a new block
(the slot's frame is then two blocks old, out of the window) or darker than the slot's frame. The
darkest frame *now* is the darker of the two slots' frames (:func:`current_kinds`): the darkest of
the last ``N/2`` to ``N`` frames, never older than the window. Deciding costs one comparison per
kind per frame and remembers two numbers per kind, not pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vision_service import conditions
from vision_service.evidence.sample import Sample, kind_of
from vision_service.measurement import Measurement

LATEST = "latest"
#: The latest frame is replaced at most this often, seconds.
LATEST_SECONDS = 5.0
#: Onsets kept per condition and source.
ONSETS_KEPT = 3


@dataclass(frozen=True)
class Extreme:
    """A kind that keeps the most extreme frame of a signal (``lowest``: the minimum, else the maximum)."""

    kind: str
    signal: str  # a quality field, or 'confidence' (mean detection confidence of the frame)
    lowest: bool
    description: str

    def value(self, quality: Mapping[str, float], mean_confidence: float | None) -> float | None:
        value = mean_confidence if self.signal == "confidence" else quality.get(self.signal)
        return value if value is not None and math.isfinite(value) else None

    def of(self, m: Measurement) -> float | None:
        return self.value(m.quality.as_dict(), m.mean_confidence)

    def beats(self, value: float, kept: float) -> bool:
        return value < kept if self.lowest else value > kept


EXTREMES: tuple[Extreme, ...] = (
    Extreme("darkest", "brightness", True, "the lowest mean brightness of the drift window"),
    Extreme("blurriest", "sharpness", True, "the lowest sharpness (variance of the Laplacian) of the drift window"),
    Extreme("noisiest", "noise_sigma", False, "the highest noise sigma of the drift window"),
    Extreme(
        "lowest_confidence",
        "confidence",
        True,
        "the lowest mean detection confidence of the drift window's frames with detections",
    ),
)
EXTREME_BY_KIND = {e.kind: e for e in EXTREMES}
ONSET_KINDS: tuple[str, ...] = conditions.NAMES
KINDS: tuple[str, ...] = (LATEST, *EXTREME_BY_KIND, *ONSET_KINDS)
DESCRIPTIONS: dict[str, str] = {
    LATEST: f"the latest frame (replaced at most every {LATEST_SECONDS:g} s)",
    **{e.kind: e.description for e in EXTREMES},
    **{name: f"a frame at the moment condition {name} began ({conditions.ALERTS[name]})" for name in ONSET_KINDS},
}
SLOTS_PER_SOURCE = 1 + 2 * len(EXTREMES) + ONSETS_KEPT * len(ONSET_KINDS)


def current_kinds(samples: Iterable[Sample]) -> dict[str, tuple[str, ...]]:
    """For each sample id, the kinds it stands for now (samples standing for none are left out).

    ``latest`` and onset kinds come from the slots a sample holds; an extreme kind goes only to
    the most extreme of the samples holding a slot of it (the two halves of the window).
    """
    samples = list(samples)
    out: dict[str, list[str]] = {s.id: [] for s in samples}
    best: dict[str, tuple[float, Sample]] = {}
    for sample in samples:
        for kind in dict.fromkeys(kind_of(slot) for slot in sample.slots):
            rule = EXTREME_BY_KIND.get(kind)
            if rule is None:
                out[sample.id].append(kind)
                continue
            value = rule.value(sample.quality, sample.mean_confidence)
            if value is None:
                continue
            held = best.get(kind)
            if held is None or rule.beats(value, held[0]) or (value == held[0] and sample.time > held[1].time):
                best[kind] = (value, sample)
    for kind, (_, sample) in best.items():
        out[sample.id].append(kind)
    order = {kind: index for index, kind in enumerate(KINDS)}
    return {
        sample_id: tuple(sorted(kinds, key=lambda k: order.get(k, len(order))))
        for sample_id, kinds in out.items()
        if kinds
    }
