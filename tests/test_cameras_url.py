"""Camera URLs: what is accepted, and credentials never shown in clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision_service.cameras.url import (
    ANY_LOCAL,
    CameraUrlError,
    LocalAccess,
    mask_url,
    mask_urls_in,
    parse_source,
    redact,
)

NO_LOCAL = LocalAccess.within(())


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("rtsp://10.0.0.5:554/stream1", "network"),
        ("rtsps://cam.example.org/live", "network"),
        ("http://127.0.0.1:8080/video.mjpg", "network"),
        ("https://user:pw@example.org/clip.mp4", "network"),
        ("RTSP://Host/Stream", "network"),
        ("rtsp://[::1]:8554/s", "network"),
        ("0", "device"),
        (3, "device"),
    ],
)
def test_accepted_urls(url: str | int, kind: str) -> None:
    assert parse_source(url, local=ANY_LOCAL).kind == kind


def test_local_files_resolve_to_absolute_paths(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not checked here")
    assert parse_source("clip.mp4", local=ANY_LOCAL, base_dir=tmp_path).url == str(video)
    assert parse_source(str(video), local=ANY_LOCAL).url == str(video)
    assert parse_source(f"file://{video}", local=ANY_LOCAL).url == str(video)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://host/x",
        "udp://127.0.0.1:1234",
        "concat:/etc/passwd|/etc/hosts",
        "subfile:,,start,0,end,0,,:/etc/passwd",
        "data:text/plain,hello",
        "rtsp://",
        "rtsp:host/stream",
        "http://host:99999/x",
        "http://host:0/x",
        "rtsp://host/with space",
        "rtsp://host/\nx",
        "rtsp://h/" + "a" * 3000,
        "file://relative/path.mp4",
        "/no/such/video.mp4",
        "64",
        True,
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(CameraUrlError):
        parse_source(url, local=ANY_LOCAL)


def test_local_sources_need_permission(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    for url in (str(video), "0", f"file://{video}"):
        with pytest.raises(CameraUrlError, match=r"not allowed|operator's camera file"):
            parse_source(url, local=NO_LOCAL)
    assert parse_source("rtsp://cam/s", local=NO_LOCAL).kind == "network"


def test_api_cameras_read_only_files_inside_the_allowed_folders(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "videos", tmp_path / "private"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "yard.mp4").write_bytes(b"x")
    (outside / "secrets.txt").write_text("password=hunter2\n" * 40)
    (allowed / "link.mp4").symlink_to(outside / "secrets.txt")
    api = LocalAccess.within([allowed])
    assert parse_source(str(allowed / "yard.mp4"), local=api).url == str(allowed / "yard.mp4")
    escapes = [
        str(outside / "secrets.txt"),  # outside
        str(allowed / ".." / "private" / "secrets.txt"),  # .. out of the folder
        str(allowed / "link.mp4"),  # a symlink out of the folder
        "/proc/self/cwd/pyproject.toml",  # the working directory, through /proc
        "/proc/self/environ",
        "/etc/passwd",
    ]
    for url in escapes:
        with pytest.raises(CameraUrlError) as info:
            parse_source(url, local=api)
        # The same answer whether the file exists or not, and no resolved path: no existence oracle.
        assert str(info.value) == "local files must be inside the folders of VISION_LOCAL_SOURCE_DIRS"
    with pytest.raises(CameraUrlError) as missing:
        parse_source(str(outside / "no-such-file.mp4"), local=api)
    assert str(missing.value) == "local files must be inside the folders of VISION_LOCAL_SOURCE_DIRS"
    with pytest.raises(CameraUrlError, match="no such video file in the folders"):
        parse_source(str(allowed / "gone.mp4"), local=api)
    with pytest.raises(CameraUrlError, match="operator's camera file"):
        parse_source("0", local=api)


def test_a_url_that_is_not_valid_text_is_refused() -> None:
    # A lone surrogate: JSON can carry it in, but no YAML file or JSON answer could hold it.
    with pytest.raises(CameraUrlError, match="not valid Unicode"):
        parse_source("http://127.0.0.1:9/\ud800", local=NO_LOCAL)


def test_errors_never_contain_the_url() -> None:
    for url in ("ftp://u:Sup3rSecret@h/x", "rtsp://u:Sup3rSecret@h:99999/x", "rtsp://u:Sup3rSecret@"):
        with pytest.raises(CameraUrlError) as info:
            parse_source(url, local=ANY_LOCAL)
        assert "Sup3rSecret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/s1", "rtsp://admin:***@10.0.0.5:554/s1"),
        ("rtsp://admin:p%40ss:w@host/s", "rtsp://admin:***@host/s"),
        ("rtsp://a:b@c@host/s", "rtsp://a:***@host/s"),
        ("https://TOKEN123@example.org/cam", "https://***@example.org/cam"),
        ("http://host/video.cgi?user=admin&pwd=hunter2&ch=1", "http://host/video.cgi?user=admin&pwd=***&ch=1"),
        ("http://host/v?Token=abc&Password=x", "http://host/v?Token=***&Password=***"),
        ("rtsp://host:554/plain", "rtsp://host:554/plain"),
        ("rtsp://u:hunter2@host:99999/bad-port", "rtsp://u:***@host:99999/bad-port"),
        ("/videos/demo.mp4", "/videos/demo.mp4"),
        ("0", "0"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redact_scrubs_secrets_from_any_text() -> None:
    url = "rtsp://admin:p%40ss@host/s?token=t0k3n"
    text = f"failed to open {url}: auth p@ss rejected, p%40ss, t0k3n"
    cleaned = redact(text, url)
    for secret in ("p@ss", "p%40ss", "t0k3n"):
        assert secret not in cleaned
    assert "rtsp://admin:***@host/s?token=***" in cleaned


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "[hls] Error when loading first segment 'http://cam:Sup3r@127.0.0.1:8080/seg0.ts'",
            "[hls] Error when loading first segment 'http://cam:***@127.0.0.1:8080/seg0.ts'",
        ),
        (
            'two: "https://TOKEN@example.org/a?x=1" and rtsp://u:p@host/s?pwd=q&ch=1.',
            'two: "https://***@example.org/a?x=1" and rtsp://u:***@host/s?pwd=***&ch=1.',
        ),
        ("rtsp://a:b@c@host/s failed", "rtsp://a:***@host/s failed"),
        ("rtsp://host/s;token=abc", "rtsp://host/s;token=***"),  # a path parameter
        ("http://[::1/x?token=abc", "http://[::1/x?token=***"),  # urlsplit cannot parse it
        ("rtsp://host/s?a=1?Password=x", "rtsp://host/s?a=1?Password=***"),
        ("no URL here, token=abc, /videos/demo.mp4", "no URL here, token=abc, /videos/demo.mp4"),
    ],
)
def test_mask_urls_in_masks_every_url_in_a_text(text: str, masked: str) -> None:
    assert mask_urls_in(text) == masked
