"""The ``vision-service`` command: analyze files from the shell; serve shuts down gracefully."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from quality.simulate import low_light
from tests.conftest import encode_jpeg
from tests.infra import service_process


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision_service", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_analyze_prints_json_lines_per_image_in_a_folder(tmp_path: Path, bus_bgr: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / "day.jpg"), bus_bgr)
    cv2.imwrite(str(tmp_path / "night.png"), low_light(bus_bgr, 0.05, rng=np.random.default_rng(0)))
    (tmp_path / "notes.txt").write_text("not an image")
    result = run_cli("analyze", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"day.jpg", "night.png"}
    assert rows["night.png"]["brightness"] < rows["day.jpg"]["brightness"]
    assert rows["day.jpg"]["width"] == 810


def test_analyze_table_names_bad_files_on_stderr(tmp_path: Path, bus_bgr: np.ndarray) -> None:
    good = tmp_path / "bus.jpg"
    cv2.imwrite(str(good), bus_bgr)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:3000])
    result = run_cli("analyze", str(good), str(broken))
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert "bright" in header and "noise" in header
    assert row.startswith(str(good))
    assert "broken.jpg" in result.stderr and "corrupt" in result.stderr


def test_serve_refuses_invalid_settings() -> None:
    result = run_cli("serve", "--device", "tpu:7")
    assert result.returncode == 2
    assert "device" in result.stderr


def test_sigterm_finishes_the_request_in_flight(tmp_path: Path, model_path: str, bus_bgr: np.ndarray) -> None:
    big = encode_jpeg(cv2.resize(bus_bgr, (3000, 4000)))
    with service_process(tmp_path, model=model_path) as (base, proc):
        answer: dict[str, object] = {}

        def post() -> None:
            request = urllib.request.Request(f"{base}/v1/detect", data=big, headers={"content-type": "image/jpeg"})
            with urllib.request.urlopen(request, timeout=60) as response:
                answer["status"] = response.status
                answer["body"] = json.loads(response.read())

        sender = threading.Thread(target=post)
        sender.start()
        # Wait until the request is inside the service (it shows in the in-flight gauge) ...
        while b"vision_queue_depth 1.0" not in urllib.request.urlopen(f"{base}/metrics").read():
            assert sender.is_alive(), "request finished before shutdown could be tested"
        proc.send_signal(signal.SIGTERM)  # ... then ask the service to stop.
        sender.join(timeout=60)
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status says SIGTERM.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert answer["status"] == 200
    assert answer["body"]["image"] == {"width": 3000, "height": 4000}  # type: ignore[index]


def test_help_of_every_subcommand_shows_the_defaults() -> None:
    serve = run_cli("serve", "--help")
    assert serve.returncode == 0
    for shown in ("VISION_HOST; default: 0.0.0.0", "VISION_PORT; default: 8000", "VISION_DEVICE; default: auto"):
        assert shown in " ".join(serve.stdout.split()), serve.stdout
    assert "(default: 640)" in run_cli("analyze", "--help").stdout
    demo = " ".join(run_cli("demo", "--help").stdout.split())
    assert "(default: http://127.0.0.1:8000)" in demo and "(default: 40)" in demo
    assert "(default: None)" not in demo
    assert "VISION_MODEL; default: yolo11n.pt" in " ".join(run_cli("baseline", "build", "--help").stdout.split())
