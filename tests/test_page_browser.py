"""The live page in a real browser: headless Chromium against a running service fed a day -> night sequence.

The service runs as its own process with an API key and evidence on disk; two sources receive real
photographs by day and then at night (the honest low-light simulation). Chromium opens ``/``, is
asked for the key, logs in through the page's form, and must then show a card per source with its
sparklines, conditions and evidence thumbnails, loaded with the session cookie. Every request the
page made is recorded over the DevTools protocol: none may leave 127.0.0.1. The screenshot is kept
in the test's tmp_path (docs/img/live-page.png is made the same way by scripts/page_screenshot.py).
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Chromium
from tests.conftest import encode_jpeg
from tests.infra import http_json, vision_service, wait_for
from tests.streams import day_night_frames

KEY = "browser-test-key"
HEADERS = {"X-API-Key": KEY}


def post(base: str, frame: bytes, source: str) -> None:
    request = urllib.request.Request(
        f"{base}/v1/detect?source={source}", data=frame, headers={"content-type": "image/jpeg", **HEADERS}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    env = {
        "VISION_SOURCES": "street,parking",
        "VISION_IMAGE_SIZE": "320",
        "VISION_API_KEY": KEY,
        "VISION_EVIDENCE_DIR": str(tmp / "evidence"),
        "VISION_EVIDENCE_MAX_SIDE": "320",
        # Baselines are learned per regime (day, twilight, night): a deep night (every frame darker
        # than 0.15) of 5 frames per photograph makes 20 night frames of the street, enough to learn
        # its night from and to score (drift scores need 20 values of a signal).
        "VISION_BASELINE_LEARN_FRAMES": "20",
        "VISION_DRIFT_WINDOW_FRAMES": "20",
    }
    day, night = day_night_frames(frames_per_photo=5, night_light=0.003)
    with vision_service(tmp, model=model_path, env=env) as base:
        for frame in day + night:  # street: daylight, then the same scenes at night
            post(base, encode_jpeg(frame), "street")
        for frame in night:  # parking: night only
            post(base, encode_jpeg(frame), "parking")

        def kept() -> bool:
            body = http_json(f"{base}/v1/sources/street/samples", headers=HEADERS)
            return {"darkest", "latest"} <= {k for s in body["samples"] for k in s["kinds"]}

        wait_for(kept, timeout=60, what="evidence frames written")
        yield base


def test_the_live_page_shows_sources_and_thumbnails_and_asks_nothing_of_anyone_else(
    service: str, tmp_path: Path
) -> None:
    with Chromium(tmp_path / "profile") as browser:
        browser.navigate(f"{service}/#source=parking")
        # An API key is configured: the page asks for it, once.
        browser.wait_until("!document.getElementById('login').hidden", timeout=60, what="the login form")
        assert browser.evaluate("document.querySelectorAll('.card').length") == 0
        browser.evaluate(
            f"document.getElementById('api-key').value = {KEY!r};"
            "document.getElementById('login-form').requestSubmit(); true"
        )
        browser.wait_until(
            "document.querySelectorAll('.card').length === 3 && "
            "document.querySelectorAll('.evidence img').length >= 6 && "
            "[...document.querySelectorAll('.evidence img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=120,
            what="three cards with their thumbnails loaded",
        )
        cards = browser.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.source)")
        assert cards == ["parking", "street", "upload"]
        conditions = browser.evaluate("[...document.querySelectorAll('#source-parking .chip')].map(c => c.textContent)")
        assert "low_light" in conditions
        kinds = browser.evaluate(
            "[...document.querySelectorAll('#source-street figcaption b')].map(b => b.textContent).join(' · ')"
        )
        for kind in ("latest", "darkest", "noisiest"):
            assert kind in kinds
        # Five sparklines per card that has frames, drawn by uPlot on canvases.
        assert browser.evaluate("document.querySelectorAll('#source-street .spark canvas').length") == 5
        assert browser.evaluate("document.querySelector('#source-parking').classList.contains('focus')")
        # The street is at night now: its drift is scored against its own usual night.
        assert browser.evaluate("document.querySelector('#source-street table.drift') !== null")
        assert "night baseline" in browser.evaluate("document.querySelector('#source-street h3').textContent")
        # The session is an HttpOnly cookie: the page's scripts cannot read it.
        assert browser.evaluate("document.cookie") == ""
        shot = browser.screenshot(tmp_path / "live-page.png")
        requests = browser.requests
        problems = browser.problems

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    origin = urllib.parse.urlsplit(service)
    assert requests, "no request recorded"
    for url in requests:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "data" or (parts.scheme, parts.hostname, parts.port) == (
            "http",
            "127.0.0.1",
            origin.port,
        ), f"the page requested {url}"
    assert any("/v1/sources/street/samples/" in url and url.endswith(".jpg") for url in requests)
    assert any(url.endswith("/ui/uPlot.iife.min.js") for url in requests)
    assert not [p for p in problems if "401" not in p], problems  # a CSP violation would be listed here
