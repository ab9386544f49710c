"""Camera sharding: with N replicas and one camera list, every camera is read by exactly one replica,
and when a replica leaves, its cameras (and only its) move to the survivors.

The live test runs three real `vision-service serve` processes on 127.0.0.1 with the same camera
file (looping videos of real photographs) and a member list they re-read (``file:`` peers).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.infra import http_json, service_process, wait_for
from tests.streams import parse_samples, photographs, sample, write_video
from vision_service.cameras.sharding import ShardConfigError, owner, parse_shard
from vision_service.core.config import Settings

CAMERA_IDS = [f"cam-{i:03d}" for i in range(1000)]


# --- rendezvous hashing ---------------------------------------------------------------------------


def test_every_camera_has_exactly_one_owner_and_all_replicas_agree() -> None:
    members = ["0", "1", "2"]
    owners = {camera: owner(camera, members) for camera in CAMERA_IDS}
    # The order a replica happens to list the members in does not matter.
    assert owners == {camera: owner(camera, list(reversed(members))) for camera in CAMERA_IDS}
    load = Counter(owners.values())
    assert set(load) == set(members)
    assert all(250 <= n <= 420 for n in load.values()), load  # about a third each
    assert owner("cam-001", []) is None


def test_when_a_replica_leaves_only_its_cameras_move() -> None:
    before = {camera: owner(camera, ["0", "1", "2"]) for camera in CAMERA_IDS}
    after = {camera: owner(camera, ["0", "1"]) for camera in CAMERA_IDS}
    moved = {camera for camera in CAMERA_IDS if before[camera] != after[camera]}
    assert moved == {camera for camera in CAMERA_IDS if before[camera] == "2"}
    assert Counter(after[camera] for camera in moved).keys() == {"0", "1"}  # spread, not dumped on one


def test_a_new_replica_takes_about_its_share() -> None:
    before = {camera: owner(camera, ["0", "1", "2"]) for camera in CAMERA_IDS}
    after = {camera: owner(camera, ["0", "1", "2", "3"]) for camera in CAMERA_IDS}
    moved = [camera for camera in CAMERA_IDS if before[camera] != after[camera]]
    assert all(after[camera] == "3" for camera in moved)
    assert 180 <= len(moved) <= 320  # about 1/4


# --- member lists ---------------------------------------------------------------------------------


def test_count_peers_are_ordinals(tmp_path: Path) -> None:
    shard = parse_shard("1", "count:3")
    assert shard.members() == {"0", "1", "2"}
    assert shard.owns("x", frozenset({"1"})) and not shard.owns("x", frozenset({"0"}))


def test_file_peers_are_read_again_each_time(tmp_path: Path) -> None:
    path = tmp_path / "members"
    path.write_text("0\n1\n# 2 is down\n\n")
    shard = parse_shard("0", f"file:{path}")
    assert shard.members() == {"0", "1"}
    path.write_text("0\n1\n2\n")
    assert shard.members() == {"0", "1", "2"}
    path.unlink()
    with pytest.raises(OSError):
        shard.members()


def test_dns_peers_are_the_addresses_a_name_resolves_to_in_the_replicas_family() -> None:
    members = parse_shard("127.0.0.1", "dns:localhost").members()
    assert "127.0.0.1" in members
    assert all(":" not in member for member in members)  # an IPv4 replica never counts IPv6 peers


@pytest.mark.parametrize(
    ("self_id", "peers", "message"),
    [
        ("0", "count:0", "between 1 and"),
        ("0", "count:three", "not a whole number"),
        ("0", "zookeeper:x", "count:N, file:PATH or dns:NAME"),
        ("0", "count:", "count:N, file:PATH or dns:NAME"),
        (" ", "count:2", "VISION_SHARD_ID is required"),
    ],
)
def test_malformed_shard_settings_are_refused(self_id: str, peers: str, message: str) -> None:
    with pytest.raises(ShardConfigError, match=message):
        parse_shard(self_id, peers)


def test_settings_need_an_id_with_peers_and_no_persisting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="VISION_SHARD_ID"):
        Settings(shard_peers="count:2")
    with pytest.raises(ValueError, match="VISION_CAMERAS_PERSIST"):
        Settings(shard_peers="count:2", shard_id="0", cameras_persist=True, cameras_file=tmp_path / "c.yml")
    with pytest.raises(ValueError, match="shard_peers"):
        Settings(shard_peers="etcd://x", shard_id="0")


# --- three replicas -------------------------------------------------------------------------------


def cameras_on(base: str) -> set[str]:
    """The cameras whose series a replica exports (what Prometheus would scrape from it)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        samples = parse_samples(response.read().decode())
    return {dict(labels)["camera"] for (name, labels) in samples if name == "vision_camera_up"}


