"""/v1/cameras end to end: file, HTTP MJPEG and RTSP sources on a running app with the real model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.infra import wait_for
from tests.streams import (
    RtspServer,
    day_night_frames,
    mjpeg_server,
    parse_samples,
    photographs,
    sample,
    write_frames,
    write_video,
)
from vision_service.api.main import create_app
from vision_service.cameras.snapshot import BOX_COLOR
from vision_service.core.config import Settings

SECRET = "n0t-For-Your-Eyes"


@pytest.fixture(scope="module")
def cameras_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "cameras.yaml"


@pytest.fixture(scope="module")
def api(model_path: str, cameras_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        model=model_path,
        device="cpu",
        cameras_file=cameras_file,
        cameras_persist=True,
        cameras_api="on",  # no API key in these tests: the operator allows changes explicitly
        local_source_dirs=[tmp_path_factory.getbasetemp()],  # the test videos' folder
        max_cameras=4,
        camera_timeout_seconds=2.0,
        camera_reconnect_min_seconds=0.25,
        camera_reconnect_max_seconds=1.0,
    )
    app = create_app(settings, load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of street photographs (people, a bus) at 10 fps."""
    bus, zidane = photographs()[:2]
    return write_video(tmp_path_factory.mktemp("video") / "street.mp4", [bus] * 10 + [zidane] * 10, fps=10)


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    day, night = day_night_frames(frames_per_photo=2)
    return write_frames(tmp_path_factory.mktemp("frames"), [*day, *night])


@pytest.fixture(autouse=True)
def no_cameras_left(api: TestClient) -> Iterator[None]:
    yield
    for camera in api.get("/v1/cameras").json()["cameras"]:
        api.delete(f"/v1/cameras/{camera['id']}")


