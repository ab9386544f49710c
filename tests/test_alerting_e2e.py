"""End to end: the shipped alert rules fire through the real Prometheus and Alertmanager.

* Night falls on a source: ``VisionLowBrightness`` fires, Alertmanager notifies, daylight resolves it.
* Two RTSP cameras served by GStreamer: one re-sends a single decoded buffer (a frozen picture),
  one gets its lens covered after a few seconds of daylight: ``VisionCameraFrozen`` and
  ``VisionCameraTampered{kind="covered"}`` fire for the right camera each.

Real processes on 127.0.0.1: the service (real weights), Debian's Prometheus with copies of the
shipped rule files (only ``for:`` shortened, programmatically, and for the camera test the frozen
threshold), Debian's Alertmanager with a copy of the shipped configuration (receiver URLs pointed
at a webhook in this test, grouping timers shortened), and that webhook. No timing assertions:
every step polls with a timeout.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import quality
from quality.simulate import covered, gaussian_noise, low_light
from tests.conftest import encode_jpeg
from tests.infra import Prometheus, free_port, http_status, need_binary, prometheus, running, vision_service, wait_for
from tests.streams import RtspServer, photographs, write_frames

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "compose" / "prometheus" / "rules"
ALERTMANAGER_CONFIG = ROOT / "compose" / "alertmanager" / "alertmanager.yml"
SOURCE = "parking"
ALERT = "VisionLowBrightness"
SHORT_FOR = "1s"
# The shipped threshold (thresholds.yml) that the night frames must fall below, read, not repeated.
THRESHOLD_RECORD = "vision:threshold:low_brightness_ratio"


# ------------------------------------------------------------------ shipped configs, shortened


def shortened_rule_files(tmp: Path, thresholds: dict[str, float] | None = None) -> list[Path]:
    """Copies of every shipped rule file with each alert's ``for:`` set to SHORT_FOR and the given
    thresholds (``vision:threshold:*`` records) replaced; nothing else changes."""
    out_dir = tmp / "rules"
    out_dir.mkdir()
    copies = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = SHORT_FOR
                if rule.get("record") in (thresholds or {}):
                    rule["expr"] = f"vector({thresholds[rule['record']]})"  # type: ignore[index]
        copy = out_dir / path.name
        copy.write_text(yaml.safe_dump(document, sort_keys=False))
        copies.append(copy)
    return copies


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes") or []:
        yield from _routes(child)


def alertmanager_config(tmp: Path, webhook_url: str) -> Path:
    """A copy of the shipped alertmanager.yml: every receiver posts to ``webhook_url``; timers in seconds."""
    document = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in document["receivers"]:
        for config in receiver.get("webhook_configs") or []:
            config["url"] = webhook_url
    document.setdefault("global", {})["resolve_timeout"] = "10s"
    root = document["route"]
    for route in _routes(root):
        for key in ("group_wait", "group_interval"):
            if key in route or route is root:
                route[key] = "1s"
    text = yaml.safe_dump(document, sort_keys=False)
    assert "alert-webhook" not in text, "a receiver still points at the placeholder URL"
    path = tmp / "alertmanager.yml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------ processes


class Webhook:
    """Collects every Alertmanager webhook payload posted to it."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self.payloads.append(payload)

    def alerts(self, *, status: str, alertname: str = ALERT, source: str = SOURCE) -> list[dict[str, Any]]:
        """Notified alerts named ``alertname`` for ``source`` with ``status`` (firing | resolved)."""
        with self._lock:
            payloads = list(self.payloads)
        return [
            alert
            for payload in payloads
            for alert in payload["alerts"]
            if alert["labels"].get("alertname") == alertname
            and alert["labels"].get("source") == source
            and alert["status"] == status
        ]


