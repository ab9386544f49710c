"""Camera URLs: what is accepted, and credentials never shown in clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision_service.cameras.url import CameraUrlError, mask_url, parse_source, redact


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
    assert parse_source(url, allow_local=True).kind == kind


def test_local_files_resolve_to_absolute_paths(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not checked here")
    assert parse_source("clip.mp4", allow_local=True, base_dir=tmp_path).url == str(video)
    assert parse_source(str(video), allow_local=True).url == str(video)
    assert parse_source(f"file://{video}", allow_local=True).url == str(video)


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
        parse_source(url, allow_local=True)


def test_local_sources_need_permission(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    for url in (str(video), "0", f"file://{video}"):
        with pytest.raises(CameraUrlError, match="not allowed"):
            parse_source(url, allow_local=False)
    assert parse_source("rtsp://cam/s", allow_local=False).kind == "network"


def test_errors_never_contain_the_url() -> None:
    for url in ("ftp://u:Sup3rSecret@h/x", "rtsp://u:Sup3rSecret@h:99999/x", "rtsp://u:Sup3rSecret@"):
        with pytest.raises(CameraUrlError) as info:
            parse_source(url, allow_local=True)
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