def camera(api: TestClient, camera_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/cameras/{camera_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def processed(api: TestClient, camera_id: str, at_least: int = 2) -> dict[str, Any] | None:
    body = camera(api, camera_id)
    return body if body["frames"]["processed"] >= at_least and body["last"] is not None else None


def metrics(api: TestClient) -> str:
    return api.get("/metrics").text


def test_file_camera_added_listed_inspected_and_removed(api: TestClient, video: Path, cameras_file: Path) -> None:
    response = api.post("/v1/cameras", json={"id": "lobby", "url": str(video), "fps": 5, "loop": True})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/cameras/lobby"
    assert response.json()["url"] == str(video)
    assert [c["id"] for c in api.get("/v1/cameras").json()["cameras"]] == ["lobby"]
    assert yaml.safe_load(cameras_file.read_text())["cameras"] == [
        {"id": "lobby", "url": str(video), "fps": 5, "loop": True}
    ]
    assert "lobby" in api.app.state.service.sources  # type: ignore[attr-defined]

    body = wait_for(lambda: processed(api, "lobby", at_least=12), timeout=60, what="frames of the looping file")
    assert body["status"] == "up" and body["up"] is True
    assert set(body["last"]["quality"]) >= {"brightness", "sharpness", "noise_sigma"}
    assert body["last"]["detections"] >= 1
    assert body["last"]["image"] == {"width": 640, "height": 480}
    assert body["measured_fps"] > 0

    snapshot = api.get("/v1/cameras/lobby/snapshot")
    assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    # The boxes are drawn in magenta, a colour the photographs themselves hardly contain.
    near_box = np.all(np.abs(image.astype(int) - BOX_COLOR) < 60, axis=2).sum()
    in_photos = max(int(np.all(np.abs(p.astype(int) - BOX_COLOR) < 60, axis=2).sum()) for p in photographs()[:2])
    assert near_box > in_photos + 500

    s = parse_samples(metrics(api))
    assert sample(s, "vision_camera_up", camera="lobby") == 1
    assert (sample(s, "vision_camera_frames_total", camera="lobby", outcome="processed") or 0) >= 12
    assert sample(s, "vision_camera_frames_total", camera="lobby", outcome="failed") == 0
    assert (sample(s, "vision_camera_fps", camera="lobby") or 0) > 0
    assert (sample(s, "vision_camera_last_frame_timestamp_seconds", camera="lobby") or 0) > 1.7e9
    assert sample(s, "vision_camera_reconnects_total", camera="lobby") == 0  # looping is not reconnecting

    assert api.delete("/v1/cameras/lobby").status_code == 204
    gone = api.get("/v1/cameras/lobby")
    assert gone.status_code == 404 and gone.json()["error"] == "camera_not_found"
    assert api.get("/v1/cameras/lobby/snapshot").status_code == 404
    assert 'camera="lobby"' not in metrics(api)  # every vision_camera_* series of it is gone
    assert "lobby" not in api.app.state.service.sources  # type: ignore[attr-defined]
    assert yaml.safe_load(cameras_file.read_text())["cameras"] == []


def test_file_without_loop_ends(api: TestClient, video: Path) -> None:
    assert api.post("/v1/cameras", json={"id": "once", "url": str(video), "fps": 2}).status_code == 201
    body = wait_for(lambda: (b := camera(api, "once"))["status"] == "ended" and b, timeout=30, what="the file to end")
    assert body["up"] is False and body["frames"]["processed"] >= 1 and body["reconnects"] == 0
    assert sample(parse_samples(metrics(api)), "vision_camera_up", camera="once") == 0


def test_http_mjpeg_camera(api: TestClient, frames_folder: Path, tmp_path: Path) -> None:
    with mjpeg_server(frames_folder, tmp_path / "ffmpeg.log") as address:
        url = f"http://viewer:{SECRET}@{address}"
        response = api.post("/v1/cameras", json={"id": "dock", "url": url, "fps": 3})
        assert response.status_code == 201, response.text
        assert response.json()["url"] == f"http://viewer:***@{address}"
        body = wait_for(lambda: processed(api, "dock"), timeout=60, what="frames over HTTP MJPEG")
        assert body["status"] == "up"
        assert api.get("/v1/cameras/dock/snapshot").status_code == 200
    # ffmpeg -listen serves one client: once it is gone the camera goes down and retries.
    wait_for(lambda: camera(api, "dock")["status"] == "reconnecting", timeout=30, what="the camera to go down")


def test_rtsp_password_never_leaks(
    api: TestClient,
    frames_folder: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with RtspServer(frames_folder, tmp_path / "rtsp.log", user="viewer", password=SECRET) as server:
        good = api.post("/v1/cameras", json={"id": "yard", "url": server.url("viewer", SECRET), "fps": 2})
        bad = api.post("/v1/cameras", json={"id": "yard-2", "url": server.url("viewer", SECRET + "x"), "fps": 2})
        assert good.status_code == bad.status_code == 201
        wait_for(lambda: processed(api, "yard"), timeout=60, what="frames with the right password")
        wrong = wait_for(lambda: (b := camera(api, "yard-2"))["reconnects"] >= 2 and b, timeout=30, what="retries")
        assert wrong["status"] == "reconnecting" and wrong["error"].startswith("could not open the stream")
        refused = [
            api.post("/v1/cameras", json={"id": "x", "url": f"ftp://viewer:{SECRET}@127.0.0.1/x"}),
            api.post("/v1/cameras", json={"id": "x", "url": f"rtsp://viewer:{SECRET}@127.0.0.1:99999/x"}),
            api.post("/v1/cameras", json={"id": "Bad Id", "url": f"rtsp://viewer:{SECRET}@127.0.0.1/x"}),
            api.post("/v1/cameras", json={"id": "yard", "url": server.url("viewer", SECRET)}),
        ]
        assert [r.status_code for r in refused] == [400, 400, 400, 409]
        seen = [
            good.text,
            bad.text,
            *(r.text for r in refused),
            api.get("/v1/cameras").text,
            api.get("/v1/cameras/yard").text,
            api.get("/v1/cameras/yard-2").text,
            metrics(api),
            api.get("/openapi.json").text,
        ]
        assert camera(api, "yard")["url"] == f"rtsp://viewer:***@127.0.0.1:{server.port}/stream"
        api.delete("/v1/cameras/yard-2")
    captured = capfd.readouterr()  # what OpenCV and FFmpeg printed natively, too
    seen += [caplog.text, captured.out, captured.err]
    assert caplog.text  # the cameras did log (connects, failures)
    for text in seen:
        assert SECRET not in text


@pytest.mark.parametrize(
    "body",
    [
        {"url": "rtsp://127.0.0.1/s"},
        {"id": "Front Door", "url": "rtsp://127.0.0.1/s"},
        {"id": "a" * 64, "url": "rtsp://127.0.0.1/s"},
        {"id": "upload", "url": "rtsp://127.0.0.1/s"},
        {"id": "cam", "url": "ftp://127.0.0.1/s"},
        {"id": "cam", "url": "concat:/etc/passwd|/etc/hosts"},
        {"id": "cam", "url": "rtsp://"},
        {"id": "cam", "url": "/no/such/video.mp4"},
        {"id": "cam", "url": 3.5},
        {"id": "cam", "url": "rtsp://127.0.0.1/s", "fps": 0},
        {"id": "cam", "url": "rtsp://127.0.0.1/s", "fps": 1000},
        {"id": "cam", "url": "rtsp://127.0.0.1/s", "loop": True},
        {"id": "cam", "url": "rtsp://127.0.0.1/s", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_invalid_cameras_are_refused_with_400(api: TestClient, body: object) -> None:
    response = api.post("/v1/cameras", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_camera" and response.json()["detail"]
    assert api.get("/v1/cameras").json()["cameras"] == []


def test_malformed_bodies_unknown_ids_and_limits(api: TestClient) -> None:
    response = api.post("/v1/cameras", content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_camera")
    # The upload reader with the camera routes' own 16 kB cap: too large, and not a rejected image.
    response = api.post("/v1/cameras", content=b"x" * 20000, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert 'outcome="rejected"' not in api.get("/metrics").text
    for method, path in (
        ("GET", "/v1/cameras/nope"),
        ("DELETE", "/v1/cameras/nope"),
        ("GET", "/v1/cameras/x/snapshot"),
    ):
        response = api.request(method, path)
        assert (response.status_code, response.json()["error"]) == (404, "camera_not_found")

    for i in range(4):  # disabled cameras count towards max_cameras (4 here) and read nothing
        body = {"id": f"off-{i}", "url": f"rtsp://127.0.0.1:9/{i}", "enabled": False}
        assert api.post("/v1/cameras", json=body).status_code == 201
    assert camera(api, "off-0")["status"] == "disabled"
    assert api.get("/v1/cameras/off-0/snapshot").json()["error"] == "no_frame"
    full = api.post("/v1/cameras", json={"id": "one-more", "url": "rtsp://127.0.0.1:9/x"})
    assert (full.status_code, full.json()["error"]) == (409, "too_many_cameras")
    again = api.post("/v1/cameras", json={"id": "off-0", "url": "rtsp://127.0.0.1:9/x"})
    assert (again.status_code, again.json()["error"]) == (409, "camera_exists")
    # Camera management errors are not refused images.
    assert "invalid_camera" not in metrics(api) and "camera_exists" not in metrics(api)


def test_add_remove_cycles_leave_no_threads(api: TestClient, video: Path) -> None:
    def readers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("camera-cycle")]

    for i in range(20):
        camera_id = f"cycle-{i % 3}"
        assert api.post("/v1/cameras", json={"id": camera_id, "url": str(video), "fps": 5}).status_code == 201
        if i % 4 == 0:  # some removed while reading, others while still opening
            wait_for(lambda cid=camera_id: camera(api, cid)["up"], timeout=30, what="the camera to come up")
        assert api.delete(f"/v1/cameras/{camera_id}").status_code == 204
    wait_for(lambda: not readers(), timeout=30, what="reader threads to end")
    assert 'camera="cycle-' not in metrics(api)


def test_cameras_file_is_loaded_at_start(model_path: str, video: Path, tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  - id: hall\n    url: {video}\n    fps: 2\n    loop: true\n")
    app = create_app(Settings(model=model_path, device="cpu", cameras_file=path), load_model=False)
    with TestClient(app) as client:
        assert [c["id"] for c in client.get("/v1/cameras").json()["cameras"]] == ["hall"]
        assert "hall" in app.state.service.sources
    path.write_text("cameras:\n  - id: Hall\n    url: rtsp://u:pw@h/s\n")
    with (
        pytest.raises(ValueError, match="camera #1"),
        TestClient(create_app(Settings(cameras_file=path), load_model=False)),
    ):
        pass
