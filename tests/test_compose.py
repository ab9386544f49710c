"""The compose stack: every file it mounts exists and validates with the real tools.

`docker compose config` needs the compose CLI plugin; where it is missing (as on the CI machine, which
has the docker CLI but no plugin and no engine) the compose file is checked by parsing it: every
service, build context, mounted file, env file, port and healthcheck the stack relies on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import REPO, need_binary
from vision_service.core.config import Settings

COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
GPU_OVERRIDE = COMPOSE_DIR / "gpu.override.yml"
ENV_FILE = COMPOSE_DIR / "vision.env"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's ${VAR:-default} / ${VAR-default} with nothing set: the defaults."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", text)


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate(path.read_text()))
    return loaded


def env_file(path: Path = ENV_FILE) -> tuple[dict[str, str], set[str]]:
    """(set variables, variables only shown commented out as `# VISION_X=...`)."""
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"(VISION_\w+)=(.*)", line):
            values[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"#\s*(VISION_\w+)=.*", line):
            commented.add(m.group(1))
    return values, commented


def compose_cli() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0


def test_docker_compose_config_accepts_the_stack_or_the_cli_plugin_is_absent() -> None:
    if not compose_cli():
        # No plugin here: the parsing checks below stand in for it.
        assert compose()["services"]
        return
    for files in ([COMPOSE_FILE], [COMPOSE_FILE, GPU_OVERRIDE]):
        args = [arg for f in files for arg in ("-f", str(f))]
        result = subprocess.run(
            ["docker", "compose", *args, "--profile", "demo", "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


def test_stack_has_service_prometheus_alertmanager_grafana_and_the_placeholder_webhook() -> None:
    services = compose()["services"]
    assert {"vision-service", "prometheus", "alertmanager", "grafana", "alert-webhook", "demo"} <= set(services)
    assert services["demo"]["profiles"] == ["demo"]
    for name, service in services.items():
        if name != "demo":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert service.get("restart") == "unless-stopped"


def test_service_is_built_from_the_dockerfile_with_the_cpu_torch_index() -> None:
    service = compose()["services"]["vision-service"]
    build = service["build"]
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).is_file()
    assert build["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["ports"] == ["8000:8000"]


def test_every_mounted_file_and_folder_exists() -> None:
    for name, service in compose()["services"].items():
        for env in service.get("env_file", []):
            assert (COMPOSE_DIR / env).is_file(), f"{name}: env_file {env}"
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith((".", "/")):
                assert (COMPOSE_DIR / host).exists(), f"{name}: {volume}"
            else:
                assert host in compose()["volumes"], f"{name}: named volume {host} not declared"


def test_prometheus_scrapes_the_service_port_and_alerts_to_alertmanager() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert "vision-service:8000" in targets
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    assert config["rule_files"] == ["rules/*.yml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts


def test_alertmanager_webhook_placeholder_is_answered_by_the_alert_webhook_service() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "alertmanager" / "alertmanager.yml").read_text())
    urls = {w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])}
    assert urls == {"http://alert-webhook:5001/"}
    webhook = compose()["services"]["alert-webhook"]
    assert "5001" in webhook["expose"]
    assert "./alertmanager:/etc/alertmanager:ro" in compose()["services"]["alertmanager"]["volumes"]


def test_grafana_provisions_the_datasource_and_the_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "../dashboards:/etc/grafana/dashboards/vision:ro" in grafana["volumes"]
    provisioning = COMPOSE_DIR / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    prom = next(d for d in datasources["datasources"] if d["type"] == "prometheus")
    assert prom["url"] == "http://prometheus:9090" and prom["uid"] == "prometheus" and prom["isDefault"]
    providers = yaml.safe_load((provisioning / "dashboards" / "vision.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/etc/grafana/dashboards/vision"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / "dashboards" / Path(home).name).is_file()


def test_published_ports_are_distinct() -> None:
    published = [p.split(":")[0] for s in compose()["services"].values() for p in s.get("ports", [])]
    assert sorted(published) == sorted(set(published)) == ["3000", "8000", "9090", "9093"]


def test_gpu_override_reserves_an_nvidia_gpu_and_uses_cuda() -> None:
    service = compose(GPU_OVERRIDE)["services"]["vision-service"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert service["environment"]["VISION_DEVICE"] == "cuda:0"
    assert service["build"]["args"]["TORCH_INDEX_URL"] != "https://download.pytorch.org/whl/cpu"


def test_env_file_documents_every_setting_and_is_valid() -> None:
    values, commented = env_file()
    expected = {f"VISION_{name.upper()}" for name in Settings.model_fields}
    assert set(values) | commented == expected
    settings = Settings(**{key.removeprefix("VISION_").lower(): value for key, value in values.items()})
    assert settings.port == 8000, "the port mapping, healthcheck and scrape target assume 8000"
    assert {"street", "parking", "entrance"} <= set(settings.sources)  # what the demo sends


def test_demo_sources_are_configured_in_the_env_file() -> None:
    command = compose()["services"]["demo"]["command"]
    sources = command[command.index("--sources") + 1].split(",")
    values, _ = env_file()
    assert set(sources) <= set(values["VISION_SOURCES"].split(","))


def test_promtool_checks_the_prometheus_config_and_its_rules() -> None:
    result = subprocess.run(
        [need_binary("promtool"), "check", "config", str(COMPOSE_DIR / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rule files found" in result.stdout


def test_amtool_checks_the_alertmanager_config() -> None:
    result = subprocess.run(
        [need_binary("amtool"), "check-config", str(COMPOSE_DIR / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted((COMPOSE_DIR / "grafana").rglob("*.yml")), ids=lambda p: p.name)
def test_grafana_provisioning_files_are_version_1_yaml(path: Path) -> None:
    assert yaml.safe_load(path.read_text())["apiVersion"] == 1


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_cpu_torch() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"(?m)^FROM \S+ AS (\w+)", text)
    assert stages[-1] == "runtime" and len(stages) >= 2
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"(?m)^USER 10001:10001$", runtime) and "--uid 10001" in runtime
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert "YOLO_OFFLINE=1" in runtime
    for compiler in ("build-essential", "gcc", "g++"):
        assert compiler not in runtime


def test_the_image_installs_the_package_at_the_versions_of_the_lock() -> None:
    """The same constraints.txt as make install and make test, sent in the build context."""
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"(?m)^COPY .*\bconstraints\.txt\b", text)
    assert re.search(r"(?m)^RUN pip install -c constraints\.txt ", text)
    assert "!constraints.txt" in (REPO / ".dockerignore").read_text().splitlines()


def test_camera_example_file_loads() -> None:
    from vision_service.cameras.config import load_cameras

    cameras = load_cameras(COMPOSE_DIR / "cameras" / "cameras.example.yml")
    assert [(c.id, type(c).__name__) for c in cameras] == [("front-door", "Camera")]
