"""Prometheus rules, promtool unit tests and the Alertmanager config.

Runs the real tools (promtool, amtool, alertmanager) on the shipped files and
checks in Python what the tools cannot: every required alert exists once,
carries the agreed labels/annotations, is covered by a firing and a quiet test
case, and reads its thresholds from the one thresholds file.
Missing tools are a failure, not a skip: install them with
`apt-get install prometheus prometheus-alertmanager`.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import stop_process

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "compose" / "prometheus" / "rules"
PROMTOOL_TESTS_DIR = ROOT / "compose" / "prometheus" / "tests"
ALERTMANAGER_CONFIG = ROOT / "compose" / "alertmanager" / "alertmanager.yml"
THRESHOLDS_FILE = RULES_DIR / "thresholds.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"

INSTALL_HINT = "run `apt-get install prometheus prometheus-alertmanager`"

REQUIRED_ALERTS = (
    "VisionLowBrightness",
    "VisionBrightnessDrop",
    "VisionHighNoise",
    "VisionBlurryFrames",
    "VisionInputDrift",
    "VisionNoDetections",
    "VisionLowConfidence",
    "VisionCameraDown",
    "VisionCameraFrozen",
    "VisionCameraTampered",
    "VisionHighInferenceLatency",
    "VisionHighErrorRate",
    "VisionGPUSaturated",
    "VisionModelNotReady",
)
# Alerts whose series carry `source`; their descriptions must name it.
SOURCE_ALERTS = frozenset(REQUIRED_ALERTS) - {
    "VisionHighInferenceLatency",
    "VisionGPUSaturated",
    "VisionModelNotReady",
}
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
PROMTOOL_TEST_FILES = sorted(PROMTOOL_TESTS_DIR.glob("*.yml"))
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{' / '.join(names)} not found on PATH: {INSTALL_HINT}", pytrace=False)


def _run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in RULE_FILES:
        for group in _load(path)["groups"]:
            for rule in group["rules"]:
                yield path, rule


def _alert_rules() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for _, rule in _rules():
        if "alert" in rule:
            found.setdefault(rule["alert"], []).append(rule)
    return found


def _alert_cases() -> Iterator[tuple[Path, dict[str, Any], dict[str, Any]]]:
    for path in PROMTOOL_TEST_FILES:
        for group in _load(path).get("tests") or []:
            for case in group.get("alert_rule_test") or []:
                yield path, group, case


def _thresholds() -> dict[str, float]:
    values: dict[str, float] = {}
    for group in _load(THRESHOLDS_FILE)["groups"]:
        for rule in group["rules"]:
            match = re.fullmatch(r"vector\(\s*([0-9.eE+-]+)\s*\)", str(rule["expr"]).strip())
            assert match, f"{rule['record']}: threshold must be `vector(<number>)`, got {rule['expr']!r}"
            assert rule["record"] not in values, f"{rule['record']} defined twice"
            values[rule["record"]] = float(match.group(1))
    return values


# --------------------------------------------------------------- the tools


def test_rule_and_test_files_exist() -> None:
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    assert PROMTOOL_TEST_FILES, f"no promtool test files in {PROMTOOL_TESTS_DIR}"
    assert THRESHOLDS_FILE in RULE_FILES


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(rule_file: Path) -> None:
    result = _run([_tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", PROMTOOL_TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path) -> None:
    # Rule paths in the test files are relative to the test file.
    result = _run([_tool("promtool"), "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_tests_load_every_rule_file() -> None:
    for path in PROMTOOL_TEST_FILES:
        loaded = {(path.parent / f).resolve() for f in _load(path)["rule_files"]}
        assert loaded == {p.resolve() for p in RULE_FILES}, f"{path.name} must load all rule files"


def test_amtool_check_config() -> None:
    result = _run([_tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=VisionCameraDown", "severity=critical", "source=cam-1"], "critical"),
        (["alertname=VisionLowBrightness", "severity=warning", "source=cam-1"], "warning"),
        (["alertname=SomethingElse"], "default"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = _run([_tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


# ------------------------------------------------------------ rule content


def test_required_alerts_exist_once_with_labels_and_annotations() -> None:
    alerts = _alert_rules()
    for name in REQUIRED_ALERTS:
        assert name in alerts, f"alert {name} is missing"
        assert len(alerts[name]) == 1, f"alert {name} is defined {len(alerts[name])} times"
        rule = alerts[name][0]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: annotation {key} is empty"


def test_descriptions_name_the_source_and_the_value() -> None:
    for name, (rule, *_) in _alert_rules().items():
        description = rule["annotations"]["description"]
        assert "$value" in description, f"{name}: description must show the measured $value"
        assert "$labels." in description, f"{name}: description must name what it is about"
        if name in SOURCE_ALERTS:
            assert "$labels.source" in description, f"{name}: description must name the source"
    for name in ("VisionCameraDown", "VisionCameraFrozen", "VisionCameraTampered"):
        camera = _alert_rules()[name][0]
        assert "$labels.camera" in camera["annotations"]["description"], name


def test_for_is_a_plain_top_level_duration() -> None:
    # The end-to-end test rewrites `for:` to shorter values with a YAML round trip.
    for name, (rule, *_) in _alert_rules().items():
        assert isinstance(rule.get("for"), str), f"{name}: needs a `for:` duration"
        assert DURATION.match(rule["for"]), f"{name}: for={rule['for']!r} is not a duration"


@pytest.mark.parametrize("alert", ["VisionCameraDown", "VisionCameraFrozen", "VisionCameraTampered"])
def test_camera_alerts_copy_camera_into_source(alert: str) -> None:
    # Alertmanager inhibits by `equal: [source]`; camera metrics only carry `camera`.
    expr = _alert_rules()[alert][0]["expr"]
    assert re.search(r'label_replace\(.*"source",\s*"\$1",\s*"camera"', expr, re.S), expr


def test_thresholds_live_in_one_place() -> None:
    thresholds = _thresholds()
    for path, rule in _rules():
        expr = str(rule["expr"])
        for name in re.findall(r"vision:threshold:\w+", expr):
            assert name in thresholds, f"{path.name}: {name} is not defined in thresholds.yml"
        if "alert" in rule:
            # No hidden constants: comparisons against numbers other than 0 belong in thresholds.yml.
            literal = re.search(r"(?:[<>]=?|==|!=)\s*(?:bool\s+)?(?!0(?:\.0*)?\b)\d", expr)
            assert not literal, f"{rule['alert']}: literal threshold {literal.group(0)!r}; use thresholds.yml"
        if "record" in rule and path != THRESHOLDS_FILE:
            assert not rule["record"].startswith("vision:threshold:"), rule["record"]


def test_source_alerts_link_to_the_sources_card_on_the_live_page() -> None:
    """An operator paged about a source opens its frames: the URL comes from links.yml, recorded once."""
    (links,) = [rule for path, rule in _rules() if path.name == "links.yml"]
    assert links["record"] == "vision:service_url" and '"url"' in links["expr"]
    for name in SOURCE_ALERTS - {"VisionHighErrorRate"}:
        evidence = _alert_rules()[name][0]["annotations"].get("evidence", "")
        assert 'query "vision:service_url"' in evidence and evidence.endswith("/#source={{ $labels.source }}"), name


def test_thresholds_and_alerts_are_documented() -> None:
    assert ALERTS_DOC.exists(), f"{ALERTS_DOC} is missing"
    doc = ALERTS_DOC.read_text(encoding="utf-8")
    for name in _thresholds():
        assert name in doc, f"threshold {name} is not documented in docs/alerts.md"
    for name in REQUIRED_ALERTS:
        assert name in doc, f"alert {name} is not documented in docs/alerts.md"


# ------------------------------------------------------------- test coverage


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path, _, case in _alert_cases():
        name = case["alertname"]
        assert name in _alert_rules(), f"{path.name}: test for unknown alert {name}"
        (firing if case.get("exp_alerts") else quiet).add(name)
    for name in REQUIRED_ALERTS:
        assert name in firing, f"no promtool case where {name} fires"
        assert name in quiet, f"no promtool case where {name} must stay quiet"


def test_scenarios_are_covered() -> None:
    names = [str(group.get("name", "")) for path in PROMTOOL_TEST_FILES for group in _load(path)["tests"]]
    for needle in ("nightfall", "camera outage", "two replicas"):
        assert any(needle in n for n in names), f"no promtool test group about {needle!r}"


def test_two_replicas_give_one_alert() -> None:
    for _, group, case in _alert_cases():
        if "two replicas" not in str(group.get("name", "")):
            continue
        instances = {m.group(1) for s in group["input_series"] for m in re.finditer(r'instance="([^"]+)"', s["series"])}
        assert len(instances) >= 2
        sources = [a["exp_labels"].get("source") for a in case["exp_alerts"]]
        assert len(sources) == len(set(sources)) == 1, case
        assert "instance" not in case["exp_alerts"][0]["exp_labels"]


# --------------------------------------------------- inhibition, for real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(url: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


def _camera_down_labels() -> dict[str, str]:
    """The labels VisionCameraDown really has, as asserted by the promtool camera tests."""
    for _, _, case in _alert_cases():
        if case["alertname"] == "VisionCameraDown" and case.get("exp_alerts"):
            return {"alertname": "VisionCameraDown", **case["exp_alerts"][0]["exp_labels"]}
    pytest.fail("no firing VisionCameraDown case in the promtool tests")


def test_alertmanager_inhibits_what_a_down_or_tampered_camera_explains(tmp_path: Path) -> None:
    binary = _tool("alertmanager", "prometheus-alertmanager")
    down = _camera_down_labels()
    camera = down["source"]
    assert camera == down["camera"]
    alerts = {
        "down": down,
        "inhibited": {"alertname": "VisionNoDetections", "severity": "warning", "source": camera},
        "other": {"alertname": "VisionNoDetections", "severity": "warning", "source": "other-camera"},
        "dark": {"alertname": "VisionLowBrightness", "severity": "warning", "source": "cam-night"},
        "blur": {"alertname": "VisionBlurryFrames", "severity": "warning", "source": "cam-night"},
        "frozen while down": {
            "alertname": "VisionCameraFrozen",
            "severity": "critical",
            "source": camera,
            "camera": camera,
        },
        "covered": {
            "alertname": "VisionCameraTampered",
            "severity": "critical",
            "source": "cam-lens",
            "camera": "cam-lens",
            "kind": "covered",
        },
        "dark because covered": {"alertname": "VisionLowBrightness", "severity": "warning", "source": "cam-lens"},
        "drift because covered": {
            "alertname": "VisionInputDrift",
            "severity": "warning",
            "source": "cam-lens",
            "signal": "brightness",
            "test": "ks",
            "regime": "night",
        },
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v2"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _http(f"{base}/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"alertmanager did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.2)
        _http(f"{base}/alerts", [{"labels": labels} for labels in alerts.values()])

        def state(got: list[dict[str, Any]], labels: dict[str, str]) -> str:
            for alert in got:
                if alert["labels"] == labels:
                    return str(alert["status"]["state"])
            return "missing"

        expected = {
            "down": "active",
            "inhibited": "suppressed",
            "other": "active",
            "dark": "active",
            "blur": "suppressed",
            "frozen while down": "suppressed",
            "covered": "active",
            "dark because covered": "suppressed",
            "drift because covered": "suppressed",
        }
        deadline = time.monotonic() + 15
        while True:
            got = _http(f"{base}/alerts")
            states = {key: state(got, labels) for key, labels in alerts.items()}
            if states == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert states == expected
    finally:
        stop_process(proc)
