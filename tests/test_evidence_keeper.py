"""The evidence keeper: which frames it keeps, for what, and at what cost (decisions by comparison only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from quality.simulate import blur, gaussian_noise, low_light
from tests.conftest import Clock, measurement_of
from tests.streams import photographs
from vision_service.core.config import Settings
from vision_service.evidence import EvidenceKeeper, MemoryStore, current_kinds
from vision_service.evidence.keeper import IMPROVEMENT_BURST
from vision_service.evidence.rules import LATEST_SECONDS, ONSET_KINDS, ONSETS_KEPT, SLOTS_PER_SOURCE
from vision_service.evidence.store import DiskStore
from vision_service.measurement import Measurement


@pytest.fixture(scope="module")
def scenes() -> dict[str, tuple[Measurement, np.ndarray]]:
    """Real photographs (and their small BGR copies) in the states the kinds look for."""
    rng = np.random.default_rng(2)
    bus, zidane = photographs()[:2]
    images = {
        "day": (bus, (0.9, 0.85)),
        "dusk": (low_light(bus, 0.05, rng=rng), (0.6,)),
        "night": (low_light(bus, 0.002, rng=rng), (0.3,)),
        "blurred": (blur(zidane, 6.0), (0.8,)),
        "noisy": (gaussian_noise(zidane, 25.0, rng=rng), (0.7,)),
    }
    return {
        name: (measurement_of(image, confidences=conf), cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA))
        for name, (image, conf) in images.items()
    }


class Conditions:
    """What the condition monitor would say: a set the test changes (the keeper only reads it)."""

    def __init__(self) -> None:
        self.holding: frozenset[str] = frozenset()

    def __call__(self, source: str) -> frozenset[str]:
        return self.holding


def keeper_for(clock: Clock, *, block_frames: int = 4, conditions: Conditions | None = None) -> EvidenceKeeper:
    store = MemoryStore(max_bytes=50_000_000, max_age_seconds=3600, clock=clock)
    return EvidenceKeeper(
        store, block_frames=block_frames, active=conditions or Conditions(), clock=clock, max_side=160
    )


def offer(keeper: EvidenceKeeper, scene: tuple[Measurement, np.ndarray]) -> tuple[str, ...]:
    """What the pipeline does: ask, and hand over the small copy only when asked for."""
    m, small = scene
    decision = keeper.wants(m)
    if not decision:
        return ()
    keeper.keep(m, decision, small)
    return decision.slots


def kept(keeper: EvidenceKeeper) -> dict[str, tuple[str, ...]]:
    """kind -> the brightness of the frames standing for it now, after the writer finished."""
    keeper.writer.close()
    samples = keeper.store.samples("cam")
    by_id = {s.id: s for s in samples}
    out: dict[str, list[str]] = {}
    for sample_id, kinds in current_kinds(samples).items():
        for kind in kinds:
            out.setdefault(kind, []).append(by_id[sample_id].id)
    return {k: tuple(v) for k, v in out.items()}


def test_the_first_frame_is_every_extreme_and_the_latest(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    keeper = keeper_for(Clock())
    slots = offer(keeper, scenes["day"])
    assert set(slots) == {"darkest.0", "blurriest.0", "noisiest.0", "lowest_confidence.0", "latest.0"}
    assert set(kept(keeper)) == {"latest", "darkest", "blurriest", "noisiest", "lowest_confidence"}
    (sample,) = keeper.store.samples("cam")
    assert (sample.image_width, sample.image_height) == (160, 120) and sample.bytes > 0
    assert keeper.store.image("cam", sample.id)[:3] == b"\xff\xd8\xff"  # type: ignore[index]


def test_each_kind_takes_its_extreme(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    clock = Clock()
    keeper = keeper_for(clock, block_frames=100)
    for name in ("day", "dusk", "night", "blurred", "noisy"):
        offer(keeper, scenes[name])
        clock.now += 1  # within the improvement budget; the latest frame is not due again yet
    clock.now += LATEST_SECONDS
    offer(keeper, scenes["day"])
    keeper.writer.close()
    samples = {s.id: s for s in keeper.store.samples("cam")}
    standing = {kind: samples[i] for i, kinds in current_kinds(samples.values()).items() for kind in kinds}
    brightness = {name: m.quality.brightness for name, (m, _) in scenes.items()}
    assert standing["darkest"].quality["brightness"] == pytest.approx(brightness["night"])
    assert standing["blurriest"].quality["sharpness"] == pytest.approx(scenes["blurred"][0].quality.sharpness)
    assert standing["noisiest"].quality["noise_sigma"] == pytest.approx(scenes["noisy"][0].quality.noise_sigma)
    assert standing["lowest_confidence"].mean_confidence == pytest.approx(0.3)
    assert standing["latest"].quality["brightness"] == pytest.approx(brightness["day"])


def test_a_frame_that_beats_nothing_is_not_kept_and_costs_no_image(
    scenes: dict[str, tuple[Measurement, np.ndarray]],
) -> None:
    clock = Clock()
    keeper = keeper_for(clock, block_frames=100)
    offer(keeper, scenes["night"])
    clock.now += 1
    assert keeper.wants(scenes["night"][0]) is None  # not darker, blurrier, noisier; latest not due
    clock.now += LATEST_SECONDS
    assert keeper.wants(scenes["night"][0]).slots == ("latest.0",)  # type: ignore[union-attr]


def test_extremes_cover_at_most_the_drift_window(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    """Blocks of half a window: a frame from two blocks ago no longer stands for a kind."""
    clock = Clock()
    keeper = keeper_for(clock, block_frames=3)
    offer(keeper, scenes["night"])  # block 0: the darkest of all
    for _ in range(2):
        offer(keeper, scenes["day"])
    for _ in range(3):  # block 1
        slots = offer(keeper, scenes["dusk"])
    assert "darkest.0" not in slots
    keeper.writer.close()
    darkest = [s for s in keeper.store.samples("cam") if "darkest" in current_kinds([s]).get(s.id, ())]
    assert min(s.quality["brightness"] for s in darkest) == pytest.approx(scenes["night"][0].quality.brightness)
    keeper = keeper_for(clock, block_frames=3)
    offer(keeper, scenes["night"])
    for _ in range(5):
        offer(keeper, scenes["day"])
    slots = offer(keeper, scenes["day"])  # block 2: the night frame's slot is taken over
    assert "darkest.0" in slots
    keeper.writer.close()
    samples = keeper.store.samples("cam")
    (darkest,) = [s for s in samples if "darkest" in current_kinds(samples).get(s.id, ())]
    assert darkest.quality["brightness"] == pytest.approx(scenes["day"][0].quality.brightness)


def test_a_condition_onset_is_kept_once_and_the_ring_keeps_the_last_few(
    scenes: dict[str, tuple[Measurement, np.ndarray]],
) -> None:
    clock = Clock()
    conditions = Conditions()
    keeper = keeper_for(clock, block_frames=1000, conditions=conditions)
    offer(keeper, scenes["day"])
    onsets = []
    for _ in range(ONSETS_KEPT + 2):
        conditions.holding = frozenset({"low_light"})
        onsets.append(offer(keeper, scenes["night"]))
        assert "low_light" not in str(offer(keeper, scenes["night"]))  # still holding: no new onset
        conditions.holding = frozenset()
        offer(keeper, scenes["day"])
    assert [next(s for s in slots if s.startswith("low_light")) for slots in onsets] == [
        f"low_light.{i % ONSETS_KEPT}" for i in range(ONSETS_KEPT + 2)
    ]
    keeper.writer.close()
    held = [s for s in keeper.store.samples("cam") if "low_light" in s.kinds]
    assert len(held) == ONSETS_KEPT and all("low_light" in s.conditions for s in held)


def test_improvements_are_paced_by_a_budget(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    """A scene darkening frame by frame would make every frame the darkest: the budget bounds the images made."""
    clock = Clock()
    keeper = keeper_for(clock, block_frames=10_000)
    bus = photographs()[0]
    rng = np.random.default_rng(0)
    darker = [measurement_of(low_light(bus, light, rng=rng)) for light in np.geomspace(0.5, 0.001, 40)]
    offer(keeper, scenes["day"])
    decided = sum(1 for m in darker if keeper.wants(m) is not None)
    assert decided == IMPROVEMENT_BURST  # the rest were skipped: the clock did not move
    assert keeper.skipped == len(darker) - IMPROVEMENT_BURST
    clock.now += 2.0
    assert keeper.wants(measurement_of(low_light(bus, 0.0005, rng=rng))) is not None  # refilled


def test_a_full_writer_drops_the_frame_and_the_keeper_tries_again(
    scenes: dict[str, tuple[Measurement, np.ndarray]],
) -> None:
    from vision_service.evidence.writer import EvidenceWriter

    clock = Clock()
    store = MemoryStore(max_bytes=50_000_000, max_age_seconds=3600, clock=clock)
    writer = EvidenceWriter(store, queue_size=1)
    keeper = EvidenceKeeper(store, writer, block_frames=1000, clock=clock)
    with store._lock:  # a slow disk: the writer thread waits inside put, its queue fills up
        offer(keeper, scenes["day"])
        offer(keeper, scenes["blurred"])
        clock.now += 10
        dropped_before = writer.dropped
        slots = offer(keeper, scenes["night"])
        assert writer.dropped == dropped_before + 1
    clock.now += 10
    again = offer(keeper, scenes["night"])  # not remembered as kept: offered again
    assert set(slots) <= set(again)
    writer.close()
    assert writer.failed == 0


def test_slots_per_source_bound_the_frames_kept(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    clock = Clock()
    conditions = Conditions()
    keeper = keeper_for(clock, block_frames=2, conditions=conditions)
    names = list(scenes)
    rng = np.random.default_rng(3)
    for step in range(300):
        conditions.holding = frozenset(rng.choice(["low_light", "noisy", "drift", "blurry"], size=2).tolist())
        offer(keeper, scenes[names[step % len(names)]])
        clock.now += 0.7
    keeper.writer.close()
    assert 0 < keeper.store.count() <= SLOTS_PER_SOURCE


def test_forget_drops_the_selection_state_only(scenes: dict[str, tuple[Measurement, np.ndarray]]) -> None:
    keeper = keeper_for(Clock())
    offer(keeper, scenes["day"])
    keeper.forget("cam")
    assert keeper.wants(scenes["day"][0]) is not None  # a fresh start for the source
    keeper.writer.close()
    assert keeper.store.count() == 1


@pytest.mark.parametrize("on_disk", [False, True])
def test_the_settings_build_a_store_with_their_limits_that_keeps_condition_onsets_last(
    tmp_path: Path, on_disk: bool
) -> None:
    settings = Settings(
        evidence_dir=tmp_path / "evidence" if on_disk else None,
        evidence_max_bytes=5_000_000,
        evidence_max_age_hours=2,
        drift_window_frames=40,
    )
    keeper = EvidenceKeeper.from_settings(settings)
    try:
        store = keeper.store
        assert isinstance(store, DiskStore if on_disk else MemoryStore)
        assert (store.max_bytes, store.max_age_seconds) == (5_000_000, 7200)
        assert store.lasting_kinds == frozenset(ONSET_KINDS)
    finally:
        keeper.close()
