"""POST /v1/detect and /v1/detect/batch, end to end on a running app with the real model."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from quality.simulate import low_light
from tests.conftest import REAL_WEIGHTS, encode_jpeg, encode_png

QUALITY_FIELDS = {
    "brightness",
    "contrast",
    "sharpness",
    "noise_sigma",
    "underexposed_ratio",
    "overexposed_ratio",
    "colourfulness",
}


def rejected(client: TestClient, source: str, reason: str) -> float:
    """Current value of vision_images_total for a rejected input, read from /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("vision_images_total{") and f'reason="{reason}"' in line and f'source="{source}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_multipart_upload_returns_detections_quality_and_timings(client: TestClient, bus_bytes: bytes) -> None:
    response = client.post("/v1/detect", files={"image": ("bus.jpg", bus_bytes, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"width": 810, "height": 1080}
    assert set(body["quality"]) == QUALITY_FIELDS
    assert 0.0 < body["quality"]["brightness"] < 1.0
    assert body["count"] == len(body["detections"])
    assert body["model"]["device"] == "cpu"
    assert {"decode", "quality", "inference", "total"} <= set(body["timings_ms"])
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"] > 0
    for det in body["detections"]:
        x1, y1, x2, y2 = det["box_xyxy"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080
        assert 0.25 <= det["confidence"] <= 1.0


@pytest.mark.skipif(not REAL_WEIGHTS, reason="needs the real YOLO11n weights from ../shared/models")
def test_bus_photo_shows_a_bus_and_people(client: TestClient, bus_bytes: bytes) -> None:
    body = client.post("/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg"}).json()
    names = [d["class_name"] for d in body["detections"]]
    assert "bus" in names
    assert names.count("person") >= 3


@pytest.mark.skipif(not REAL_WEIGHTS, reason="needs the real YOLO11n weights from ../shared/models")
def test_night_copy_is_darker_noisier_and_less_confident(client: TestClient, bus_bgr: np.ndarray) -> None:
    night = low_light(bus_bgr, light=0.04, rng=np.random.default_rng(7))
    day = client.post("/v1/detect", content=encode_jpeg(bus_bgr), headers={"content-type": "image/jpeg"}).json()
    dark = client.post("/v1/detect", content=encode_jpeg(night), headers={"content-type": "image/jpeg"}).json()
    assert dark["quality"]["brightness"] < day["quality"]["brightness"]
    assert dark["quality"]["noise_sigma"] > day["quality"]["noise_sigma"]

    def mean_confidence(body: dict) -> float:
        confs = [d["confidence"] for d in body["detections"]]
        return sum(confs) / len(confs) if confs else 0.0

    assert mean_confidence(dark) < mean_confidence(day)


def test_raw_body_and_configured_source(client: TestClient, bus_bytes: bytes) -> None:
    response = client.post("/v1/detect?source=cam-a", content=bus_bytes, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    assert response.json()["source"] == "cam-a"
    metrics = client.get("/metrics").text
    assert 'vision_image_brightness_ratio_count{source="cam-a"}' in metrics


def test_unknown_source_is_refused_and_never_becomes_a_label(client: TestClient, bus_bytes: bytes) -> None:
    before = rejected(client, "unknown", "unknown_source")
    response = client.post(
        "/v1/detect?source=attacker-chosen", content=bus_bytes, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unknown_source"
    metrics = client.get("/metrics").text
    assert "attacker-chosen" not in metrics
    assert rejected(client, "unknown", "unknown_source") == before + 1


@pytest.mark.parametrize(
    ("content", "content_type", "status", "reason"),
    [
        (b"", "image/jpeg", 400, "empty_body"),
        (b"\x00", "image/jpeg", 400, "not_an_image"),
        (b"just some text, not a picture", "image/png", 400, "not_an_image"),
        (b"<html></html>", "text/html", 415, "unsupported_media_type"),
        (b"{}", "application/json", 415, "unsupported_media_type"),
    ],
)
def test_bad_uploads_get_a_json_error_and_are_counted(
    client: TestClient, content: bytes, content_type: str, status: int, reason: str
) -> None:
    before = rejected(client, "upload", reason)
    response = client.post("/v1/detect", content=content, headers={"content-type": content_type})
    assert response.status_code == status
    assert response.json()["error"] == reason
    assert response.json()["detail"]
    assert rejected(client, "upload", reason) == before + 1
    assert client.get("/healthz").status_code == 200


def test_truncated_jpeg_is_refused(each_client: TestClient, bus_bytes: bytes) -> None:
    response = each_client.post("/v1/detect", content=bus_bytes[:20000], headers={"content-type": "image/jpeg"})
    assert response.status_code == 400
    assert response.json()["error"] == "corrupt_image"


def test_oversized_upload_is_413(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    too_big = b"\xff\xd8" + b"\x00" * settings.max_upload_bytes
    response = client.post("/v1/detect", content=too_big, headers={"content-type": "image/jpeg"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_too_many_pixels_is_413(client: TestClient) -> None:
    from tests.test_engine_decode import png_header_only

    response = client.post("/v1/detect", content=png_header_only(50_000, 50_000), headers={"content-type": "image/png"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_pixels"


def test_multipart_without_image_field(client: TestClient, bus_bytes: bytes) -> None:
    response = client.post("/v1/detect", files={"picture": ("bus.jpg", bus_bytes, "image/jpeg")})
    assert response.status_code == 400
    assert response.json()["error"] == "missing_field"


def test_batch_one_bad_image_fails_alone(each_client: TestClient, bus_bytes: bytes, zidane_bgr: np.ndarray) -> None:
    client = each_client
    files = [
        ("image", ("bus.jpg", bus_bytes, "image/jpeg")),
        ("image", ("broken.jpg", bus_bytes[:5000], "image/jpeg")),
        ("image", ("zidane.jpg", encode_jpeg(zidane_bgr), "image/jpeg")),
    ]
    before = rejected(client, "cam-b", "corrupt_image")
    response = client.post("/v1/detect/batch?source=cam-b", files=files)
    assert response.status_code == 200, response.text
    assert rejected(client, "cam-b", "corrupt_image") == before + 1
    body = response.json()
    assert (body["processed"], body["failed"]) == (2, 1)
    ok = [r for r in body["results"] if r["ok"]]
    assert [r["index"] for r in ok] == [0, 2]
    assert ok[0]["image"] == {"width": 810, "height": 1080}
    assert ok[1]["image"] == {"width": zidane_bgr.shape[1], "height": zidane_bgr.shape[0]}
    assert body["results"][1]["error"] == "corrupt_image"


def test_batch_refuses_more_images_than_allowed(client: TestClient, bus_bgr: np.ndarray, settings) -> None:  # type: ignore[no-untyped-def]
    small = encode_jpeg(bus_bgr[:64, :64])
    files = [("image", (f"{i}.jpg", small, "image/jpeg")) for i in range(settings.max_batch_images + 1)]
    response = client.post("/v1/detect/batch", files=files)
    assert response.status_code in (400, 413)
    assert response.json()["error"] in ("too_many_images", "malformed_request")


def test_device_path_uploads_give_the_same_answer_as_the_cpu_path(
    client: TestClient, device_client: TestClient, bus_bytes: bytes, zidane_bgr: np.ndarray
) -> None:
    """VISION_DEVICE_PATH=on decodes uploads with torchvision and keeps them on the model's device."""
    files = [
        ("image", ("bus.jpg", bus_bytes, "image/jpeg")),
        ("image", ("zidane.png", encode_png(zidane_bgr), "image/png")),
    ]
    cpu = client.post("/v1/detect/batch", files=files).json()["results"]
    device = device_client.post("/v1/detect/batch", files=files).json()["results"]
    for got, expected in zip(device, cpu, strict=True):
        assert got["ok"] and expected["ok"]
        assert got["image"] == expected["image"]
        assert [d["class_name"] for d in got["detections"]] == [d["class_name"] for d in expected["detections"]]
        for a, b in zip(got["detections"], expected["detections"], strict=True):
            assert np.allclose(a["box_xyxy"], b["box_xyxy"], atol=3.0)
        for name in ("brightness", "contrast", "underexposed_ratio", "overexposed_ratio"):
            assert got["quality"][name] == pytest.approx(expected["quality"][name], abs=1e-3), name
        for name in ("sharpness", "noise_sigma"):
            assert got["quality"][name] == pytest.approx(expected["quality"][name], rel=0.02), name
        assert got["quality"]["colourfulness"] == pytest.approx(expected["quality"]["colourfulness"], abs=0.05)
        assert got["timings_ms"]["decode"] > 0
