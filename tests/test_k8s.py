"""The Kubernetes deployment (compose/k8s, docs/kubernetes.md), rendered offline and checked as a cluster would.

Both overlays are rendered with the kustomize built into kubectl (``kubectl kustomize``, exactly what
``kubectl apply -k`` applies). Built-in kinds are validated with kubernetes-validate against the
Kubernetes 1.30 OpenAPI schemas in strict mode (unknown fields rejected); ServiceMonitor and
PrometheusRule against the Prometheus Operator's CRD schemas as compiled by the npm package
``@kubernetes-models/prometheus-operator`` (tests/k8s_validate, installed by ``make test``: types,
required fields, patterns such as durations). The PrometheusRule must carry the
compose stack's rule groups unchanged and pass ``promtool check rules``; the dashboards must reach the
Grafana sidecar verbatim. The settings the pods get are loaded by the service's own Settings class.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from vision_service.cameras.config import Camera, load_cameras
from vision_service.core.config import Settings
from vision_service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "compose" / "k8s"
OVERLAYS = ("cpu", "gpu")
KUBERNETES_VERSION = "1.30"
CRD_KINDS = ("ServiceMonitor", "PrometheusRule")
CRD_VALIDATOR = ROOT / "tests" / "k8s_validate"
# kubectl apply stores the whole object in the last-applied-configuration annotation; annotations
# are limited to 256 KiB in all, so a bigger dashboard ConfigMap would be refused.
ANNOTATION_LIMIT = 256 * 1024
POD_IP = "10.244.1.17"

Doc = dict[str, Any]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is needed for these tests (kubectl: its built-in kustomize; promtool: Debian 'prometheus')"
    return path


def kustomize(directory: Path) -> list[Doc]:
    result = subprocess.run(
        [_tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {overlay: kustomize(K8S / "overlays" / overlay) for overlay in OVERLAYS}


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list[Doc]) -> Doc:
    containers = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("promtool"), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


# --- one source of truth ---------------------------------------------------------------------


def test_generated_files_match_the_rule_files_and_dashboards() -> None:
    generate = load_generator()
    rendered_files = generate.render()
    for path, text in rendered_files.items():
        assert (ROOT / path).is_file(), f"{path} is missing: run python compose/k8s/generate.py"
        assert (ROOT / path).read_text() == text, f"{path} is stale: run python compose/k8s/generate.py"
    assert generate.stale(rendered_files) == [], "stale or leftover generated files: run python compose/k8s/generate.py"


def test_prometheus_rule_carries_every_group_of_the_compose_rule_files(rendered: dict[str, list[Doc]]) -> None:
    expected: list[Any] = []
    for path in sorted((ROOT / "compose" / "prometheus" / "rules").glob("*.yml")):
        expected.extend(yaml.safe_load(path.read_text())["groups"])
    names = {group["name"] for group in expected}
    # thresholds.yml (constant recording rules) is part of it: the alerts compare against those series.
    assert {"vision-thresholds", "vision-recording", "vision-service", "vision-cameras"} <= names
    for docs in rendered.values():
        assert one(docs, "PrometheusRule")["spec"]["groups"] == expected


def test_generator_notices_an_edited_rule_file_and_rewrites_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private copy of the sources and the generated files, so the repository is never touched.
    for part in ("compose/prometheus/rules", "dashboards", "compose/k8s/base/generated"):
        shutil.copytree(ROOT / part, tmp_path / part)
    generate = load_generator()
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(generate, "RULES_DIR", tmp_path / "compose/prometheus/rules")
    monkeypatch.setattr(generate, "DASHBOARDS_DIR", tmp_path / "dashboards")
    monkeypatch.setattr(generate, "GENERATED_DIR", tmp_path / "compose/k8s/base/generated")
    assert generate.main(["--check"]) == 0

    thresholds = tmp_path / "compose/prometheus/rules/thresholds.yml"
    text = thresholds.read_text()
    assert "vector(0.15)" in text
    thresholds.write_text(text.replace("vector(0.15)", "vector(0.2)", 1))
    (tmp_path / "compose/k8s/base/generated/leftover.yaml").write_text("kind: ConfigMap\n")

    assert generate.main(["--check"]) == 1
    assert set(generate.stale(generate.render())) == {
        Path("compose/k8s/base/generated/prometheusrule.yaml"),
        Path("compose/k8s/base/generated/leftover.yaml"),
    }
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0
    assert not (tmp_path / "compose/k8s/base/generated/leftover.yaml").exists()
    assert "vector(0.2)" in (tmp_path / "compose/k8s/base/generated/prometheusrule.yaml").read_text()


def test_generator_refuses_a_rule_file_it_cannot_copy_faithfully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "compose/prometheus/rules"
    rules.mkdir(parents=True)
    # Two top-level keys: the line-by-line copy under spec.groups would not be the same document.
    (rules / "bad.yml").write_text("groups:\n  - name: a\n    rules: []\nextra: 1\n")
    generate = load_generator()
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(generate, "RULES_DIR", rules)
    with pytest.raises(generate.GenerateError, match="only a top-level 'groups' key"):
        generate.prometheus_rule()


def test_rule_groups_of_the_prometheus_rule_pass_promtool(rendered: dict[str, list[Doc]], tmp_path: Path) -> None:
    groups = one(rendered["cpu"], "PrometheusRule")["spec"]["groups"]
    rule_count = sum(len(group["rules"]) for group in groups)
    path = tmp_path / "groups.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {rule_count} rules found" in result.stdout

    broken = copy.deepcopy(groups)
    broken[0]["rules"][0]["expr"] = "sum by (source (vision_images_total)"
    path.write_text(yaml.safe_dump({"groups": broken}, sort_keys=False))
    assert promtool("check", "rules", str(path)).returncode != 0


def test_dashboards_reach_the_grafana_sidecar_verbatim(rendered: dict[str, list[Doc]]) -> None:
    dashboards = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(dashboards) >= 2
    for docs in rendered.values():
        labelled = [
            d
            for d in docs
            if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        ]
        contents = sorted(value for cm in labelled for value in cm["data"].values())
        assert contents == sorted(path.read_text() for path in dashboards)
        for cm in labelled:
            (key,) = cm["data"]
            assert key.endswith(".json")
            assert json.loads(cm["data"][key])["uid"]
            assert len(json.dumps(cm)) < ANNOTATION_LIMIT, f"{cm['metadata']['name']} too big for kubectl apply"


# --- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_validate_against_kubernetes_schemas_strictly(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = [d for d in rendered[overlay] if d["kind"] not in CRD_KINDS]
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "Service", "ConfigMap", "HorizontalPodAutoscaler"} <= kinds
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kubernetes_schema_check_rejects_a_misspelt_field(rendered: dict[str, list[Doc]]) -> None:
    statefulset = copy.deepcopy(one(rendered["cpu"], "StatefulSet"))
    probe = statefulset["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSION, strict=True)
    hpa = copy.deepcopy(one(rendered["cpu"], "HorizontalPodAutoscaler"))
    hpa["spec"]["metrics"][0]["pods"]["target"]["type"] = 8
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)


def crd_errors(*docs: Doc) -> list[list[str]]:
    """Each object's schema errors (empty: valid), from the operator's CRD schemas run by Node.js."""
    script = CRD_VALIDATOR / "validate.mjs"
    assert (CRD_VALIDATOR / "node_modules").is_dir(), f"run `npm ci --prefix {CRD_VALIDATOR}` (make test does)"
    result = subprocess.run(
        [_tool("node"), str(script)], input=json.dumps(docs), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    errors: list[list[str]] = json.loads(result.stdout)
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servicemonitor_and_prometheusrule_validate_against_the_operator_crds(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    assert crd_errors(*(one(rendered[overlay], kind) for kind in CRD_KINDS)) == [[], []]


def test_crd_check_rejects_broken_monitoring_objects(rendered: dict[str, list[Doc]]) -> None:
    bad_interval = copy.deepcopy(one(rendered["cpu"], "ServiceMonitor"))
    bad_interval["spec"]["endpoints"][0]["interval"] = "15 seconds"  # not a Prometheus duration
    no_selector = copy.deepcopy(one(rendered["cpu"], "ServiceMonitor"))
    del no_selector["spec"]["selector"]
    no_expr = copy.deepcopy(one(rendered["cpu"], "PrometheusRule"))
    del no_expr["spec"]["groups"][0]["rules"][0]["expr"]
    bad_port = copy.deepcopy(one(rendered["cpu"], "ServiceMonitor"))
    bad_port["spec"]["endpoints"][0]["port"] = 8000  # a port *name* is a string
    errors = crd_errors(bad_interval, no_selector, no_expr, bad_port)
    assert any("interval" in e for e in errors[0]), errors[0]
    assert any("selector" in e for e in errors[1]), errors[1]
    assert any("expr" in e for e in errors[2]), errors[2]
    assert any("port" in e for e in errors[3]), errors[3]


# --- the workload ----------------------------------------------------------------------------


def settings_env(docs: list[Doc]) -> dict[str, str]:
    """The environment the service container starts with (the pod IP filled in, optional Secret absent)."""
    c = container(docs)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["valueFrom"].get("fieldRef", {}).get("fieldPath") == "status.podIP":
            env[item["name"]] = POD_IP
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("VISION_"):
            monkeypatch.delenv(name)
    yield monkeypatch


@pytest.mark.parametrize(("overlay", "device"), [("cpu", "cpu"), ("gpu", "cuda:0")])
def test_pods_get_settings_the_service_accepts(
    rendered: dict[str, list[Doc]], overlay: str, device: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = rendered[overlay]
    env = settings_env(docs)
    fields = {f"VISION_{name.upper()}" for name in Settings.model_fields}
    unknown = {name for name in env if name.startswith("VISION_")} - fields
    assert not unknown, f"not settings of vision_service/core/config.py: {sorted(unknown)}"
    for name, value in env.items():
        clean_env.setenv(name, value)
    settings = Settings()
    assert settings.device == device
    assert settings.shard_id == POD_IP
    assert settings.port == 8000
    assert settings.cameras_persist is False

    # The camera list the pods mount is one the service loads.
    cameras = one(docs, "ConfigMap", "vision-cameras")["data"]["cameras.yml"]
    path = tmp_path / "cameras.yml"
    path.write_text(cameras)
    loaded = load_cameras(path)
    assert loaded and all(isinstance(camera, Camera) for camera in loaded)  # none invalid


def test_cameras_file_is_the_configmap_mounted_as_a_refreshable_file(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["cpu"]
    env = settings_env(docs)
    assert env["VISION_CAMERAS_FILE"] == "/etc/vision/cameras.yml"
    camera_file = Path(env["VISION_CAMERAS_FILE"])
    (mount,) = [m for m in container(docs)["volumeMounts"] if Path(m["mountPath"]) == camera_file.parent]
    # A subPath mount is never updated by the kubelet; the directory mount is, in place.
    assert "subPath" not in mount and mount.get("readOnly") is True
    volumes = {v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    configmap = one(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert camera_file.name in configmap["data"]


def test_statefulset_is_governed_by_a_headless_service_of_ready_pods(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["cpu"]
    statefulset = one(docs, "StatefulSet")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert selects(statefulset["spec"]["selector"]["matchLabels"], pod_labels)
    peers = one(docs, "Service", statefulset["spec"]["serviceName"])
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["publishNotReadyAddresses"] is False
    assert peers["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert selects(peers["spec"]["selector"], pod_labels)
    # The HPA owns the replica count; a value here would be reset by every kubectl apply.
    assert "replicas" not in statefulset["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sharding_members_are_the_ready_pods_by_ip(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    env = settings_env(docs)
    (shard_id,) = [e for e in container(docs)["env"] if e["name"] == "VISION_SHARD_ID"]
    assert shard_id["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    kind, _, name = env["VISION_SHARD_PEERS"].partition(":")
    assert kind == "dns"
    namespace = one(docs, "StatefulSet")["metadata"]["namespace"]
    service, _, domain = name.partition(".")
    assert domain in ("", f"{namespace}.svc.cluster.local")
    assert service == one(docs, "StatefulSet")["spec"]["serviceName"]
    assert float(env["VISION_SHARD_REFRESH_SECONDS"]) <= 30


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_follow_model_readiness_and_liveness(rendered: dict[str, list[Doc]], overlay: str) -> None:
    c = container(rendered[overlay])
    port_names = {p["name"] for p in c["ports"]}
    assert {p["containerPort"] for p in c["ports"]} == {8000}
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert c[probe]["httpGet"]["path"] == path
        assert c[probe]["httpGet"]["port"] in port_names
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "too little time to load the model"
    spec = one(rendered[overlay], "StatefulSet")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 30
    assert spec["securityContext"]["runAsNonRoot"] is True


def quantity(value: str) -> float:
    """A Kubernetes quantity in base units (cores or bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|)", str(value))
    assert match, value
    return float(match.group(1)) * units[match.group(2)]


