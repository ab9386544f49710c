"""Tried as an attacker would, against the real service and real FFmpeg: each weakness found in a
review of the defaults, and the behaviour that closes it (docs/security.md is the threat model).

The app runs in-process where its routes are the subject, and as a real ``vision-service serve``
process where the subject is the server itself (headers, slow clients, memory, shutdown, logs).
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image
from ultralytics.utils import ASSETS

from tests.infra import http_status, service_process, wait_for
from tests.streams import HttpCameraServer, photographs, self_signed_certificate, write_video
from vision_service.api.main import create_app
from vision_service.core.config import Settings

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}
FAST = {"VISION_IMAGE_SIZE": "160"}  # detections are not the subject here


@contextlib.contextmanager
def app_client(model_path: str, **settings: Any) -> Iterator[TestClient]:
    """The app in this process with these settings, model loaded, cameras started; stopped on exit."""
    app = create_app(Settings(model=model_path, device="cpu", image_size=160, **settings), load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        yield client


def post_camera(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/v1/cameras", json=body, headers=headers)


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The process's resident memory (VmRSS) or its peak so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


# -- 1. local files through camera snapshots ---------------------------------------------------


def test_by_default_no_client_can_add_or_remove_cameras(model_path: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("db_password=hunter2\n" * 40)
    with app_client(model_path) as client:
        for url in (str(tmp_path / "notes.txt"), "rtsp://127.0.0.1:9/x"):
            response = post_camera(client, {"id": "x", "url": url})
            assert (response.status_code, response.json()["error"]) == (403, "camera_changes_disabled")
        assert client.delete("/v1/cameras/x").status_code == 403
        assert client.get("/v1/cameras").json()["cameras"] == []


def test_api_cameras_cannot_name_local_files_and_errors_never_tell_what_exists(model_path: str) -> None:
    # Changes allowed without a key, but no folder allowed for local files: the service's own
    # working directory, /proc and a missing path all get the same answer, with no path in it.
    with app_client(model_path, cameras_api="on") as client:
        answers = set()
        for url in ("/proc/self/cwd/pyproject.toml", "/proc/self/environ", "/etc/passwd", "/no/such/file.mp4", "0"):
            response = post_camera(client, {"id": "probe", "url": url})
            assert response.status_code == 400
            answers.add(response.json()["detail"])
            assert "/proc" not in response.text and "/work" not in response.text and "/etc" not in response.text
        assert len(answers) == 2  # "no local files over the API", and "no devices over the API"
        assert client.get("/v1/cameras").json()["cameras"] == []


def test_a_text_file_or_an_image_in_an_allowed_folder_never_becomes_a_frame(model_path: str, tmp_path: Path) -> None:
    """FFmpeg's tty demuxer renders a text file of 400+ characters as video and image2 reads
    still images: only video containers are allowed for local files."""
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "notes.txt").write_text("db_password=hunter2 " * 100)
    cv2.imwrite(str(folder / "still.jpg"), photographs()[0])
    write_video(folder / "yard.mp4", photographs()[:1] * 10, fps=10)
    with app_client(model_path, api_key=KEY, local_source_dirs=[folder], camera_timeout_seconds=2.0) as client:
        for camera_id, name in (("text", "notes.txt"), ("still", "still.jpg"), ("video", "yard.mp4")):
            body = {"id": camera_id, "url": str(folder / name), "loop": True}
            assert post_camera(client, body, **AUTH).status_code == 201

        def video_processed() -> bool:
            return bool(client.get("/v1/cameras/video", headers=AUTH).json()["frames"]["processed"] >= 2)

        wait_for(video_processed, timeout=60, what="the real video's frames")  # the twin: a video is read
        for camera_id in ("text", "still"):
            view = client.get(f"/v1/cameras/{camera_id}", headers=AUTH).json()
            assert not view["up"] and view["frames"]["processed"] == 0, view
            assert view["error"].startswith("could not open the stream") and str(folder) not in view["error"]
            snapshot = client.get(f"/v1/cameras/{camera_id}/snapshot", headers=AUTH)
            assert (snapshot.status_code, snapshot.json()["error"]) == (404, "no_frame")


# -- 2. memory per request, and 3. decode CPU ----------------------------------------------------


def flat_png(width: int, height: int) -> bytes:
    """A flat grey PNG: a few hundred kB that decode to width x height x 3 bytes."""
    ok, buffer = cv2.imencode(".png", np.full((height, width, 3), 90, np.uint8))
    assert ok
    return buffer.tobytes()


def test_decoded_pixels_are_bounded_per_request_and_for_the_whole_process(model_path: str, tmp_path: Path) -> None:
    big = flat_png(8000, 5000)  # 40 MP, the per-image limit
    with service_process(tmp_path, model=model_path, env=FAST) as (base, proc):
        before = rss_mib(proc.pid)
        body = (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="image"; filename="%d.png"\r\n'
                b"Content-Type: image/png\r\n\r\n" % i + big + b"\r\n"
                for i in range(8)
            )
            + b"--b--\r\n"
        )
        request = urllib.request.Request(
            f"{base}/v1/detect/batch", data=body, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 413 and json.loads(refused.value.read())["error"] == "too_many_pixels"
        assert rss_mib(proc.pid) - before < 100  # refused from the headers: nothing was decoded

        # Eight clients at once, one 40 MP image each: what fits the process budget is decoded, the
        # rest is refused at once; the peak stays far below eight decoded images (~3 GB).
        outcomes: list[tuple[int, str]] = []

        def upload() -> None:
            one = urllib.request.Request(f"{base}/v1/detect", data=big, headers={"content-type": "image/png"})
            try:
                with urllib.request.urlopen(one, timeout=300) as response:
                    outcomes.append((response.status, "ok"))
            except urllib.error.HTTPError as exc:
                outcomes.append((exc.code, json.loads(exc.read())["error"]))

        threads = [threading.Thread(target=upload) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(outcomes) <= {(200, "ok"), (503, "pixel_budget_full")}, outcomes
        assert (200, "ok") in outcomes and (503, "pixel_budget_full") in outcomes
        assert rss_mib(proc.pid) - before < 1024, f"peak {rss_mib(proc.pid) - before:.0f} MiB above the start"
        assert http_status(f"{base}/readyz") == 200
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
        assert 'reason="pixel_budget_full"' in metrics and "vision_pixels_in_flight 0.0" in metrics


def many_scans(repeats: int) -> bytes:
    """A progressive JPEG of a flat 3000x3000 image with one of its tiny scans repeated ``repeats``
    times: each copy costs the decoder another pass over the whole image."""
    out = io.BytesIO()
    Image.new("RGB", (3000, 3000), (90, 120, 150)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    scans, pos = [], 2
    while data[pos + 1] != 0xD9:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        start, pos = pos, pos + 2 + length
        if data[start + 1] == 0xDA:  # skip the entropy-coded data to the next marker
            while data[pos] != 0xFF or data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7:
                pos += 1
            scans.append(data[start:pos])
    smallest = min(scans, key=len)
    return data[:pos] + smallest * repeats + data[pos:]


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding(client: TestClient) -> None:
    crafted = many_scans(5000)
    assert len(crafted) < 200_000  # a small upload...
    response = client.post("/v1/detect", content=crafted, headers={"content-type": "image/jpeg"})
    assert response.status_code == 413, response.text  # ...that would cost seconds of CPU to decode
    assert response.json()["error"] == "too_many_scans" and "scans; the limit is 64" in response.json()["detail"]
    # The twin: an ordinary progressive JPEG (10 scans) is decoded as before.
    out = io.BytesIO()
    Image.open(ASSETS / "bus.jpg").save(out, "JPEG", progressive=True)
    assert client.post("/v1/detect", content=out.getvalue(), headers={"content-type": "image/jpeg"}).status_code == 200


# -- 4. camera frames and the pixel limit ---------------------------------------------------------


def test_camera_frames_larger_than_the_pixel_limit_are_failed_not_processed(model_path: str, tmp_path: Path) -> None:
    large = write_video(tmp_path / "large.mp4", photographs((1600, 1200))[:1] * 10, fps=10)  # 1.92 MP
    small = write_video(tmp_path / "small.mp4", photographs((640, 480))[:1] * 10, fps=10)
    cameras = tmp_path / "cameras.yaml"
    listed = [{"id": "big", "url": str(large), "loop": True, "fps": 5}, {"id": "ok", "url": str(small), "loop": True}]
    cameras.write_text(yaml.safe_dump({"cameras": listed}))
    with app_client(model_path, cameras_file=cameras, max_image_pixels=1_000_000) as client:
        wait_for(lambda: client.get("/v1/cameras/big").json()["frames"]["failed"] >= 2, timeout=60, what="big frames")
        wait_for(lambda: client.get("/v1/cameras/ok").json()["frames"]["processed"] >= 2, timeout=60, what="ok frames")
        big = client.get("/v1/cameras/big").json()
        assert big["frames"]["processed"] == 0 and "1600x1200 = 1920000 pixels; the limit is 1000000" in big["error"]


# -- 5. persisted cameras that cannot run, and 6. URLs that are not text ----------------------------


def test_a_persisted_camera_whose_file_is_gone_does_not_stop_the_next_start(model_path: str, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    video = write_video(folder / "yard.mp4", photographs()[:1] * 10, fps=10)
    cameras = tmp_path / "cameras.yaml"
    settings = {"api_key": KEY, "local_source_dirs": [folder], "cameras_file": cameras, "cameras_persist": True}
    with app_client(model_path, **settings) as client:
        assert post_camera(client, {"id": "yard", "url": str(video), "enabled": False}, **AUTH).status_code == 201
        assert (
            post_camera(client, {"id": "door", "url": "rtsp://127.0.0.1:9/door", "enabled": False}, **AUTH).status_code
            == 201
        )
    video.unlink()
    (tmp_path / ".cameras.yaml.x1y2.tmp").write_text("cameras: [")  # an interrupted write
    with app_client(model_path, **settings) as client:  # starts: the missing file is a listed problem
        views = {c["id"]: c for c in client.get("/v1/cameras", headers=AUTH).json()["cameras"]}
        assert views["yard"]["status"] == "invalid" and "no such video file" in views["yard"]["error"]
        assert views["door"]["status"] == "disabled"
        assert not (tmp_path / ".cameras.yaml.x1y2.tmp").exists()
        assert client.delete("/v1/cameras/yard", headers=AUTH).status_code == 204  # and can be removed
    assert [c["id"] for c in yaml.safe_load(cameras.read_text())["cameras"]] == ["door"]


def test_a_url_that_is_not_text_is_refused_and_never_stored(model_path: str, tmp_path: Path) -> None:
    cameras = tmp_path / "cameras.yaml"
    with app_client(model_path, api_key=KEY, cameras_file=cameras, cameras_persist=True) as client:
        body = b'{"id": "bad", "url": "http://127.0.0.1:9/\\ud800"}'  # a lone surrogate, valid JSON
        response = client.post("/v1/cameras", content=body, headers={**AUTH, "content-type": "application/json"})
        assert (response.status_code, response.json()["error"]) == (400, "invalid_camera")
        listing = client.get("/v1/cameras", headers=AUTH)
        assert listing.status_code == 200 and listing.json()["cameras"] == []
    assert not cameras.exists() or "bad" not in cameras.read_text()


# -- 7. removed cameras leave nothing behind ------------------------------------------------------


def test_a_removed_camera_leaves_no_series_and_no_learned_baseline(model_path: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / "yard.mp4", photographs()[:2] * 5, fps=10)
    baselines = tmp_path / "baselines"
    settings = {"api_key": KEY, "local_source_dirs": [tmp_path], "baseline_dir": baselines,
                "baseline_learn_frames": 3}  # fmt: skip
    with app_client(model_path, **settings) as client:
        sizes = []
        for cycle in range(6):
            camera_id = f"cycle-{cycle}"
            assert (
                post_camera(client, {"id": camera_id, "url": str(video), "fps": 10, "loop": True}, **AUTH).status_code
                == 201
            )
            wait_for(lambda c=camera_id: (baselines / f"{c}.json").exists(), timeout=60, what="a learned baseline")
            assert client.delete(f"/v1/cameras/{camera_id}", headers=AUTH).status_code == 204
            assert not (baselines / f"{camera_id}.json").exists()  # the next camera with this id starts afresh
            text = client.get("/metrics").text
            assert f'"{camera_id}"' not in text
            sizes.append(len(text))
        assert max(sizes[1:]) - min(sizes[1:]) < 2000, sizes  # /metrics does not grow with churn


# -- 8. credentials in FFmpeg's log, and 9. TLS ------------------------------------------------------


def test_ffmpeg_messages_never_print_a_camera_password(model_path: str, tmp_path: Path) -> None:
    password = "Sup3r-Secret-Pw"
    with HttpCameraServer(password=password) as camera:
        cameras = tmp_path / "cameras.yaml"
        cameras.write_text(yaml.safe_dump({"cameras": [{"id": "lobby", "url": camera.url("live.m3u8", user="cam")}]}))
        env = {**FAST, "VISION_CAMERAS_FILE": str(cameras), "VISION_CAMERA_TIMEOUT_SECONDS": "2"}
        with service_process(tmp_path, model="yolo11n.yaml", env=env) as (base, _):
            log = next(tmp_path.glob(f"service-{base.rsplit(':', 1)[1]}.log"))
            # FFmpeg quotes the segment URL, user and password included, when it cannot load it.
            wait_for(
                lambda: "Error when loading first segment" in log.read_text(), timeout=60, what="FFmpeg's HLS error"
            )
        text = log.read_text()
    assert password not in text
    assert "http://cam:***@127.0.0.1" in text


def test_https_cameras_are_verified_before_any_credential_is_sent(model_path: str, tmp_path: Path) -> None:
    wrong = self_signed_certificate(tmp_path, "other.example", san="DNS:other.example")
    right = self_signed_certificate(tmp_path, "camera", san="IP:127.0.0.1")
    with (
        HttpCameraServer(certificate=wrong, password="pw") as impostor,
        HttpCameraServer(certificate=wrong, password="pw") as trusted_impostor,
        HttpCameraServer(certificate=right, password="pw") as genuine,
        app_client(model_path, api_key=KEY, camera_ca_file=right, camera_timeout_seconds=2.0) as client,
    ):
        cameras = {
            "impostor": {"url": impostor.url("video.mjpg", user="cam")},  # a certificate for another name
            "genuine": {"url": genuine.url("video.mjpg", user="cam")},  # signed by the configured CA file
            "opted-out": {"url": trusted_impostor.url("video.mjpg", user="cam"), "tls_verify": False},
        }
        for camera_id, body in cameras.items():
            assert post_camera(client, {"id": camera_id, "fps": 2, **body}, **AUTH).status_code == 201

        def processed(camera_id: str) -> bool:
            return bool(client.get(f"/v1/cameras/{camera_id}", headers=AUTH).json()["frames"]["processed"] >= 1)

        wait_for(lambda: processed("genuine"), timeout=60, what="the verified camera's frames")
        wait_for(lambda: processed("opted-out"), timeout=60, what="the opted-out camera's frames")
        wait_for(lambda: client.get("/v1/cameras/impostor", headers=AUTH).json()["reconnects"] >= 2,
                 timeout=60, what="the impostor refused again and again")  # fmt: skip
        impostor_view = client.get("/v1/cameras/impostor", headers=AUTH).json()
    assert not impostor_view["up"] and impostor_view["frames"]["processed"] == 0
    assert "could not open the stream" in impostor_view["error"]
    assert impostor.requests == []  # the TLS handshake failed verification: no request, no credentials
    assert any(auth and auth.startswith("Basic ") for _, auth in genuine.requests)
    assert any(auth and auth.startswith("Basic ") for _, auth in trusted_impostor.requests)  # opting out sends them


# -- 10. header size, 11. slow clients, 12. shutdown ----------------------------------------------


def test_oversized_request_headers_are_refused_early_and_the_service_keeps_answering(
    model_path: str, tmp_path: Path
) -> None:
    with service_process(tmp_path, model="yolo11n.yaml", env=FAST) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        sent = 0
        answer = b""
        health: list[int] = []
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * 65536
            with contextlib.suppress(OSError):
                while sent < 128 * 1024 * 1024:  # 128 MiB of one header, as the attack sent
                    sock.sendall(chunk)
                    sent += len(chunk)
                    if sent % (4 * 1024 * 1024) == 0:
                        health.append(http_status(f"{base}/healthz"))
            with contextlib.suppress(OSError):
                answer = sock.recv(4096)
        assert sent < 16 * 1024 * 1024, f"{sent} bytes of headers were read"
        assert answer.startswith(b"HTTP/1.1 431") or answer == b""  # refused, or already closed
        assert all(status == 200 for status in health)
        assert http_status(f"{base}/healthz") == 200


def test_slow_clients_are_disconnected(model_path: str, tmp_path: Path) -> None:
    env = {**FAST, "VISION_HEADER_TIMEOUT_SECONDS": "1", "VISION_BODY_TIMEOUT_SECONDS": "1",
           "VISION_BODY_DEADLINE_SECONDS": "3", "VISION_API_KEY": KEY}  # fmt: skip
    with service_process(tmp_path, model="yolo11n.yaml", env=env) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        drips = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
        for sock in drips:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

        def all_closed() -> bool:
            closed = 0
            for sock in drips:
                try:
                    sock.sendall(b"X-Drip: 1\r\n")  # one header line at a time, never the end
                    sock.settimeout(0.01)
                    closed += sock.recv(1024).startswith(b"HTTP/1.1 408") or 0
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    closed += 1
            return closed == len(drips)

        wait_for(all_closed, timeout=60, what="every slow-header connection closed", interval=0.3)
        for sock in drips:
            sock.close()

        # A camera definition trickling in byte by byte: refused at the body deadline, though it never pauses long.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = (
                f"POST /v1/cameras HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
                "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
            )
            sock.sendall(head.encode())
            answer = b""
            for _ in range(40):
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
                sock.settimeout(0.25)
                with contextlib.suppress(TimeoutError):
                    answer += sock.recv(4096)
                if answer:
                    break
            sock.settimeout(5)
            with contextlib.suppress(OSError):  # the JSON body may come in a packet of its own
                while b"}" not in answer and (more := sock.recv(4096)):
                    answer += more
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer


def test_shutdown_drops_readiness_first_and_ends_despite_a_stalled_request(model_path: str, tmp_path: Path) -> None:
    env = {**FAST, "VISION_SHUTDOWN_DRAIN_SECONDS": "2", "VISION_SHUTDOWN_TIMEOUT_SECONDS": "2", "VISION_API_KEY": KEY}
    with service_process(tmp_path, model="yolo11n.yaml", env=env) as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = f"POST /v1/cameras HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 100\r\n\r\n{{"
        stalled.sendall(head.encode())  # and nothing more
        proc.send_signal(signal.SIGTERM)
        # Still serving, but no longer ready: a load balancer stops sending before the port closes.
        assert http_status(f"{base}/readyz") == 503
        assert http_status(f"{base}/healthz") == 200
        proc.wait(timeout=60)  # the stalled request does not keep the process alive
        stalled.close()
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it shut down for


# -- 13. what is open with a key --------------------------------------------------------------------


def test_with_a_key_metrics_can_require_it_too(model_path: str) -> None:
    with app_client(model_path, api_key=KEY, metrics_require_key=True) as client:
        assert client.get("/metrics").status_code == 401
        assert (
            client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )  # as Prometheus sends it
        assert client.get("/metrics", headers=AUTH).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes never need it
    with app_client(model_path, api_key=KEY) as client:  # the documented default: /metrics open
        assert client.get("/metrics").status_code == 200


def test_the_api_description_can_be_turned_off(model_path: str) -> None:
    with app_client(model_path, api_docs=False) as client:
        assert [client.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [404, 404, 404]
        assert client.get("/healthz").status_code == 200
