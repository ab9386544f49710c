"""/v1/sources: signals, drift, conditions and evidence frames of each source, from a service fed real photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import encode_jpeg
from tests.streams import day_night_frames
from vision_service.api.main import create_app
from vision_service.core.config import Settings
from vision_service.evidence import KINDS
from vision_service.thresholds import load_thresholds

DAY_NIGHT_PHOTOS = 2  # frames per photograph in each half of the day -> night sequence


def started(settings: Settings) -> TestClient:
    app = create_app(settings, load_model=False)
    app.state.service.load_model()
    assert app.state.service.pipeline.ready, app.state.service.pipeline.load_error
    return TestClient(app)


def post(client: TestClient, frames: list[np.ndarray], source: str) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        response = client.post(
            f"/v1/detect?source={source}", content=encode_jpeg(frame), headers={"content-type": "image/jpeg"}
        )
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


def flush(client: TestClient) -> None:
    """Wait until the evidence writer stored everything queued (it restarts on the next frame)."""
    assert client.app.state.service.evidence.writer.flush()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def fed(model_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """street: day then night; parking: night only; evidence on disk, learned baselines."""
    settings = Settings(
        model=model_path,
        device="cpu",
        image_size=320,
        sources=["street", "parking"],
        baseline_learn_frames=6,  # per regime: the 6 day frames (zidane.jpg, at a level of 0.23, is twilight)
        drift_window_frames=20,
        evidence_dir=tmp_path_factory.mktemp("evidence"),
        evidence_max_side=320,
    )
    # A deep night: every night frame darker than 0.15, so all 8 are in the night regime.
    day, night = day_night_frames(frames_per_photo=DAY_NIGHT_PHOTOS, night_light=0.003)
    with started(settings) as client:
        # Conditions are checked at every frame here (the service checks a source at most once a second).
        client.app.state.service.conditions.check_seconds = 0  # type: ignore[attr-defined]
        answers = {"street": post(client, day + night, "street"), "parking": post(client, night, "parking")}
        flush(client)
        yield client, answers


def test_every_accepted_source_is_listed_with_the_thresholds_of_the_rules_file(
    fed: tuple[TestClient, dict[str, Any]],
) -> None:
    client, _ = fed
    body = client.get("/v1/sources").json()
    assert [s["id"] for s in body["sources"]] == ["parking", "street", "upload"]
    assert {s["id"]: s["kind"] for s in body["sources"]} == {
        "parking": "configured",
        "street": "configured",
        "upload": "upload",
    }
    assert body["thresholds"] == load_thresholds().as_dict() and body["evidence"] is True
    street = next(s for s in body["sources"] if s["id"] == "street")
    assert street["recent"]["frames"] == 2 * 4 * DAY_NIGHT_PHOTOS
    assert street["url"] == "/v1/sources/street" and street["samples_url"] == "/v1/sources/street/samples"
    # It ends the sequence at night, and its night regime was learned from its first 6 night frames.
    assert street["drift"]["regime"] == "night" and street["drift"]["baseline"] is True
    assert street["drift"]["alerted"] is True  # night drift alerts; twilight drift is shown only
    upload = next(s for s in body["sources"] if s["id"] == "upload")
    assert upload["recent"]["frames"] == 0 and upload["drift"] is None and upload["samples"] == 0


def test_a_dark_source_shows_its_conditions(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, answers = fed
    parking = client.get("/v1/sources/parking").json()
    names = {c["name"]: c for c in parking["conditions"]}
    assert "low_light" in names
    low = names["low_light"]
    assert low["alert"] == "VisionLowBrightness" and low["threshold"] == 0.15
    brightness = [a["quality"]["brightness"] for a in answers["parking"]]
    assert low["value"] == pytest.approx(sum(brightness) / len(brightness), rel=1e-6)
    assert low["since"] is not None


def test_a_source_detail_has_ten_minutes_of_series(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, answers = fed
    street = client.get("/v1/sources/street").json()
    series = street["series"]
    assert series["seconds"] == 600 and series["step"] == 5 and len(series["t"]) == 120
    assert set(series["values"]) >= {"brightness", "contrast", "sharpness", "noise_sigma", "detections"}
    assert any(v is not None for v in series["values"]["brightness"])
    assert street["last"] == answers["street"][-1]["quality"]


def test_evidence_frames_of_a_day_night_sequence(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, answers = fed
    body = client.get("/v1/sources/street/samples").json()
    assert body["source"] == "street" and body["evidence"] and set(body["descriptions"]) == set(KINDS)
    by_kind = {kind: s for s in body["samples"] for kind in s["kinds"]}
    assert {"latest", "darkest", "blurriest", "noisiest", "lowest_confidence"} <= set(by_kind)
    darkest = min(a["quality"]["brightness"] for a in answers["street"])
    assert by_kind["darkest"]["quality"]["brightness"] == pytest.approx(darkest)
    for sample in body["samples"]:
        assert max(sample["image_width"], sample["image_height"]) <= 320
        assert sample["image_url"] == f"/v1/sources/street/samples/{sample['id']}.jpg"
        response = client.get(sample["image_url"])
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert "immutable" in response.headers["cache-control"]
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == (sample["image_height"], sample["image_width"])
        assert len(response.content) == sample["bytes"]


def test_samples_filter_by_kind(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = fed
    darkest = client.get("/v1/sources/street/samples", params={"kind": "darkest"}).json()["samples"]
    assert len(darkest) == 1 and "darkest" in darkest[0]["kinds"]
    bad = client.get("/v1/sources/street/samples", params={"kind": "../etc"})
    assert bad.status_code == 400 and bad.json()["error"] == "malformed_request"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sources/nope",
        "/v1/sources/nope/samples",
        "/v1/sources/STREET/samples",
        "/v1/sources/street/samples/0123456789abcdef.jpg",
        "/v1/sources/street/samples/..%2F..%2Fetc%2Fpasswd.jpg",
        "/v1/sources/street/samples/%2e%2e.jpg",
    ],
)
def test_unknown_sources_and_samples_are_404(fed: tuple[TestClient, dict[str, Any]], path: str) -> None:
    client, _ = fed
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] in {"source_not_found", "sample_not_found", "not_found"}


def test_a_sample_id_is_per_source(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = fed
    sample = client.get("/v1/sources/street/samples").json()["samples"][0]
    assert client.get(f"/v1/sources/parking/samples/{sample['id']}.jpg").status_code == 404


def test_a_restarted_service_shows_the_frames_kept_on_disk(
    fed: tuple[TestClient, dict[str, Any]], model_path: str
) -> None:
    client, _ = fed
    settings: Settings = client.app.state.service.settings  # type: ignore[attr-defined]
    before = client.get("/v1/sources/street/samples").json()["samples"]
    assert settings.evidence_dir is not None and any(settings.evidence_dir.joinpath("street").glob("*.jpg"))
    with started(settings) as again:
        after = again.get("/v1/sources/street/samples").json()["samples"]
        assert {s["id"] for s in after} == {s["id"] for s in before}
        assert again.get(after[0]["image_url"]).status_code == 200


def test_evidence_switched_off(model_path: str) -> None:
    settings = Settings(model=model_path, device="cpu", image_size=320, evidence_enabled=False)
    day, _ = day_night_frames(frames_per_photo=1)
    with started(settings) as client:
        post(client, day[:2], "upload")
        body = client.get("/v1/sources/upload/samples").json()
        assert body == {**body, "evidence": False, "samples": []}
        assert client.get("/v1/sources/upload").json()["samples"] == 0
        assert client.get("/v1/sources/upload/samples/0123456789abcdef.jpg").status_code == 404
        assert "vision_evidence" not in client.get("/metrics").text


def test_the_openapi_document_describes_the_routes(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = fed
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/sources",
        "/v1/sources/{source_id}",
        "/v1/sources/{source_id}/samples",
        "/v1/sources/{source_id}/samples/{sample_id}.jpg",
        "/v1/session",
    } <= set(paths)
    assert "/" not in paths and "/ui/{name}" not in paths


def test_the_evidence_directory_holds_only_what_the_store_writes(fed: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = fed
    directory: Path = client.app.state.service.settings.evidence_dir  # type: ignore[attr-defined]
    names = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    assert names and all(n.split("/")[0] in {"street", "parking"} for n in names)
    assert all(n.endswith((".jpg", ".json")) for n in names)


def test_a_camera_is_a_source_with_its_status(model_path: str, tmp_path: Path) -> None:
    from tests.infra import wait_for
    from tests.streams import street_video

    video = street_video(tmp_path / "gate.mp4")
    settings = Settings(model=model_path, device="cpu", image_size=320, local_source_dirs=[tmp_path])
    with started(settings) as client:
        state = client.app.state.service  # type: ignore[attr-defined]
        state.cameras.add({"id": "gate", "url": str(video), "fps": 5, "loop": True})
        wait_for(lambda: state.history.stats("gate", 300).frames >= 3, timeout=120, what="camera frames")
        gate = client.get("/v1/sources/gate").json()
        assert gate["kind"] == "camera" and gate["camera"]["status"] == "up" and gate["camera"]["up"] is True
        assert gate["camera"]["measured_fps"] >= 0 and gate["last_frame_at"] is not None
        assert gate["recent"]["frames"] >= 3
        state.cameras.remove("gate")
        assert client.get("/v1/sources/gate").status_code == 404  # a removed camera is no source
        assert state.history.stats("gate", 300).frames == 0  # and its history went with it
