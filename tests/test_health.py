"""/healthz answers while the process lives; /readyz only once the model is loaded and warm."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from vision_service.api.main import create_app
from vision_service.core.config import Settings


def test_ready_app_reports_model_and_device(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["device"] == "cpu"


def test_not_ready_until_loaded_and_refuses_detection(bus_bytes: bytes) -> None:
    app = create_app(Settings(model="yolo11n.yaml", device="cpu"), load_model=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        response = client.post("/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg"})
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["error"] == "model_not_ready"
        assert "vision_model_ready 0.0" in client.get("/metrics").text


def test_model_that_fails_to_load_leaves_service_alive_with_reason(tmp_path: Path) -> None:
    missing = tmp_path / "gone.pt"
    app = create_app(Settings(model=str(missing), device="cpu"), load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert str(missing) in ready.json()["error"]
        metrics = client.get("/metrics").text
        assert "vision_model_load_failures_total 1.0" in metrics
        assert "vision_model_ready 0.0" in metrics


def test_openapi_document_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/detect", "/v1/detect/batch", "/metrics", "/healthz", "/readyz"} <= set(paths)
    assert client.get("/docs").status_code == 200
