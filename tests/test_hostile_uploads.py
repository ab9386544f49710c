"""The bad-input battery: hostile or odd uploads end in a clear 4xx JSON error or a correct result.

Every case is counted in ``vision_images_total`` and leaves the service healthy; the battery
ends by checking a normal upload still works.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from urllib3 import encode_multipart_formdata

from tests.conftest import encode_jpeg, encode_png, pil_bytes
from tests.test_engine_decode import png_header_only
from vision_service.core.config import Settings


@dataclass(frozen=True)
class Case:
    """One upload: how to build the request, and the status/reason it must end in."""

    build: Callable[[np.ndarray, Settings], dict]
    status: int
    reason: str | None = None  # None: a correct result is expected
    size: tuple[int, int] | None = None  # expected (width, height) for correct results


def raw(data: bytes, content_type: str = "image/jpeg") -> dict:
    return {"content": data, "headers": {"content-type": content_type}}


def pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))


def corrupt_huffman(bgr: np.ndarray) -> bytes:
    data = bytearray(encode_jpeg(bgr))
    dht = data.index(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16  # code-length counts that no Huffman tree can satisfy
    return bytes(data)


def padded_jpeg(bgr: np.ndarray, total: int) -> bytes:
    """A valid JPEG followed by filler after its end marker, exactly ``total`` bytes long."""
    data = encode_jpeg(bgr)
    return data + b"\x00" * (total - len(data))


def animated_gif(bgr: np.ndarray) -> bytes:
    frames = [pil(bgr), pil(255 - bgr), pil(bgr // 2)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def exif_rotated(bgr: np.ndarray) -> bytes:
    image = pil(bgr)
    exif = image.getexif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    return pil_bytes(image, "JPEG", exif=exif)


def sixteen_bit_png(bgr: np.ndarray) -> bytes:
    return encode_png(bgr.astype(np.uint16) * 257)


def zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bus.jpg", data)
    return out.getvalue()


def cut_form(bgr: np.ndarray, content_type: str | None = None) -> dict:
    """A one-image multipart body without its closing boundary (a client that died mid-upload)."""
    body, form_type = encode_multipart_formdata([("image", ("bus.jpg", encode_jpeg(bgr), "image/jpeg"))])
    return raw(body[: -len(b"--\r\n") - 40], content_type or form_type)


def multipart(fields: list[tuple[str, tuple[str, bytes, str] | str]]) -> dict:
    """multipart/form-data with file parts and plain text parts (no filename), in order."""
    return {"files": [(name, value if isinstance(value, tuple) else (None, value)) for name, value in fields]}


W, H = 810, 1080  # bus.jpg
CASES: dict[str, Case] = {
    "empty body": Case(lambda b, s: raw(b""), 400, "empty_body"),
    "one byte": Case(lambda b, s: raw(b"\xff"), 400, "not_an_image"),
    "plain text": Case(lambda b, s: raw(b"hello, I am not a picture", "image/png"), 400, "not_an_image"),
    "html page": Case(
        lambda b, s: raw(b"<!doctype html><html><body>x</body></html>", "image/jpeg"), 400, "not_an_image"
    ),
    "svg markup": Case(
        lambda b, s: raw(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"), 400, "not_an_image"
    ),
    "zip archive": Case(lambda b, s: raw(zipped(encode_jpeg(b))), 400, "not_an_image"),
    "truncated jpeg": Case(lambda b, s: raw(encode_jpeg(b)[:30000]), 400, "corrupt_image"),
    "jpeg header only": Case(lambda b, s: raw(encode_jpeg(b)[:600]), 400, "corrupt_image"),
    "truncated png": Case(lambda b, s: raw(encode_png(b)[:50000], "image/png"), 400, "corrupt_image"),
    "corrupted huffman tables": Case(lambda b, s: raw(corrupt_huffman(b)), 400, "corrupt_image"),
    "png decompression bomb 50000x50000": Case(
        lambda b, s: raw(png_header_only(50_000, 50_000), "image/png"), 413, "too_many_pixels"
    ),
    "bytes just under the limit": Case(lambda b, s: raw(padded_jpeg(b, s.max_upload_bytes)), 200, size=(W, H)),
    "bytes just over the limit": Case(lambda b, s: raw(padded_jpeg(b, s.max_upload_bytes + 1)), 413, "too_large"),
    "pixels exactly at the limit": Case(
        lambda b, s: raw(encode_jpeg(cv2.resize(b, (4000, 3000)), 40)), 200, size=(4000, 3000)
    ),
    "pixels just over the limit": Case(
        lambda b, s: raw(encode_jpeg(cv2.resize(b, (4001, 3000)), 40)), 413, "too_many_pixels"
    ),
    "16-bit png": Case(lambda b, s: raw(sixteen_bit_png(b), "image/png"), 200, size=(W, H)),
    "cmyk jpeg": Case(lambda b, s: raw(pil_bytes(pil(b).convert("CMYK"), "JPEG")), 200, size=(W, H)),
    "grayscale jpeg": Case(lambda b, s: raw(encode_jpeg(cv2.cvtColor(b, cv2.COLOR_BGR2GRAY))), 200, size=(W, H)),
    "palette png": Case(lambda b, s: raw(pil_bytes(pil(b).convert("P"), "PNG"), "image/png"), 200, size=(W, H)),
    "png with alpha": Case(lambda b, s: raw(pil_bytes(pil(b).convert("RGBA"), "PNG"), "image/png"), 200, size=(W, H)),
    "animated gif": Case(lambda b, s: raw(animated_gif(b), "image/gif"), 200, size=(W, H)),
    "tiff": Case(lambda b, s: raw(pil_bytes(pil(b), "TIFF"), "image/tiff"), 200, size=(W, H)),
    "webp": Case(lambda b, s: raw(pil_bytes(pil(b), "WEBP"), "image/webp"), 200, size=(W, H)),
    "bmp": Case(lambda b, s: raw(pil_bytes(pil(b), "BMP"), "image/bmp"), 200, size=(W, H)),
    "exif-rotated jpeg": Case(lambda b, s: raw(exif_rotated(b)), 200, size=(H, W)),
    "icon format": Case(
        lambda b, s: raw(pil_bytes(pil(b[:64, :64]), "ICO"), "image/x-icon"), 415, "unsupported_format"
    ),
    "1x1 pixel": Case(lambda b, s: raw(encode_png(b[:1, :1]), "image/png"), 400, "too_small"),
    "very wide 20000x1": Case(lambda b, s: raw(encode_png(cv2.resize(b, (20000, 1))), "image/png"), 400, "too_small"),
    "wrong content type": Case(lambda b, s: raw(encode_jpeg(b), "text/plain"), 415, "unsupported_media_type"),
    "no content type": Case(lambda b, s: {"content": encode_jpeg(b)}, 415, "unsupported_media_type"),
    "mismatched content type and bytes": Case(lambda b, s: raw(encode_jpeg(b), "image/png"), 200, size=(W, H)),
    "multipart without the image field": Case(
        lambda b, s: multipart([("photo", ("bus.jpg", encode_jpeg(b), "image/jpeg"))]), 400, "missing_field"
    ),
    "multipart cut before its closing boundary": Case(lambda b, s: cut_form(b), 400, "malformed_request"),
    "multipart without a boundary": Case(lambda b, s: cut_form(b, "multipart/form-data"), 400, "malformed_request"),
    "two images to the one-image route": Case(
        lambda b, s: multipart([("image", ("a.jpg", encode_jpeg(b), "image/jpeg"))] * 2), 413, "too_many_images"
    ),
    "multipart image as text field": Case(lambda b, s: multipart([("image", "not a file")]), 400, "malformed_request"),
    "huge multipart field name": Case(
        lambda b, s: multipart(
            [
                ("x" * 200_000, ("a.jpg", b"\xff\xd8", "image/jpeg")),
                ("image", ("bus.jpg", encode_jpeg(b), "image/jpeg")),
            ]
        ),
        400,
        "malformed_request",
    ),
    "many multipart fields": Case(
        lambda b, s: multipart(
            [(f"f{i}", "v") for i in range(2000)] + [("image", ("bus.jpg", encode_jpeg(b), "image/jpeg"))]
        ),
        400,
        "malformed_request",
    ),
    "declared content-length over the limit": Case(
        lambda b, s: {"content": b"\xff\xd8", "headers": {"content-type": "image/jpeg", "content-length": str(10**12)}},
        413,
        "too_large",
    ),
}


def images_total(client: TestClient, outcome: str, reason: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("vision_images_total{") and f'outcome="{outcome}"' in line and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_battery_has_at_least_thirty_kinds() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_upload(each_client: TestClient, settings: Settings, bus_bgr: np.ndarray, name: str) -> None:
    client = each_client
    case = CASES[name]
    outcome, reason = ("processed", "none") if case.reason is None else ("rejected", case.reason)
    before = images_total(client, outcome, reason)
    response = client.post("/v1/detect", **case.build(bus_bgr, settings))
    assert response.status_code == case.status, response.text[:300]
    body = response.json()
    if case.reason is None:
        assert (body["image"]["width"], body["image"]["height"]) == case.size
        assert 0 < body["quality"]["brightness"] < 1
    else:
        assert body["error"] == case.reason
        assert isinstance(body["detail"], str) and body["detail"]
    assert images_total(client, outcome, reason) == before + 1
    assert client.get("/healthz").status_code == 200


def test_service_still_answers_normally_after_the_battery(each_client: TestClient, bus_bytes: bytes) -> None:
    client = each_client
    for name, case in CASES.items():
        if case.reason is not None:
            assert (
                client.post(
                    "/v1/detect", **case.build(cv2.imdecode(np.frombuffer(bus_bytes, np.uint8), 1), Settings())
                ).status_code
                < 500
            ), name
    response = client.post("/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    assert client.get("/readyz").status_code == 200
