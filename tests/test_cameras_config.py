"""The camera file: validation with safe messages, and atomic rewrites that keep permissions."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import yaml

from vision_service.cameras.config import (
    Camera,
    CameraConfigError,
    InvalidCamera,
    load_cameras,
    parse_camera,
    remove_stale_temporaries,
    save_cameras,
)
from vision_service.cameras.url import ANY_LOCAL

SECRET = "Pa55-w0rd"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_cameras_with_defaults_and_relative_files(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "demo.mp4").write_bytes(b"x")
    path = write(
        tmp_path / "cameras.yaml",
        f"""
cameras:
  - id: street
    url: rtsp://viewer:{SECRET}@10.0.0.5/stream1
    fps: 2
  - id: demo
    url: videos/demo.mp4
    loop: true
    enabled: false
  - id: usb
    url: 0
""",
    )
    street, demo, usb = load_cameras(path)
    assert isinstance(street, Camera) and isinstance(demo, Camera) and isinstance(usb, Camera)
    assert (street.id, street.fps, street.enabled, street.loop) == ("street", 2.0, True, False)
    assert street.masked_url == "rtsp://viewer:***@10.0.0.5/stream1"
    assert SECRET not in repr(street) and SECRET not in str(street.public())
    assert demo.url == str(tmp_path / "videos" / "demo.mp4") and demo.loop and not demo.enabled
    assert demo.fps == 1.0
    assert usb.url == "0" and usb.source().kind == "device"


def test_a_bare_list_and_an_empty_file_are_accepted(tmp_path: Path) -> None:
    assert load_cameras(write(tmp_path / "a.yaml", "- {id: a, url: 'rtsp://h/s'}\n"))[0].id == "a"
    assert load_cameras(write(tmp_path / "b.yaml", "")) == []
    assert load_cameras(write(tmp_path / "c.yaml", "cameras:\n")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"cameras:\n  - id: Bad Id\n    url: rtsp://u:{SECRET}@h/s\n", "id: String should match pattern"),
        (f"cameras:\n  - id: upload\n    url: rtsp://u:{SECRET}@h/s\n", "reserved"),
        ("cameras:\n  - id: a\n    url: rtsp://h/1\n  - id: a\n    url: rtsp://h/2\n", "duplicate id"),
        (f"cameras:\n  - id: ok\n    url: 'rtsp://u:{SECRET}@h/s\n", "not valid YAML at line"),
        (f"cameras:\n  - id: ok\n    url: rtsp://u:{SECRET}@h/s\n  bad: [\n", "not valid YAML"),
        ("cameras: {id: a}\n", "expected a list"),
        ("devices: []\n", "unknown top-level keys"),
        ("cameras:\n  - just a string\n", "must be an object"),
    ],
)
def test_a_file_that_is_not_a_list_of_cameras_is_refused_without_showing_urls(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path / "cameras.yaml", text)
    with pytest.raises(CameraConfigError) as info:
        load_cameras(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (f"url: ftp://u:{SECRET}@h/s", "url: unsupported scheme 'ftp'"),
        (f"url: rtsp://u:{SECRET}@h/s\n    fps: 0", "fps: Input should be greater than 0"),
        (f"url: rtsp://u:{SECRET}@h/s\n    fps: 31", "fps: Input should be less"),
        (f"url: rtsp://u:{SECRET}@h/s\n    colour: red", "colour: Extra inputs"),
        (f"url: rtsp://u:{SECRET}@h/s\n    loop: true", "local video files only"),
        ("url: videos/gone.mp4", "no such video file: videos/gone.mp4"),
    ],
)
def test_a_camera_that_cannot_run_as_written_is_listed_invalid_not_a_failed_start(
    tmp_path: Path, entry: str, expected: str
) -> None:
    path = write(
        tmp_path / "cameras.yaml",
        f"cameras:\n  - id: street\n    url: rtsp://h/s\n    fps: 1\n  - id: bad\n    {entry}\n",
    )
    street, bad = load_cameras(path)
    assert isinstance(street, Camera) and isinstance(bad, InvalidCamera)
    assert bad.id == "bad" and expected in bad.error and SECRET not in bad.error
    assert SECRET not in str(bad.public()) and not bad.public()["enabled"]
    written = yaml.safe_load(path.read_text())["cameras"]
    save_cameras(path, [street, bad])  # a rewrite keeps the entry as written, for the operator to fix
    assert yaml.safe_load(path.read_text())["cameras"] == written


def test_interrupted_writes_leave_temporaries_that_are_cleaned(tmp_path: Path) -> None:
    path = write(tmp_path / "cameras.yaml", "cameras: []\n")
    leftover = tmp_path / ".cameras.yaml.abc123.tmp"
    leftover.write_text("cameras: [half")
    unrelated = tmp_path / ".other.yaml.x.tmp"
    unrelated.write_text("")
    assert remove_stale_temporaries(path) == [leftover]
    assert not leftover.exists() and unrelated.exists() and path.exists()


def test_save_round_trips_and_is_atomic(tmp_path: Path) -> None:
    (tmp_path / "demo.mp4").write_bytes(b"x")
    cameras = [
        parse_camera({"id": "street", "url": f"rtsp://u:{SECRET}@h/s", "fps": 2}, local=ANY_LOCAL),
        parse_camera(
            {"id": "demo", "url": str(tmp_path / "demo.mp4"), "fps": 0.5, "loop": True, "enabled": False},
            local=ANY_LOCAL,
        ),
    ]
    path = tmp_path / "conf" / "cameras.yaml"
    save_cameras(path, cameras)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # new file: URLs may hold passwords
    assert load_cameras(path) == cameras
    assert yaml.safe_load(path.read_text())["cameras"][0] == {"id": "street", "url": f"rtsp://u:{SECRET}@h/s", "fps": 2}

    os.chmod(path, 0o640)
    save_cameras(path, cameras[:1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # an existing file keeps its permissions
    assert [c.id for c in load_cameras(path)] == ["street"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["cameras.yaml"]  # no temporary files left


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    many = [parse_camera({"id": f"cam-{i}", "url": f"rtsp://h/{i}" * 20}, local=ANY_LOCAL) for i in range(100)]
    small = many[:1]
    save_cameras(path, small)
    seen: set[int] = set()
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(len(load_cameras(path)))
            except Exception as exc:
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(10):
        save_cameras(path, many)
        save_cameras(path, small)
    stop.set()
    reader.join()
    assert not errors
    assert seen <= {1, 100}


def test_symlinked_file_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    link = tmp_path / "cameras.yaml"
    save_cameras(real, [])
    link.symlink_to(real)
    save_cameras(link, [Camera.model_validate({"id": "a", "url": "rtsp://h/s"})])
    assert link.is_symlink()
    assert [c.id for c in load_cameras(real)] == ["a"]
