"""Evidence rules: the kinds, the slot budget per source, and which kept frame stands for a kind now."""

from __future__ import annotations

from dataclasses import replace

from tests.test_evidence_store import sample
from vision_service.conditions import NAMES
from vision_service.evidence.rules import DESCRIPTIONS, EXTREMES, KINDS, ONSETS_KEPT, SLOTS_PER_SOURCE, current_kinds


def test_kinds_are_latest_the_extremes_and_every_condition() -> None:
    assert ("latest", "darkest", "blurriest", "noisiest", "lowest_confidence", *NAMES) == KINDS
    assert set(DESCRIPTIONS) == set(KINDS)
    assert 1 + 2 * len(EXTREMES) + ONSETS_KEPT * len(NAMES) == SLOTS_PER_SOURCE


def test_the_darker_half_stands_for_darkest() -> None:
    first = sample("cam", "darkest.0", "latest.0", time=1.0, quality=0.2)
    second = sample("cam", "darkest.1", time=2.0, quality=0.1)
    kinds = current_kinds([first, second])
    assert kinds == {first.id: ("latest",), second.id: ("darkest",)}


def test_onsets_and_latest_come_from_the_slots_held() -> None:
    onset = sample("cam", "low_light.0", "drift.2", time=1.0)
    assert current_kinds([onset]) == {onset.id: ("low_light", "drift")}


def test_a_frame_standing_for_nothing_is_left_out() -> None:
    brighter = sample("cam", "darkest.0", time=1.0, quality=0.4)
    darker = sample("cam", "darkest.1", time=2.0, quality=0.1)
    assert brighter.id not in current_kinds([brighter, darker])


def test_lowest_confidence_ignores_frames_without_detections() -> None:
    none = sample("cam", "lowest_confidence.0", time=1.0)
    some = replace(sample("cam", "lowest_confidence.1", time=2.0), mean_confidence=0.4)
    assert current_kinds([none, some]) == {some.id: ("lowest_confidence",)}


def test_ties_go_to_the_newer_frame() -> None:
    old = sample("cam", "noisiest.0", time=1.0)
    new = sample("cam", "noisiest.1", time=2.0)
    assert current_kinds([old, new]) == {new.id: ("noisiest",)}