def processed(base: str, camera: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        samples = parse_samples(response.read().decode())
    return sample(samples, "vision_camera_frames_total", camera=camera, outcome="processed") or 0.0


def pick_cameras() -> list[str]:
    """Six camera ids, two owned by each of members 0, 1 and 2."""
    picked: dict[str, list[str]] = {"0": [], "1": [], "2": []}
    for camera in (f"door-{i}" for i in range(100)):
        member = owner(camera, picked)
        assert member is not None
        if len(picked[member]) < 2:
            picked[member].append(camera)
    return sorted(c for cams in picked.values() for c in cams)


def test_three_replicas_read_each_camera_once_and_survivors_take_over(model_path: str, tmp_path: Path) -> None:
    bus, zidane = photographs(size=(320, 240))[:2]
    video = write_video(tmp_path / "street.mp4", [bus] * 5 + [zidane] * 5, fps=5)
    cameras = pick_cameras()
    camera_file = tmp_path / "cameras.yml"
    camera_file.write_text(
        "cameras:\n" + "".join(f"  - {{id: {c}, url: {video}, fps: 1, loop: true}}\n" for c in cameras)
    )
    members = tmp_path / "members"
    members.write_text("0\n1\n2\n")

    def env(ordinal: int) -> dict[str, str]:
        return {
            "VISION_CAMERAS_FILE": str(camera_file),
            "VISION_SHARD_PEERS": f"file:{members}",
            "VISION_SHARD_ID": str(ordinal),
            "VISION_SHARD_REFRESH_SECONDS": "1",
            "VISION_IMAGE_SIZE": "160",
            "VISION_CAMERAS_API": "on",  # so that the refusal below is the sharding one
        }

    with ExitStack() as stack:
        replicas = [stack.enter_context(service_process(tmp_path, model=model_path, env=env(i))) for i in range(3)]
        bases = [base for base, _ in replicas]

        # Each camera appears in exactly one replica's metrics, the one rendezvous hashing names.
        owned = [cameras_on(base) for base in bases]
        assert sorted(c for cams in owned for c in cams) == cameras
        for ordinal, cams in enumerate(owned):
            assert cams == {c for c in cameras if owner(c, ["0", "1", "2"]) == str(ordinal)}
            view = http_json(f"{bases[ordinal]}/v1/cameras")
            assert {c["id"] for c in view["cameras"]} == cams
            assert view["shard"]["members"] == ["0", "1", "2"]
            assert view["shard"]["cameras_configured"] == len(cameras)
        for camera in cameras:
            reader = bases[[camera in cams for cams in owned].index(True)]
            wait_for(lambda b=reader, c=camera: processed(b, c) > 0, timeout=60, what=f"{camera} processed")

        # The file is the one list: a replica refuses to add or remove cameras over the API.
        request = urllib.request.Request(
            f"{bases[0]}/v1/cameras", data=b'{"id": "extra", "url": "rtsp://127.0.0.1:9/x"}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 409

        # Replica 2 goes away and the member list says so: its cameras move to 0 and 1, the others stay.
        _, third = replicas[2]
        third.terminate()
        third.wait(timeout=30)
        members.write_text("0\n1\n")
        survivors = bases[:2]

        def moved() -> bool:
            now = [cameras_on(base) for base in survivors]
            return sorted(c for cams in now for c in cams) == cameras

        wait_for(moved, timeout=30, what="replica 2's cameras to move to the survivors")
        after = [cameras_on(base) for base in survivors]
        assert owned[0] <= after[0] and owned[1] <= after[1]
        assert after[0] | after[1] == set(cameras) and not after[0] & after[1]
        for camera in owned[2]:
            reader = survivors[[camera in cams for cams in after].index(True)]
            wait_for(lambda b=reader, c=camera: processed(b, c) > 0, timeout=60, what=f"{camera} read again")
        for base in survivors:  # each survivor's own refresh sees the member leave (not only the one taking over)
            wait_for(lambda b=base: http_json(f"{b}/v1/cameras")["shard"]["members"] == ["0", "1"], timeout=30,
                     what="every survivor to see two members")  # fmt: skip
