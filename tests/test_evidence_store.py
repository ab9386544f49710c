"""The evidence stores: fixed slots per source, an age limit and a size cap that is never exceeded, on disk too."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from quality.simulate import gaussian_noise, low_light
from tests.conftest import Clock, encode_jpeg
from tests.streams import photographs
from vision_service.evidence.rules import SLOTS_PER_SOURCE
from vision_service.evidence.sample import Sample, SampleError, new_id
from vision_service.evidence.store import DiskStore, EvidenceStore, MemoryStore, jpeg_path, read_samples

HOUR = 3600.0


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    """Real photographs as small JPEGs of varied sizes (noise and light change how well they compress)."""
    rng = np.random.default_rng(4)
    out = []
    for photo in photographs():
        small = cv2.resize(photo, (320, 240), interpolation=cv2.INTER_AREA)
        for variant in (small, low_light(small, 0.02, rng=rng), gaussian_noise(small, 12.0, rng=rng)):
            out.append(encode_jpeg(variant, 85))
    return out


def sample(source: str, *slots: str, time: float, quality: float = 0.5) -> Sample:
    return Sample(
        id=new_id(),
        source=source,
        time=time,
        slots=slots,
        width=640,
        height=480,
        image_width=320,
        image_height=240,
        quality={
            "brightness": quality,
            "contrast": 0.2,
            "sharpness": 300.0,
            "noise_sigma": 2.0,
            "underexposed_ratio": 0.0,
            "overexposed_ratio": 0.0,
        },
        mean_confidence=None,
        detections=({"class_id": 0, "class_name": "person", "confidence": 0.9, "box_xyxy": [1.0, 2.0, 3.0, 4.0]},),
    )


def disk_bytes(directory: Path) -> int:
    """What the store occupies on disk: every file under it, temporary ones included."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


