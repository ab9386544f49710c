"""Uploads stream in under limits: oversized bodies are cut off early, stalled ones time out.

Multipart forms give back every image byte for byte, whatever the image bytes contain, and
refuse malformed or oversized forms with a named reason.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

from tests.conftest import encode_jpeg
from tests.infra import http_status, vision_service
from vision_service.api.upload import MAX_TEXT_FIELD_BYTES, MAX_TEXT_FIELDS, parse_multipart
from vision_service.errors import ImageRejected, Reason

LIMIT = 1_000_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Iterator[tuple[str, int]]:
    env = {"VISION_MAX_UPLOAD_BYTES": str(LIMIT), "VISION_BODY_TIMEOUT_SECONDS": "1"}
    with vision_service(tmp_path_factory.mktemp("upload"), model=model_path, env=env) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def open_upload(address: tuple[str, int], extra_headers: str = "") -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(
        b"POST /v1/detect HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n" + extra_headers.encode() + b"\r\n"
    )
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_oversized_chunked_body_is_refused_before_it_ends(live: tuple[str, int]) -> None:
    sock = open_upload(live, "Transfer-Encoding: chunked\r\n")
    chunk = b"\x00" * 65536
    sent = 0
    try:
        while sent <= LIMIT + 4 * len(chunk):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server already answered and closed: exactly what we want
    # The terminating chunk is never sent: only a server that stops reading at the limit answers.
    status, body = read_response(sock)
    sock.close()
    assert status == 413
    assert body["error"] == "too_large"


def test_slow_but_steady_upload_succeeds(live: tuple[str, int], bus_bgr: np.ndarray) -> None:
    data = encode_jpeg(bus_bgr[:200, :200])
    sock = open_upload(live, f"Content-Length: {len(data)}\r\n")
    pieces = np.array_split(np.frombuffer(data, np.uint8), 8)
    for piece in pieces:
        sock.sendall(piece.tobytes())
        time.sleep(0.3)  # each pause is shorter than the 1 s stall limit
    status, body = read_response(sock)
    sock.close()
    assert status == 200
    assert body["image"] == {"width": 200, "height": 200}


def test_stalled_upload_times_out_and_others_are_served(live: tuple[str, int], bus_bgr: np.ndarray) -> None:
    data = encode_jpeg(bus_bgr)
    sock = open_upload(live, f"Content-Length: {len(data)}\r\n")
    sock.sendall(data[: len(data) // 2])
    # While that client stalls, the service keeps answering others.
    assert http_status(f"http://{live[0]}:{live[1]}/healthz") == 200
    status, body = read_response(sock)
    sock.close()
    assert status == 408
    assert body["error"] == "body_timeout"


def test_api_key_guards_detection_but_not_health(tmp_path: Path, model_path: str, bus_bytes: bytes) -> None:
    from fastapi.testclient import TestClient

    from vision_service.api.main import create_app
    from vision_service.core.config import Settings

    app = create_app(Settings(model=model_path, device="cpu", api_key="s3cret-key"), load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        jpeg = {"content": bus_bytes, "headers": {"content-type": "image/jpeg"}}
        assert client.post("/v1/detect", **jpeg).status_code == 401
        wrong = client.post(
            "/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg", "X-API-Key": "nope"}
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "unauthorized"
        assert "s3cret" not in wrong.text
        right = client.post(
            "/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg", "X-API-Key": "s3cret-key"}
        )
        assert right.status_code == 200
        assert client.get("/healthz").status_code == 200
        # A caller without the key is not an image the service refused: nothing is counted for it,
        # on the detection routes or the camera routes (VisionHighErrorRate watches these counts).
        assert client.get("/v1/cameras").status_code == 401
        assert client.post("/v1/cameras", json={"id": "x", "url": "rtsp://127.0.0.1:9/x"}).status_code == 401
        metrics = client.get("/metrics").text
        assert 'outcome="rejected"' not in metrics and "unauthorized" not in metrics
        assert 'vision_images_total{outcome="processed",reason="none",source="upload"} 1.0' in metrics


BOUNDARY = "vision-test-boundary"


def form(fields: list[tuple[str, bytes | str]]) -> tuple[bytes, str]:
    """A multipart body from urllib3's encoder: bytes values become file parts, str values text."""
    encoded = [
        (name, (f"{i}.jpg", value, "image/jpeg") if isinstance(value, bytes) else value)
        for i, (name, value) in enumerate(fields)
    ]
    return encode_multipart_formdata(encoded)


def refused(body: bytes, content_type: str, *, max_images: int = 8) -> Reason:
    with pytest.raises(ImageRejected) as error:
        parse_multipart(body, content_type, max_images=max_images)
    return error.value.reason


def test_a_form_gives_back_its_images_in_order_and_the_source(bus_bytes: bytes, bus_bgr: np.ndarray) -> None:
    small = encode_jpeg(bus_bgr[:100, :100])
    body, content_type = form([("image", bus_bytes), ("thumbnail", small), ("source", "cam-a"), ("image", small)])
    upload = parse_multipart(body, content_type, max_images=8)
    assert upload.images == [bus_bytes, small]  # the unrelated file field is skipped
    assert upload.source == "cam-a"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=3000), st.integers(0, len(BOUNDARY) - 1)), min_size=1, max_size=5))
def test_image_bytes_round_trip_whatever_they_contain(images: list[tuple[bytes, int]]) -> None:
    # Data that ends in a prefix of the boundary (after CRLF and dashes) must not end the part.
    blobs = [blob + b"\r\n--" + BOUNDARY.encode()[:cut] for blob, cut in images]
    body, content_type = encode_multipart_formdata(
        [("image", (f"{i}.jpg", blob, "image/jpeg")) for i, blob in enumerate(blobs)], boundary=BOUNDARY
    )
    assert parse_multipart(body, content_type, max_images=8).images == blobs


def test_malformed_forms_are_refused_with_a_reason(bus_bytes: bytes) -> None:
    body, content_type = form([("image", bus_bytes)])
    assert refused(body[: len(body) // 2], content_type) is Reason.MALFORMED_REQUEST  # cut short
    assert refused(body[:-10], content_type) is Reason.MALFORMED_REQUEST  # no closing boundary
    assert refused(body, "multipart/form-data") is Reason.MALFORMED_REQUEST  # no boundary parameter
    assert refused(b"", content_type) is Reason.EMPTY
    assert refused(b"not a form at all", content_type) is Reason.MALFORMED_REQUEST
    text_image, text_type = form([("image", "not a file")])
    assert refused(text_image, text_type) is Reason.MALFORMED_REQUEST
    nameless = body.replace(b'name="image"; ', b"")
    assert refused(nameless, content_type) is Reason.MALFORMED_REQUEST


def test_forms_over_their_limits_are_refused(bus_bytes: bytes) -> None:
    assert refused(*form([("image", bus_bytes)] * 3), max_images=2) is Reason.TOO_MANY_IMAGES
    many = [(f"f{i}", "v") for i in range(MAX_TEXT_FIELDS + 1)]
    assert refused(*form([*many, ("image", bus_bytes)])) is Reason.MALFORMED_REQUEST
    assert (
        refused(*form([("source", "x" * (MAX_TEXT_FIELD_BYTES + 1)), ("image", bus_bytes)])) is Reason.MALFORMED_REQUEST
    )
    assert refused(*form([("note", "v"), ("thumbnail", bus_bytes)])) is Reason.MISSING_FIELD
