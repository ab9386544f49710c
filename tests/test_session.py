"""The live page's login: the API key POSTed once, an HttpOnly SameSite=Strict cookie that reads but never writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import encode_jpeg
from vision_service.api import session
from vision_service.api.main import create_app
from vision_service.core.config import Settings

KEY = "s3cret-key-for-tests"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def app_settings(model_path: str) -> Settings:
    return Settings(model=model_path, device="cpu", image_size=320, api_key=KEY)


@pytest.fixture(scope="module")
def loaded(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings, load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        yield client


@pytest.fixture
def browser(loaded: TestClient) -> Iterator[TestClient]:
    """A fresh browser on the same app: no cookies."""
    loaded.cookies.clear()
    yield loaded
    loaded.cookies.clear()


def log_in(client: TestClient, key: str = KEY) -> int:
    return client.post("/v1/session", content=f"api_key={key}", headers=FORM).status_code


def test_without_a_session_reading_needs_the_key(browser: TestClient) -> None:
    assert browser.get("/v1/session").json() == {"required": True, "authenticated": False}
    response = browser.get("/v1/sources")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert browser.get("/v1/sources", headers={"X-API-Key": KEY}).status_code == 200
    assert browser.get("/").status_code == 200  # the page itself holds no data: it asks for the key


def test_logging_in_sets_an_httponly_strict_cookie_that_is_not_the_key(browser: TestClient) -> None:
    response = browser.post("/v1/session", content=f"api_key={KEY}", headers=FORM)
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes and "secure" not in attributes  # plain http here
    assert "samesite=strict" in cookie.lower()
    assert KEY not in cookie
    assert browser.get("/v1/session").json() == {"required": True, "authenticated": True}
    assert browser.get("/v1/sources").status_code == 200
    assert browser.get("/v1/cameras").status_code == 200  # every reading route


def test_over_https_the_cookie_is_secure(loaded: TestClient) -> None:
    https = TestClient(loaded.app, base_url="https://testserver")
    response = https.post("/v1/session", content=f"api_key={KEY}", headers=FORM)
    assert response.status_code == 204 and "secure" in response.headers["set-cookie"].lower()


def test_the_cookie_never_changes_anything(browser: TestClient, bus_bytes: bytes) -> None:
    """A same-site page of another origin could make the browser send it: writes still need the header."""
    assert log_in(browser) == 204
    upload = browser.post("/v1/detect", content=bus_bytes, headers={"content-type": "image/jpeg"})
    assert upload.status_code == 401
    camera = browser.post("/v1/cameras", json={"id": "x", "url": "rtsp://127.0.0.1/x"})
    assert camera.status_code == 401
    assert browser.delete("/v1/cameras/x").status_code == 401


def test_a_wrong_key_sets_no_cookie(browser: TestClient) -> None:
    response = browser.post("/v1/session", content="api_key=guess", headers=FORM)
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert browser.get("/v1/sources").status_code == 401


@pytest.mark.parametrize("field", ["api_key", "key", "X-API-Key"])
def test_a_key_in_the_url_is_never_accepted(browser: TestClient, field: str) -> None:
    assert browser.get(f"/v1/sources?{field}={KEY}").status_code == 401
    assert browser.post(f"/v1/session?{field}={KEY}", content="", headers=FORM).status_code == 401


def test_the_login_takes_a_form_only(browser: TestClient) -> None:
    response = browser.post("/v1/session", json={"api_key": KEY})
    assert response.status_code == 400 and response.json()["error"] == "malformed_request"
    assert browser.post("/v1/session", content="x" * 5000, headers=FORM).status_code == 413


def test_tampered_and_expired_cookies_are_refused(browser: TestClient, app_settings: Settings) -> None:
    key = app_settings.api_key
    assert key is not None
    good = session.token(key)
    expires, signature = good.split(".")
    for value in (
        f"{int(expires) + 3600}.{signature}",  # a longer life, same signature
        f"{expires}.{'0' * len(signature)}",
        session.token(SecretStr("another key")),
        session.token(key, now=0),  # expired long ago
        KEY,  # the key itself is not a session
        "",
    ):
        browser.cookies.set(session.COOKIE, value)
        assert browser.get("/v1/sources").status_code == 401, value
    browser.cookies.set(session.COOKIE, good)
    assert browser.get("/v1/sources").status_code == 200


def test_logging_out_clears_the_cookie(browser: TestClient) -> None:
    assert log_in(browser) == 204
    response = browser.delete("/v1/session")
    assert response.status_code == 204 and session.COOKIE in response.headers["set-cookie"]
    assert browser.get("/v1/sources").status_code == 401


def test_images_load_with_the_cookie(browser: TestClient, bus_bgr: object) -> None:
    upload = browser.post(
        "/v1/detect", content=encode_jpeg(bus_bgr), headers={"content-type": "image/jpeg", "X-API-Key": KEY}
    )
    assert upload.status_code == 200
    assert browser.app.state.service.evidence.writer.flush()  # type: ignore[attr-defined]
    assert log_in(browser) == 204
    (sample, *_) = browser.get("/v1/sources/upload/samples").json()["samples"]
    image = browser.get(sample["image_url"])
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"


def test_without_a_key_configured_there_is_nothing_to_log_in_to(model_path: str) -> None:
    app = create_app(Settings(model=model_path, device="cpu"), load_model=False)
    with TestClient(app) as client:
        assert client.get("/v1/session").json() == {"required": False, "authenticated": True}
        response = client.post("/v1/session", content="api_key=anything", headers=FORM)
        assert response.status_code == 204 and "set-cookie" not in response.headers
        assert client.get("/v1/sources").status_code == 200