@contextmanager
def webhook_receiver() -> Iterator[tuple[Webhook, str]]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.add(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield hook, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def alertmanager(tmp: Path, config: Path) -> Iterator[str]:
    """Debian's Alertmanager on a free port, clustering off; yields host:port once ready."""
    port = free_port()
    cmd = [
        need_binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={tmp / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with running(cmd, log=tmp / "alertmanager.log"):
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/-/ready") == 200, timeout=30, what="Alertmanager ready")
        yield f"127.0.0.1:{port}"


# ------------------------------------------------------------------ the scenario


def post_image(base: str, data: bytes, source: str) -> None:
    request = urllib.request.Request(
        f"{base}/v1/detect?source={source}", data=data, headers={"content-type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def keep_posting(base: str, images: list[bytes], until: Callable[[], Any]) -> Callable[[], Any]:
    """A wait_for check that posts the next image to SOURCE, then asks whether ``until`` holds."""
    sent = [0]

    def check() -> Any:
        post_image(base, images[sent[0] % len(images)], SOURCE)
        sent[0] += 1
        return until()

    return check


def threshold(prom: Prometheus) -> float:
    rows = wait_for(lambda: prom.query(THRESHOLD_RECORD), timeout=30, what=THRESHOLD_RECORD)
    return float(rows[0]["value"][1])


def test_night_fires_low_brightness_and_daylight_resolves_it(
    tmp_path: Path, model_path: str, bus_bgr: np.ndarray, zidane_bgr: np.ndarray
) -> None:
    rng = np.random.default_rng(7)
    # 0.5 % of the daylight exposure, camera gain at its limit (x4): a badly lit scene at night.
    nights = [low_light(photo, light=0.005, gain=4.0, rng=rng) for photo in (bus_bgr, zidane_bgr) * 2]
    days = [bus_bgr, zidane_bgr]
    night_jpegs = [encode_jpeg(image) for image in nights]
    day_jpegs = [encode_jpeg(image) for image in days]

    with (
        webhook_receiver() as (hook, hook_url),
        alertmanager(tmp_path, alertmanager_config(tmp_path, hook_url)) as am,
        vision_service(tmp_path, model=model_path, env={"VISION_SOURCES": SOURCE}) as base,
        prometheus(
            tmp_path,
            [base.removeprefix("http://")],
            rule_files=shortened_rule_files(tmp_path),
            alertmanager=am,
        ) as prom,
    ):
        low = threshold(prom)
        assert (
            max(quality.measure(n).brightness for n in nights) < low < min(quality.measure(d).brightness for d in days)
        ), "the night frames must be below, the day frames above the shipped threshold"

        # Night: keep sending dark frames until the notification arrives.
        fired = wait_for(
            keep_posting(base, night_jpegs, lambda: hook.alerts(status="firing")),
            timeout=90,
            interval=0.2,
            what=f"{ALERT} firing for {SOURCE} at the webhook",
        )
        alert = fired[0]
        assert alert["labels"]["severity"] == "warning"
        assert SOURCE in alert["annotations"]["description"]

        # Detection yield by brightness band (docs/drift.md): the night frames are all in the dark band.
        frames = "(sum by (source, brightness_band) (rate(vision_image_detections_count[5m])) > 0)"
        detections_per_image = f"sum by (source, brightness_band) (rate(vision_image_detections_sum[5m])) / {frames}"
        share_without_detections = (
            f'sum by (source, brightness_band) (rate(vision_image_detections_bucket{{le="0.0"}}[5m])) / {frames}'
        )
        for query in (detections_per_image, share_without_detections):
            rows = wait_for(lambda q=query: prom.query(q), timeout=30, what=f"detection yield: {query}")
            assert {(r["metric"]["source"], r["metric"]["brightness_band"]) for r in rows} == {(SOURCE, "dark")}

        # Day: daylight frames until the mean is back above the threshold and the resolution arrives.
        resolved = wait_for(
            keep_posting(base, day_jpegs, lambda: hook.alerts(status="resolved")),
            timeout=90,
            interval=0.2,
            what=f"{ALERT} resolved for {SOURCE} at the webhook",
        )
        assert resolved[0]["labels"]["source"] == SOURCE
        assert resolved[0]["startsAt"] == alert["startsAt"]  # the same alert, now over


# ------------------------------------------------------------------ camera health


def test_a_frozen_camera_and_a_covered_lens_fire_their_alerts(tmp_path: Path, model_path: str) -> None:
    rng = np.random.default_rng(8)
    street = photographs(size=(320, 240))[0]
    frozen_frames = write_frames(tmp_path / "frozen", [gaussian_noise(street, 3.0, rng=rng)])
    # Six seconds of daylight (the reference scene is learned from it), then a hand over the lens.
    daylight = [gaussian_noise(street, 3.0, rng=rng) for _ in range(30)]
    hand = [covered(street, light=0.03, rng=rng) for _ in range(300)]
    lens_frames = write_frames(tmp_path / "lens", daylight + hand)
    with (
        RtspServer(frozen_frames, tmp_path / "rtsp-frozen.log", fps=5, freeze=True) as frozen_server,
        RtspServer(lens_frames, tmp_path / "rtsp-lens.log", fps=5) as lens_server,
    ):
        cameras = tmp_path / "cameras.yaml"
        cameras.write_text(
            yaml.safe_dump(
                {
                    "cameras": [
                        {"id": "frozen", "url": frozen_server.url(), "fps": 2},
                        {"id": "lens", "url": lens_server.url(), "fps": 2},
                    ]
                }
            )
        )
        env = {
            "VISION_CAMERAS_FILE": str(cameras),
            "VISION_TAMPER_MIN_SECONDS": "2",
            "VISION_TAMPER_REFERENCE_FRAMES": "3",
        }
        with (
            webhook_receiver() as (hook, hook_url),
            alertmanager(tmp_path, alertmanager_config(tmp_path, hook_url)) as am,
            vision_service(tmp_path, model=model_path, env=env) as base,
            prometheus(
                tmp_path,
                [base.removeprefix("http://")],
                rule_files=shortened_rule_files(tmp_path, {"vision:threshold:camera_frozen_seconds": 5}),
                alertmanager=am,
            ) as prom,
        ):
            frozen = wait_for(
                lambda: hook.alerts(status="firing", alertname="VisionCameraFrozen", source="frozen"),
                timeout=180,
                what="VisionCameraFrozen firing for the frozen camera at the webhook",
            )
            assert frozen[0]["labels"]["severity"] == "critical" and frozen[0]["labels"]["camera"] == "frozen"
            tampered = wait_for(
                lambda: hook.alerts(status="firing", alertname="VisionCameraTampered", source="lens"),
                timeout=180,
                what="VisionCameraTampered firing for the covered lens at the webhook",
            )
            assert {a["labels"]["kind"] for a in tampered} == {"covered"}
            assert "covered" in tampered[0]["annotations"]["description"]
            # Each alert names only its own camera: the covered lens still changes (sensor noise), the
            # frozen camera learned its (frozen) picture as its scene.
            assert not hook.alerts(status="firing", alertname="VisionCameraFrozen", source="lens")
            assert not hook.alerts(status="firing", alertname="VisionCameraTampered", source="frozen")
            rows = prom.query("vision_camera_new_frame_age_seconds")
            ages = {r["metric"]["camera"]: float(r["value"][1]) for r in rows}
            assert ages["frozen"] > 5 > ages["lens"]