@pytest.fixture(params=["memory", "disk"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, tmp: Path, clock: Clock, max_bytes: int = 10_000_000) -> EvidenceStore:
    if kind == "disk":
        return DiskStore(tmp / "evidence", max_bytes=max_bytes, max_age_seconds=HOUR, clock=clock)
    return MemoryStore(max_bytes=max_bytes, max_age_seconds=HOUR, clock=clock)


def test_a_new_sample_takes_over_its_slots_and_frees_what_holds_none(
    store_kind: str, tmp_path: Path, jpegs: list[bytes]
) -> None:
    clock = Clock()
    store = make(store_kind, tmp_path, clock)
    first = sample("cam", "darkest.0", "blurriest.0", "latest.0", time=clock.now)
    assert store.put(first, jpegs[0])
    second = sample("cam", "darkest.0", "latest.0", time=clock.now + 1)
    store.put(second, jpegs[1])
    held = {s.id: s.slots for s in store.samples("cam")}
    assert held == {second.id: ("darkest.0", "latest.0"), first.id: ("blurriest.0",)}
    third = sample("cam", "blurriest.0", time=clock.now + 2)
    store.put(third, jpegs[2])
    assert {s.id for s in store.samples("cam")} == {second.id, third.id}  # first held nothing any more
    assert store.image("cam", first.id) is None
    assert store.image("cam", third.id) == jpegs[2]
    assert store.count() == 2 and store.sources() == ["cam"]


def test_never_more_than_the_slots_per_source(store_kind: str, tmp_path: Path, jpegs: list[bytes]) -> None:
    from vision_service.evidence.rules import KINDS

    clock = Clock()
    store = make(store_kind, tmp_path, clock, max_bytes=100_000_000)
    rng = np.random.default_rng(0)
    slots = [f"{kind}.{i}" for kind in KINDS for i in range(3)]
    for step in range(400):
        chosen = tuple(rng.choice(slots, size=int(rng.integers(1, 4)), replace=False))
        store.put(sample("cam", *chosen, time=clock.now + step), jpegs[step % len(jpegs)])
    assert store.count() <= len(slots)
    # The keeper's rules use fewer slots per kind than this test; the bound it relies on is the slot count.
    assert len(slots) > SLOTS_PER_SOURCE


def test_the_size_cap_is_never_exceeded(store_kind: str, tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    cap = 4 * max(len(j) for j in jpegs)
    store = make(store_kind, tmp_path, clock, max_bytes=cap)
    for step in range(200):
        source = f"cam-{step % 5}"
        store.put(sample(source, f"latest.{step % 2}", f"darkest.{step % 3}", time=clock.now + step), jpegs[step % 12])
        assert store.total_bytes <= cap
        if store_kind == "disk":
            assert disk_bytes(tmp_path / "evidence") <= cap
    assert store.evicted > 0
    newest = max((s for src in store.sources() for s in store.samples(src)), key=lambda s: s.time)
    assert newest.time == clock.now + 199  # the oldest went first


def test_a_frame_larger_than_the_whole_cap_is_refused(store_kind: str, tmp_path: Path, jpegs: list[bytes]) -> None:
    store = make(store_kind, tmp_path, Clock(), max_bytes=len(jpegs[0]) // 2)
    assert not store.put(sample("cam", "latest.0", time=Clock().now), jpegs[0])
    assert store.count() == 0 and store.total_bytes == 0


def test_old_samples_are_neither_listed_nor_kept(store_kind: str, tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    store = make(store_kind, tmp_path, clock)
    old = sample("cam", "low_light.0", time=clock.now)
    store.put(old, jpegs[0])
    clock.now += HOUR + 1
    assert store.samples("cam") == [] and store.image("cam", old.id) is None  # expired: hidden at once
    assert store.prune() == 1 and store.count() == 0 and store.total_bytes == 0
    if store_kind == "disk":
        assert disk_bytes(tmp_path / "evidence") == 0


def test_only_well_formed_ids_are_looked_up(store_kind: str, tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    store = make(store_kind, tmp_path, clock)
    kept = sample("cam", "latest.0", time=clock.now)
    store.put(kept, jpegs[0])
    for bad in ("../cam/" + kept.id, kept.id.upper(), kept.id + ".jpg", "", "x" * 16):
        assert store.get("cam", bad) is None
    assert store.get("other", kept.id) is None  # ids are per source
    assert store.get("cam", kept.id) is not None


def test_samples_validate_what_becomes_a_path() -> None:
    with pytest.raises(SampleError):
        sample("../etc", "latest.0", time=1.0)
    with pytest.raises(SampleError):
        sample("cam", "latest", time=1.0)
    with pytest.raises(SampleError):
        Sample.from_json({"format": "vision-service-evidence/1", "id": "../../x"})


def test_disk_layout_and_records(tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    store = make("disk", tmp_path, clock)
    kept = sample("cam", "darkest.1", time=clock.now)
    store.put(kept, jpegs[3])
    folder = tmp_path / "evidence" / "cam"
    assert sorted(p.name for p in folder.iterdir()) == [f"{kept.id}.jpg", f"{kept.id}.json"]
    assert (folder / f"{kept.id}.jpg").read_bytes() == jpegs[3]
    record = json.loads((folder / f"{kept.id}.json").read_text())
    assert record["slots"] == ["darkest.1"] and record["bytes"] == len(jpegs[3])
    assert Sample.from_json(record).detections[0]["class_name"] == "person"
    assert jpeg_path(tmp_path / "evidence", kept) == folder / f"{kept.id}.jpg"


def test_a_restarted_disk_store_reads_back_its_frames_and_cleans_its_leftovers(
    tmp_path: Path, jpegs: list[bytes]
) -> None:
    clock = Clock()
    store = make("disk", tmp_path, clock)
    older = sample("cam", "darkest.0", "latest.0", time=clock.now)
    newer = sample("cam", "latest.0", time=clock.now + 5)
    store.put(older, jpegs[0])
    store.put(newer, jpegs[1])
    folder = tmp_path / "evidence" / "cam"
    (folder / f".{new_id()}.jpg.abc.tmp").write_bytes(b"half a file")  # a write cut short
    orphan = new_id()
    (folder / f"{orphan}.jpg").write_bytes(jpegs[2])  # a JPEG whose record never got written
    (folder / "notes.txt").write_text("the operator's own file")
    (tmp_path / "evidence" / "Not A Source").mkdir()

    again = make("disk", tmp_path, clock)
    held = {s.id: s.slots for s in again.samples("cam")}
    assert held == {newer.id: ("latest.0",), older.id: ("darkest.0",)}  # the newer one holds latest
    assert again.total_bytes == store.total_bytes
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{older.id}.jpg", f"{older.id}.json", f"{newer.id}.jpg", f"{newer.id}.json", "notes.txt"])
    assert (tmp_path / "evidence" / "Not A Source").is_dir()


def test_a_restart_applies_a_smaller_cap_and_the_age_limit(tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    store = make("disk", tmp_path, clock, max_bytes=10_000_000)
    for step in range(10):
        store.put(sample("cam", f"low_light.{step}", time=clock.now + step), jpegs[step])
    cap = store.total_bytes // 2
    smaller = make("disk", tmp_path, clock, max_bytes=cap)
    assert smaller.total_bytes <= cap and disk_bytes(tmp_path / "evidence") <= cap
    clock.now += 2 * HOUR
    assert make("disk", tmp_path, clock).count() == 0


def test_read_samples_lists_a_store_without_touching_it(tmp_path: Path, jpegs: list[bytes]) -> None:
    clock = Clock()
    store = make("disk", tmp_path, clock)
    for step in range(3):
        store.put(sample("cam", f"noisiest.{step % 2}", time=clock.now + step), jpegs[step])
    folder = tmp_path / "evidence" / "cam"
    leftover = folder / f".{new_id()}.json.x.tmp"
    leftover.write_text("{")
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    listed = read_samples(tmp_path / "evidence")
    assert [s.time for s in listed] == sorted(s.time for s in listed)
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == before and leftover.exists()
    with pytest.raises(FileNotFoundError):
        read_samples(tmp_path / "nowhere")


def test_under_the_cap_the_moments_conditions_began_go_last(
    store_kind: str, tmp_path: Path, jpegs: list[bytes]
) -> None:
    """An onset cannot be replaced by a later frame; a darkest or latest frame can: those go first."""
    clock = Clock()
    cap = 5 * max(len(j) for j in jpegs)
    if store_kind == "disk":
        store: EvidenceStore = DiskStore(
            tmp_path / "evidence", max_bytes=cap, max_age_seconds=HOUR, lasting_kinds={"low_light"}, clock=clock
        )
    else:
        store = MemoryStore(max_bytes=cap, max_age_seconds=HOUR, lasting_kinds={"low_light"}, clock=clock)
    onset = sample("cam", "low_light.0", time=clock.now)
    store.put(onset, jpegs[0])
    for step in range(1, 40):
        store.put(sample(f"cam-{step % 10}", f"darkest.{step % 2}", time=clock.now + step), jpegs[step % 12])
        assert store.total_bytes <= cap
    assert store.evicted > 0
    assert store.get("cam", onset.id) is not None  # the oldest of all, still kept
