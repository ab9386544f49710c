"""/docs (Swagger UI) and /redoc work offline: every asset comes from the service itself.

The pages are checked twice: their HTML names no external URL and each asset it names loads from
the service; then Debian's Chromium, headless and with background networking off, renders /docs
and /redoc from a real server, and the rendered page shows the API's operations, which only happens
when the JavaScript loaded and fetched /openapi.json.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.infra import free_port, http_status, need_binary, wait_for
from vision_service.api.main import create_app
from vision_service.core.config import Settings

ASSET_URL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")
PAGES = ("/docs", "/redoc")


def page_urls(html: str) -> list[str]:
    return [a or b for a, b in ASSET_URL.findall(html)]


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_name_no_external_url_and_their_assets_load(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html, html
    urls = page_urls(html)
    assert "/openapi.json" in urls
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, f"{page} names no script: {urls}"
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"] and len(asset.content) > 100_000, url
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url


def test_only_the_vendored_assets_are_served(client: TestClient) -> None:
    assert client.get("/docs/assets/README.md").status_code == 404
    assert client.get("/docs/assets/..%2F..%2Fmain.py").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 200
    # The docs routes are not part of the API description.
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app behind a real uvicorn server on 127.0.0.1 (no model needed for the docs)."""
    app = create_app(Settings(model="yolo11n.yaml", device="cpu"), load_model=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="docs-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_status(f"{base}/healthz") == 200, timeout=30, what="docs server")
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def rendered_dom(url: str, profile: Path) -> str:
    """What headless Chromium shows at ``url`` after its scripts ran (virtual time lets fetches finish)."""
    cmd = [
        need_binary("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("page", PAGES)
def test_chromium_renders_the_operations_offline(docs_server: str, page: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{docs_server}{page}", tmp_path / "chromium-profile")
    # Operation paths appear only once the script has loaded /openapi.json and rendered it.
    assert "/v1/detect/batch" in dom, dom[-2000:]
    assert "/v1/cameras" in dom
