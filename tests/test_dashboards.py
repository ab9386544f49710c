"""The Grafana dashboards: valid against Grafana's schema, generated from dashboards/build.py, and every
PromQL expression in every panel returns data from a real Prometheus that scraped the real service.

The live part starts two replicas of `vision-service serve` (sharing one camera list, sharded) and
Debian's Prometheus scraping both (with copies of the shipped recording and alert rules, `for:`
shortened to 0s so alerts fire at once), posts a mixed workload of real photographs (daylight, low
light, blurred + noisy, over-exposed, corrupt uploads) from several sources, most of them spread
over both replicas, then runs each panel expression with the Grafana variables substituted the way Grafana
would: `$source` -> the selected sources as a regex, `$class` -> the detected classes,
`$__rate_interval` -> 1m, `$__range` -> the workload's time span, `${datasource}` ignored.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from ultralytics.utils import ASSETS

from quality.simulate import blur, gaussian_noise, low_light
from tests.conftest import encode_jpeg
from tests.infra import REPO, Prometheus, http_json, prometheus, vision_service, wait_for

DASHBOARD_DIR = REPO / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
RULES_DIR = REPO / "compose" / "prometheus" / "rules"

# Panels exempt from "returns data", and only these: the service has no GPU here, so no
# vision_gpu_* series exist. Their expressions must still parse (Prometheus answers "success").
GPU_PANELS = {("vision-service", "GPU utilization"), ("vision-service", "GPU memory")}

SOURCES = ("street", "garage", "yard")
CAMERA = "gate"  # a looping local video file, read by the service itself
RATE_INTERVAL = "1m"
LEARN_FRAMES = 20  # street's first frames become its drift baseline (VISION_BASELINE_LEARN_FRAMES)
REPLICAS = 2  # service processes scraped by the one Prometheus


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str
    instant: bool

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"

    @property
    def gpu_only(self) -> bool:
        """A query of an exempt GPU panel that reads a vision_gpu_* metric (its threshold line must still show)."""
        return (self.dashboard, self.panel) in GPU_PANELS and "vision_gpu_" in self.expr


def panel_queries() -> list[PanelQuery]:
    out = []
    for path in DASHBOARD_FILES:
        dashboard = load(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                out.append(
                    PanelQuery(
                        dashboard["uid"], panel["title"], target["refId"], target["expr"], bool(target.get("instant"))
                    )
                )
    return out


QUERIES = panel_queries()
ANNOTATIONS = [
    (load(path)["uid"], a["expr"]) for path in DASHBOARD_FILES for a in load(path)["annotations"]["list"] if "expr" in a
]


# --- static checks ------------------------------------------------------------------------------


def test_there_are_two_dashboards_input_quality_and_service() -> None:
    assert {load(p)["uid"] for p in DASHBOARD_FILES} == {"vision-input-quality", "vision-service"}


def test_committed_json_is_what_build_py_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(DASHBOARD_DIR / "build.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_round_trips_through_grafana_schema_models(path: Path) -> None:
    """grafana-foundation-sdk's typed models (Grafana's dashboard schema): nothing unknown, nothing lost."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    original = load(path)
    round_tripped = json.loads(json.dumps(Dashboard.from_json(original), cls=JSONEncoder))
    assert round_tripped == original


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_has_datasource_and_source_variables_and_alert_annotations(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    assert source["multi"] and source["includeAll"] and source["allValue"] == ".*"
    assert "vision_images_total" in source["query"]
    if dashboard["uid"] == "vision-input-quality":
        assert variables["class"]["multi"] and "vision_detections_total" in variables["class"]["query"]
    (annotation,) = dashboard["annotations"]["list"]
    assert annotation["expr"].startswith('ALERTS{alertstate="firing"')
    assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_says_what_a_bad_value_looks_like(path: Path) -> None:
    for panel in panels(load(path)):
        description = panel.get("description", "")
        assert "Bad" in description and len(description) > 80, panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_panels_read_the_datasource_variable_and_do_not_overlap(path: Path) -> None:
    taken: set[tuple[int, int]] = set()
    ids = set()
    for panel in load(path)["panels"]:
        ids.add(panel["id"])
        pos = panel["gridPos"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        assert pos["x"] + pos["w"] <= 24
        taken |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len(ids) == len(load(path)["panels"])


def test_sources_link_to_their_card_on_the_live_page() -> None:
    """Data links from a source's value or row to the service's page, at the URL Prometheus records (links.yml)."""
    dashboard = load(DASHBOARD_DIR / "input-quality.json")
    variable = {v["name"]: v for v in dashboard["templating"]["list"]}["vision_url"]
    assert variable["hide"] == 2 and variable["query"] == "label_values(vision:service_url, url)"
    linked = {
        p["title"]: p["fieldConfig"]["defaults"]["links"]
        for p in panels(dashboard)
        if p.get("fieldConfig", {}).get("defaults", {}).get("links")
    }
    assert {"Mean brightness (5m)", "Noise sigma (5m)", "Firing alerts", "Camera status"} <= set(linked)
    for title, links in linked.items():
        (link,) = links
        assert link["targetBlank"] and link["url"] in {
            "${vision_url}/#source=${__field.labels.source}",
            "${vision_url}/#source=${__data.fields.source}",
            "${vision_url}/#source=${__data.fields.camera}",
        }, title


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_rate_windows_are_rate_interval_or_range(query: PanelQuery) -> None:
    windows = re.findall(r"(?:rate|increase)\([^()]*\[([^\]]+)\]", query.expr)
    assert all(w in ("$__rate_interval", "$__range") for w in windows), query.expr


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_per_image_metrics_follow_the_source_variable(query: PanelQuery) -> None:
    for selector in re.findall(r"[\w:]*vision_(?:image|detection|images|detections)_[\w:]*(\{[^}]*\})?", query.expr):
        assert 'source=~"$source"' in selector, query.expr
    for selector in re.findall(r"[\w:]*vision_camera_[\w:]*(\{[^}]*\})?", query.expr):
        assert 'camera=~"$source"' in selector, query.expr


def test_gpu_exemptions_cover_exactly_the_gpu_panels() -> None:
    """The only panels allowed to be empty here are those reading vision_gpu_* metrics."""
    gpu_panels = {(q.dashboard, q.panel) for q in QUERIES if "vision_gpu_" in q.expr}
    assert gpu_panels == GPU_PANELS
    for query in QUERIES:
        if query.gpu_only:  # nothing but the GPU metric itself
            assert re.fullmatch(r"vision_gpu_\w+", query.expr), query.expr


# --- live: the real service, the real Prometheus -------------------------------------------------


def photos() -> list[np.ndarray]:
    """Real photographs (BGR), longer side 480 px: Ultralytics' bus and zidane, scikit-image's astronaut and coffee."""
    images = [cv2.imread(str(ASSETS / "bus.jpg")), cv2.imread(str(ASSETS / "zidane.jpg"))]
    images += [cv2.cvtColor(getattr(skdata, name)(), cv2.COLOR_RGB2BGR) for name in ("astronaut", "coffee")]
    out = []
    for image in images:
        scale = 480 / max(image.shape[:2])
        out.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    return out


def post_batch(base: str, frames: list[bytes], source: str) -> dict[str, Any]:
    boundary = "vision-test-boundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{i}.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + frame
        + b"\r\n"
        for i, frame in enumerate(frames)
    )
    body += f"--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    result: dict[str, Any] = http_json(f"{base}/v1/detect/batch?source={source}", data=body, headers=headers)
    return result


def post_one(base: str, frame: bytes, source: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/detect?source={source}", data=frame, headers={"content-type": "image/jpeg"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def brighten(image: np.ndarray) -> np.ndarray:
    """Over-exposed: gamma 0.4 lifts everything towards white."""
    return np.clip(255.0 * (image / 255.0) ** 0.4, 0, 255).astype(np.uint8)


def run_workload(bases: list[str], prom: Prometheus) -> None:
    """street goes to the first replica only (its drift baseline is learned there); the rest to both."""
    rng = np.random.default_rng(7)
    day = photos()
    truncated = encode_jpeg(day[0])[:2000]
    base = bases[0]
    turn = iter(range(1_000_000))

    def any_replica() -> str:
        return bases[next(turn) % len(bases)]

    def jpegs(images: list[np.ndarray]) -> list[bytes]:
        return [encode_jpeg(image) for image in images]

    # First one image per source and one of each rejection on every replica, scraped before the rest:
    # Prometheus cannot see an increase in a counter whose first sample already holds the whole burst.
    for replica in bases:
        for source in (*SOURCES, "upload"):
            assert post_one(replica, encode_jpeg(day[0]), source) == 200
        assert post_one(replica, truncated, "yard") == 400
        assert post_one(replica, truncated, "no-such-camera") == 400
    wait_for(
        lambda: len(prom.query('count by (instance) (vision_images_total{source="unknown"})')) == len(bases),
        timeout=30,
        what="every source scraped once from every replica",
    )

    # street: daylight first (learned as its drift baseline), then the same scenes at night.
    daylight = [day[i % len(day)] for i in range(LEARN_FRAMES)]
    night = [low_light(image, light=0.02, rng=rng) for image in daylight]
    for frames in (daylight, night):
        for start in range(0, len(frames), 5):
            result = post_batch(base, jpegs(frames[start : start + 5]), "street")
            assert result["failed"] == 0, result
    # garage: dim to dark; yard: out of focus and noisy; upload: over-exposed.
    garage = [low_light(image, light=light, rng=rng) for image in day for light in (0.02, 0.05)]
    yard = [gaussian_noise(blur(image, sigma=4.0), sigma=20.0, rng=rng) for image in day]
    upload = [brighten(image) for image in day[:2]]
    for source, images in (("garage", garage), ("yard", yard), ("upload", upload)):
        for frame in jpegs(images):
            assert post_one(any_replica(), frame, source) == 200
    # Rejected inputs: truncated JPEGs from yard, and a source nobody configured.
    assert post_one(any_replica(), truncated, "yard") == 400
    assert post_one(any_replica(), encode_jpeg(day[1]), "no-such-camera") == 400


def write_camera(folder: Path) -> Path:
    """A short dusk video (dim real photographs) and the camera file that loops it."""
    rng = np.random.default_rng(3)
    frames = [low_light(image, light=0.15, rng=rng) for image in photos()[:2] for _ in range(3)]
    height, width = 240, 320
    video = folder / "gate.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (width, height))
    for frame in frames:
        writer.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    writer.release()
    assert video.stat().st_size > 0
    cameras = folder / "cameras.yml"
    cameras.write_text(f"cameras:\n  - id: {CAMERA}\n    url: {video.name}\n    fps: 2\n    loop: true\n")
    return cameras


def regex_value(value: str) -> str:
    """A variable value as Grafana puts it into a Prometheus regex: special characters escaped."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


@dataclass
class Scraped:
    prom: Prometheus
    start: float
    sources: tuple[str, ...]
    classes: tuple[str, ...]

    def substitute(self, expr: str, *, range_seconds: int) -> str:
        source = "(" + "|".join(map(regex_value, self.sources)) + ")"
        klass = "(" + "|".join(map(regex_value, self.classes)) + ")"
        return (
            expr.replace("$__rate_interval", RATE_INTERVAL)
            .replace("$__range", f"{range_seconds}s")
            .replace("$source", source)
            .replace("$class", klass)
        )

    def run(self, query: PanelQuery | str, *, instant: bool = False) -> list[dict[str, Any]]:
        expr = query.expr if isinstance(query, PanelQuery) else query
        instant = query.instant if isinstance(query, PanelQuery) else instant
        now = time.time()
        promql = self.substitute(expr, range_seconds=int(now - self.start) + 30)
        if instant:
            return self.prom.query(promql)
        return self.prom.query_range(promql, self.start - 5, now, 1)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory, model_path: str) -> Iterator[Scraped]:
    tmp = tmp_path_factory.mktemp("dashboards")
    rules = tmp / "rules"
    rules.mkdir()
    for path in sorted(RULES_DIR.glob("*.yml")):
        # Same rules; alerts fire as soon as their condition holds.
        (rules / path.name).write_text(re.sub(r"(?m)^(\s+)for: \S+$", r"\1for: 0s", path.read_text()))
    cameras = write_camera(tmp)
    env = {
        "VISION_SHARD_PEERS": f"count:{REPLICAS}",
        "VISION_SOURCES": ",".join(SOURCES),
        "VISION_IMAGE_SIZE": "320",
        "VISION_BASELINE_LEARN_FRAMES": str(LEARN_FRAMES),
        "VISION_DRIFT_WINDOW_FRAMES": str(LEARN_FRAMES),
        "VISION_CAMERAS_FILE": str(cameras),
        # The camera's reference scene after 3 frames, so its tamper scores exist by the end of the workload.
        "VISION_TAMPER_REFERENCE_FRAMES": "3",
    }
    with ExitStack() as stack:
        bases = []
        for ordinal in range(REPLICAS):
            # Each replica keeps its own learned baselines, as pods with their own volumes would.
            replica_env = {
                **env,
                "VISION_SHARD_ID": str(ordinal),
                "VISION_BASELINE_DIR": str(tmp / f"baselines-{ordinal}"),
            }
            bases.append(stack.enter_context(vision_service(tmp, model=model_path, env=replica_env)))
        targets = [base.removeprefix("http://") for base in bases]
        prom = stack.enter_context(prometheus(tmp, targets, rule_files=sorted(rules.glob("*.yml"))))
        start = time.time()
        run_workload(bases, prom)
        classes = wait_for(
            lambda: tuple(sorted({r["metric"]["class"] for r in prom.query("vision_detections_total")})),
            timeout=30,
            what="detections in Prometheus",
        )
        wait_for(lambda: prom.query("vision_camera_tamper_score"), timeout=60, what="the camera's tamper scores")
        yield Scraped(prom, start, (*SOURCES, CAMERA, "upload"), classes)


@pytest.mark.parametrize("query", [q for q in QUERIES if not q.gpu_only], ids=lambda q: q.id)
def test_panel_query_returns_data(scraped: Scraped, query: PanelQuery) -> None:
    rows = wait_for(lambda: scraped.run(query), timeout=30, what=f"data for {query.id}: {query.expr}", interval=1)
    assert rows


@pytest.mark.parametrize("query", [q for q in QUERIES if q.gpu_only], ids=lambda q: q.id)
def test_gpu_panel_query_parses(scraped: Scraped, query: PanelQuery) -> None:
    """No GPU here: vision_gpu_* is absent, but Prometheus must accept the expression."""
    scraped.run(query)  # raises unless Prometheus answers status "success"


@pytest.mark.parametrize(("dashboard", "expr"), ANNOTATIONS, ids=[a[0] for a in ANNOTATIONS])
def test_alert_annotation_query_finds_firing_alerts(scraped: Scraped, dashboard: str, expr: str) -> None:
    rows = wait_for(lambda: scraped.run(expr), timeout=30, what=f"firing alerts for {dashboard}", interval=1)
    assert all(r["metric"]["alertstate"] == "firing" for r in rows)


def test_variable_queries_list_the_sources_and_classes(scraped: Scraped) -> None:
    def label_values(label: str, match: str) -> list[str]:
        params = urllib.parse.urlencode({"match[]": scraped.substitute(match, range_seconds=600)})
        body = http_json(f"{scraped.prom.base}/api/v1/label/{label}/values?{params}")
        values: list[str] = body["data"]
        return values

    variables = {v["name"]: v for p in DASHBOARD_FILES for v in load(p)["templating"]["list"]}
    source_match = re.fullmatch(r"label_values\((.*), source\)", variables["source"]["query"])
    class_match = re.fullmatch(r"label_values\((.*), class\)", variables["class"]["query"])
    assert source_match and class_match
    assert set(SOURCES) <= set(label_values("source", source_match.group(1)))
    detected = scraped.prom.query(scraped.substitute('vision_detections_total{source=~"$source"}', range_seconds=600))
    assert set(label_values("class", class_match.group(1))) == {r["metric"]["class"] for r in detected}
    assert set(scraped.classes) <= {r["metric"]["class"] for r in detected}


def test_the_service_url_variable_reads_the_recorded_url(scraped: Scraped) -> None:
    body = http_json(f"{scraped.prom.base}/api/v1/label/url/values?match[]=vision:service_url")
    assert body["data"] == ["http://localhost:8000"]


# --- two replicas: one answer per source ---------------------------------------------------------

PER_REPLICA_LABELS = {"instance", "job", "pod"}


def alert_rules() -> list[tuple[str, str]]:
    import yaml

    rules = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [(rule["alert"], rule["expr"]) for rule in group["rules"] if "alert" in rule]
    return rules


ALERT_RULES = alert_rules()


def test_both_replicas_were_scraped_and_shared_sources(scraped: Scraped) -> None:
    """The premise of the tests below: the same sources' samples come from two instances."""
    rows = scraped.prom.query('count by (source) (count by (source, instance) (vision_images_total{source="garage"}))')
    assert [float(r["value"][1]) for r in rows] == [REPLICAS]


@pytest.mark.parametrize("query", [q for q in QUERIES if not q.gpu_only], ids=lambda q: q.id)
def test_panel_query_answers_once_per_source_not_per_replica(scraped: Scraped, query: PanelQuery) -> None:
    rows = wait_for(lambda: scraped.run(query), timeout=30, what=f"data for {query.id}", interval=1)
    per_source = [r["metric"] for r in rows if "source" in r["metric"] or "camera" in r["metric"]]
    assert not [m for m in per_source if PER_REPLICA_LABELS & m.keys()], f"{query.expr} splits sources by replica"


@pytest.mark.parametrize(("alert", "expr"), ALERT_RULES, ids=[a for a, _ in ALERT_RULES])
def test_alert_expression_answers_once_per_source_not_per_replica(scraped: Scraped, alert: str, expr: str) -> None:
    """Alerts about a source or camera carry no replica label (per-replica alerts, e.g. a model not ready, may)."""
    rows = [r["metric"] for r in scraped.prom.query(expr) if {"source", "camera"} & r["metric"].keys()]
    assert not [m for m in rows if PER_REPLICA_LABELS & m.keys()], f"{alert} fires per replica"


def test_an_alert_on_a_source_both_replicas_saw_fires_once(scraped: Scraped) -> None:
    """garage, yard and upload frames went to both replicas; each of their alerts is one alert, not two."""
    shared = 'ALERTS{alertstate="firing", source=~"garage|yard|upload"}'
    rows = wait_for(lambda: scraped.prom.query(shared), timeout=30, what="alerts on sources both replicas saw")
    fired = Counter((r["metric"]["alertname"], r["metric"]["source"]) for r in rows)
    assert set(fired.values()) == {1}, fired
    assert not [r["metric"] for r in rows if PER_REPLICA_LABELS & r["metric"].keys()]
