"""The live page at /: served by the service with its own assets (uPlot vendored), nothing from elsewhere.

What it looks like in a real browser is tests/test_page_browser.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.infra import REPO
from vision_service.api.routes.page import ASSETS, PAGE, STATIC_DIR

EXTERNAL_URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.I)


def test_the_page_is_html_with_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == PAGE.read_text()


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_asset_is_served_with_its_type(client: TestClient, name: str) -> None:
    response = client.get(f"/ui/{name}")
    path, media_type = ASSETS[name]
    assert response.status_code == 200 and response.content == path.read_bytes()
    assert response.headers["content-type"] == media_type


@pytest.mark.parametrize("path", ["/ui/index.html", "/ui/LICENSE", "/ui/..%2Fpage%2Fpage.js", "/ui/"])
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_page_refers_only_to_this_service() -> None:
    """No CDN, no font service: every URL in the page and its own assets is a path on this origin."""
    for path in (PAGE, STATIC_DIR / "page" / "page.js", STATIC_DIR / "page" / "page.css"):
        text = path.read_text()
        assert not EXTERNAL_URL.search(text), f"{path.name}: {EXTERNAL_URL.search(text)}"
    html = PAGE.read_text()
    referenced = set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', html))
    assert referenced == {f"/ui/{name}" for name in ASSETS}


def test_uplot_is_vendored_with_its_license_and_version() -> None:
    uplot = STATIC_DIR / "uplot"
    assert (uplot / "LICENSE").read_text().startswith("The MIT License")
    assert "(v1.6.32)" in (uplot / "uPlot.iife.min.js").read_text()[:200]
    assert "1.6.32" in (uplot / "README.md").read_text()


def test_a_built_wheel_ships_the_page_uplot_and_the_thresholds(tmp_path: Path) -> None:
    """What a non-editable install (and the Docker image, which pip-installs the package) gets.

    Built from a copy of what the Dockerfile copies, so the checkout gets no build/ folder.
    """
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for name in ("quality", "vision_service"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("vision_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "vision_service/thresholds.yml",
        *(f"vision_service/api/static/page/{p.name}" for p in (STATIC_DIR / "page").iterdir()),
        *(f"vision_service/api/static/uplot/{p.name}" for p in (STATIC_DIR / "uplot").iterdir()),
    }
    assert wanted <= names, wanted - names