def test_cpu_replica_requests_a_cpu_sized_share_and_no_gpu(rendered: dict[str, list[Doc]]) -> None:
    c = container(rendered["cpu"])
    requests, limits = c["resources"]["requests"], c["resources"]["limits"]
    assert 1 <= quantity(requests["cpu"]) <= quantity(limits["cpu"]) <= 4
    assert 1 * 2**30 <= quantity(requests["memory"]) <= quantity(limits["memory"]) <= 4 * 2**30
    assert "nvidia.com/gpu" not in {**requests, **limits}
    assert c["image"].endswith(":cpu")


def test_gpu_replica_gets_one_nvidia_gpu(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["gpu"]
    c = container(docs)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["image"].endswith(":gpu")
    assert settings_env(docs)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    tolerations = one(docs, "StatefulSet")["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    # One GPU per replica: the autoscaler stops at fewer replicas than on CPU.
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 4


# --- monitoring and autoscaling -------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servicemonitor_scrapes_each_pod_once_through_the_api_port(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selected = [
        s
        for s in docs
        if s["kind"] == "Service" and selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert [s["metadata"]["name"] for s in selected] == ["vision-service"], "pods would be scraped more than once"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = [p for p in selected[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert port["targetPort"] in {p["name"] for p in container(docs)["ports"]}
    assert one(docs, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpa_scales_the_statefulset_on_queue_depth_before_admission_refuses(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    statefulset = one(docs, "StatefulSet")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": statefulset["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "vision_queue_depth"
    assert metric["pods"]["target"]["type"] == "AverageValue"
    target = quantity(metric["pods"]["target"]["averageValue"])
    assert 0 < target < int(settings_env(docs)["VISION_MAX_PENDING_FRAMES"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The service really exports the gauge the autoscaler reads.
    assert "vision_queue_depth" in {family.name for family in Metrics().registry.collect()}


def adapter_rule() -> dict[str, Any]:
    values = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())
    (rule,) = [r for r in values["rules"]["custom"] if r["name"]["as"] == "vision_queue_depth"]
    return dict(rule)


def test_adapter_rule_serves_the_hpa_metric_per_pod(rendered: dict[str, list[Doc]]) -> None:
    rule = adapter_rule()
    (metric,) = one(rendered["cpu"], "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    assert rule["seriesQuery"].startswith("vision_queue_depth{")
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}


def test_adapter_query_gives_each_pod_its_own_smoothed_queue_depth(tmp_path: Path) -> None:
    # The adapter fills in the templates like this for "pods/* in namespace vision".
    query = (
        adapter_rule()["metricsQuery"]
        .replace("<<.Series>>", "vision_queue_depth")
        .replace("<<.LabelMatchers>>", 'namespace="vision",pod=~"vision-service-0|vision-service-1"')
        .replace("<<.GroupBy>>", "pod")
    )
    assert "<<" not in query
    (tmp_path / "adapter.yml").write_text(
        yaml.safe_dump(
            {"groups": [{"name": "adapter", "rules": [{"record": "adapter:vision_queue_depth", "expr": query}]}]}
        )
    )
    series = 'vision_queue_depth{{namespace="{ns}",pod="{pod}",service="{svc}"}}'
    test = {
        "rule_files": ["adapter.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": series.format(ns="vision", pod="vision-service-0", svc="vision-service"),
                        "values": "4x10",
                    },
                    # The same pod seen twice (e.g. through a second Service) must not count double.
                    {"series": series.format(ns="vision", pod="vision-service-0", svc="other"), "values": "4x10"},
                    # A spike inside the minute is averaged, not followed: 8 with or without the
                    # window's left edge (Prometheus 2 includes it, 3 does not).
                    {
                        "series": series.format(ns="vision", pod="vision-service-1", svc="vision-service"),
                        "values": "0 0 0 0 8 0 16 8 8",
                    },
                    # Another namespace's pod of the same name is not ours.
                    {
                        "series": series.format(ns="staging", pod="vision-service-1", svc="vision-service"),
                        "values": "99x10",
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": "adapter:vision_queue_depth",
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": 'adapter:vision_queue_depth{pod="vision-service-0"}', "value": 4},
                            {"labels": 'adapter:vision_queue_depth{pod="vision-service-1"}', "value": 8},
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "adapter_test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool("test", "rules", "adapter_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the documented customisation -------------------------------------------------------------


def test_release_label_patch_in_the_docs_relabels_servicemonitor_and_rules(tmp_path: Path) -> None:
    docs_text = (ROOT / "docs" / "kubernetes.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs_text, flags=re.S)
    (snippet,) = [b for b in blocks if "/metadata/labels/release" in b]
    kustomization = yaml.safe_load(snippet)
    assert kustomization["resources"] == ["../../compose/k8s/overlays/cpu"]
    # The doc's overlay lives two levels below the repository root; point it at the real one from here.
    kustomization["resources"] = [os.path.relpath(K8S / "overlays" / "cpu", tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    docs = kustomize(tmp_path)
    release = re.search(r"value: (\S+)", snippet)
    assert release
    for kind in CRD_KINDS:
        assert one(docs, kind)["metadata"]["labels"]["release"] == release.group(1)
    assert "release" not in one(docs, "StatefulSet")["metadata"]["labels"]
