"""Real processes for integration tests: the service, Prometheus and Alertmanager on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run `make system-deps` (Debian prometheus, prometheus-alertmanager)")
    return path


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the process may still be starting
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


def http_json(url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@contextmanager
def running(cmd: list[str], *, env: Mapping[str, str] | None = None, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block, its output in ``log``; always stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            yield proc
        finally:
            stop_process(proc, timeout=15)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def vision_service(tmp: Path, *, model: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start ``vision-service serve`` on a free port; yield its base URL once /readyz says ready."""
    with service_process(tmp, model=model, env=env) as (base, _):
        yield base


@contextmanager
def service_process(
    tmp: Path, *, model: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like :func:`vision_service`, also yielding the process (for memory and signal tests)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service_env = {
        "VISION_HOST": "127.0.0.1",
        "VISION_PORT": str(port),
        "VISION_MODEL": model,
        "VISION_DEVICE": "cpu",
        "YOLO_OFFLINE": "1",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "vision_service", "serve"]
    with running(cmd, env=service_env, log=tmp / f"service-{port}.log") as proc:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError((tmp / f"service-{port}.log").read_text()[-3000:])
            return http_status(f"{base}/readyz") == 200

        wait_for(ready, timeout=180, what="vision-service /readyz")
        yield base, proc


class Prometheus:
    """A real Prometheus server; ``query`` runs PromQL through its HTTP API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = http_json(url)
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {promql}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": promql, "start": start, "end": end, "step": step}
        body = http_json(f"{self.base}/api/v1/query_range?" + urllib.parse.urlencode(params))
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {promql}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> bool:
        body = http_json(f"{self.base}/api/v1/targets")
        targets = body["data"]["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)


@contextmanager
def prometheus(
    tmp: Path,
    targets: list[str],
    *,
    scrape_interval: str = "1s",
    rule_files: list[Path] | None = None,
    evaluation_interval: str = "1s",
    alertmanager: str | None = None,
) -> Iterator[Prometheus]:
    """Start Debian's Prometheus scraping ``targets`` (host:port) on 127.0.0.1."""
    port = free_port()
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "scrape_configs": [{"job_name": "vision-service", "static_configs": [{"targets": targets}]}],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config_path = tmp / f"prometheus-{port}.yml"
    config_path.write_text(yaml.safe_dump(config))
    with prometheus_from_config(tmp, config_path, port=port) as server:
        yield server


@contextmanager
def prometheus_from_config(tmp: Path, config_path: Path, *, port: int | None = None) -> Iterator[Prometheus]:
    """Start Debian's Prometheus with a given configuration file; yield once every target is up."""
    binary = need_binary("prometheus")
    port = port or free_port()
    cmd = [
        binary,
        f"--config.file={config_path}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={tmp / f'tsdb-{port}'}",
        "--web.enable-lifecycle",
    ]
    with running(cmd, log=tmp / f"prometheus-{port}.log"):
        server = Prometheus(f"http://127.0.0.1:{port}")
        wait_for(lambda: http_status(f"{server.base}/-/ready") == 200, timeout=60, what="Prometheus ready")
        wait_for(server.targets_up, timeout=60, what="first successful scrape")
        yield server
