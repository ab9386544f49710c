"""docs/quickstart.md, steps 1-3 and B1-B3, as written: a dark camera ends in a delivered alert.

Real processes on 127.0.0.1: the service (real weights) reading the quickstart's camera file,
Debian's Prometheus with the quickstart's prometheus.yml blocks, Debian's Alertmanager with its
alertmanager.yml, and a webhook receiver of this test. The configuration is read from the page's
``<!-- tested: NAME -->`` blocks, so the page cannot drift from what runs here. What the test
changes, and nothing else (the page's "How this page is tested" says the same):

* the camera URL: a looping local video of real photographs darkened with
  ``quality.simulate.low_light`` (no camera is reachable from a test);
* ``vision-host:8000``, ``alertmanager-host:9093``, the receiver URL and the rules folder: the
  test's own addresses and a folder of copies of ``compose/prometheus/rules/*.yml``;
* time: each alert's ``for:`` is 1 s in those copies (as in tests/test_alerting_e2e.py),
  ``global.evaluation_interval`` is 1 s, Alertmanager's ``group_wait``/``group_interval`` 1 s.
  No rate window is changed: the alert reads the shipped 5-minute mean.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import quality
from quality.simulate import low_light
from tests.infra import http_json, need_binary, prometheus_from_config, vision_service, wait_for
from tests.streams import photographs, write_video
from tests.test_alerting_e2e import alertmanager, shortened_rule_files, webhook_receiver

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "docs" / "quickstart.md"
CAMERA = "parking-lot"
ALERT = "VisionLowBrightness"


def quickstart_block(name: str) -> str:
    """The fenced block right after ``<!-- tested: name -->`` in docs/quickstart.md."""
    match = re.search(rf"<!-- tested: {re.escape(name)} -->\n```\w*\n(.*?)```", QUICKSTART.read_text(), re.S)
    assert match, f"docs/quickstart.md has no tested block {name!r}"
    return match.group(1)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the quickstart block"
    return text.replace(old, new)


def dark_camera_file(tmp: Path) -> Path:
    """Step 1's cameras.yml with the camera URL pointing at a dark video (looped) beside it."""
    rng = np.random.default_rng(3)
    # 0.5 % of the daylight exposure, gain at x4: a parking lot after dusk.
    frames = [low_light(photo, light=0.005, gain=4.0, rng=rng) for photo in photographs()[:2] for _ in range(5)]
    assert max(quality.measure(frame).brightness for frame in frames) < 0.15
    write_video(tmp / "dusk.mp4", frames, fps=10)
    document = yaml.safe_load(quickstart_block("cameras.yml"))
    [camera] = document["cameras"]
    assert camera["id"] == CAMERA
    camera.update(url="dusk.mp4", loop=True)
    path = tmp / "cameras.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def prometheus_config(tmp: Path, service: str, alertmanager_address: str) -> Path:
    """B1 + B2: the rules copied to a folder, and the quickstart's prometheus.yml blocks."""
    rules = shortened_rule_files(tmp)
    assert {p.name for p in rules} == {p.name for p in (ROOT / "compose" / "prometheus" / "rules").glob("*.yml")}
    text = quickstart_block("prometheus.yml")
    text = replace_once(text, "/etc/prometheus/vision/*.yml", f"{rules[0].parent}/*.yml")
    text = replace_once(text, "vision-host:8000", service)
    text = replace_once(text, "alertmanager-host:9093", alertmanager_address)
    document = yaml.safe_load(text)
    document["global"] = {"evaluation_interval": "1s"}
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    check = subprocess.run([need_binary("promtool"), "check", "config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(rules)} rule files found" in check.stdout, check.stdout
    return path


def alertmanager_config(tmp: Path, receiver_url: str) -> Path:
    """B3: the quickstart's alertmanager.yml, its receiver at the test's webhook, timers in seconds."""
    text = replace_once(quickstart_block("alertmanager.yml"), "http://chat-bridge.example:5001/vision", receiver_url)
    document = yaml.safe_load(text)
    document["route"]["group_wait"] = document["route"]["group_interval"] = "1s"
    for route in document["route"]["routes"]:
        route["group_wait"] = route["group_interval"] = "1s"
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    check = subprocess.run([need_binary("amtool"), "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return path


def metrics_text(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_a_dark_camera_ends_in_a_delivered_alert(tmp_path: Path, model_path: str) -> None:
    cameras_file = dark_camera_file(tmp_path)
    with (
        webhook_receiver() as (hook, hook_url),
        alertmanager(tmp_path, alertmanager_config(tmp_path, hook_url)) as am,
        # Step 2: VISION_CAMERAS_FILE=$PWD/cameras.yml make serve (here: the same command, a free port).
        vision_service(tmp_path, model=model_path, env={"VISION_CAMERAS_FILE": str(cameras_file)}) as base,
    ):
        # Step 3: the camera is up and its frames are counted under its id.
        def camera_up() -> dict[str, Any] | None:
            cameras = {c["id"]: c for c in http_json(f"{base}/v1/cameras")["cameras"]}
            return cameras[CAMERA] if cameras[CAMERA]["status"] == "up" else None

        wait_for(camera_up, timeout=60, what=f"camera {CAMERA} up")
        wait_for(
            lambda: f'vision_image_brightness_ratio_count{{source="{CAMERA}"}}' in metrics_text(base),
            timeout=60,
            what=f"brightness of {CAMERA} in /metrics",
        )

        config = prometheus_config(tmp_path, base.removeprefix("http://"), am)
        with prometheus_from_config(tmp_path, config) as prom:
            # B2: the target is up, the rules are loaded.
            targets = http_json(f"{prom.base}/api/v1/targets")["data"]["activeTargets"]
            assert [(t["labels"]["job"], t["health"]) for t in targets] == [("vision-service", "up")]
            groups = http_json(f"{prom.base}/api/v1/rules")["data"]["groups"]
            assert ALERT in {rule["name"] for group in groups for rule in group["rules"]}

            # Section 4: darkness -> pending -> firing -> delivered by the quickstart's route.
            def delivered() -> list[tuple[str, dict[str, Any]]]:
                return [
                    (payload["receiver"], alert)
                    for payload in list(hook.payloads)
                    for alert in payload["alerts"]
                    if alert["labels"].get("alertname") == ALERT and alert["status"] == "firing"
                ]

            [(receiver, alert), *_] = wait_for(delivered, timeout=180, what=f"{ALERT} at the webhook")
            assert receiver == "vision"
            assert alert["labels"]["source"] == CAMERA
            assert alert["labels"]["severity"] == "warning"
            assert CAMERA in alert["annotations"]["description"]
            mean = prom.query(f'source:vision_image_brightness_ratio:mean5m{{source="{CAMERA}"}}')
            assert 0 < float(mean[0]["value"][1]) < 0.15
