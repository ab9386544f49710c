"""Service throughput vs a bare Ultralytics predict loop, same weights, same device.

    python scripts/bench_service.py [--model PATH] [--device cpu] [--clients 4] [--seconds 30]

Starts ``vision-service serve`` on 127.0.0.1, posts ``bus.jpg`` from several concurrent clients
for a fixed time, then runs ``model.predict`` on the same file in a loop for the same time in
this process (after the service has stopped, so both get the whole machine), and prints
images/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

from tests.conftest import test_model_path
from tests.infra import vision_service


def post_loop(host: str, port: int, body: bytes, stop: float, latencies: list[float], errors: list[int]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while time.perf_counter() < stop:
        started = time.perf_counter()
        conn.request("POST", "/v1/detect", body=body, headers={"content-type": "image/jpeg"})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(response.status)
    conn.close()


def bench_service(model: str, device: str, clients: int, seconds: float, body: bytes) -> tuple[float, list[float]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        vision_service(Path(tmp), model=model, env={"VISION_DEVICE": device}) as base,
    ):
        host, port = base.removeprefix("http://").split(":")
        # Warm-up: the first requests pay for lazy imports and allocator growth.
        post_loop(host, int(port), body, time.perf_counter() + 3, [], [])
        latencies: list[float] = []
        errors: list[int] = []
        stop = time.perf_counter() + seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=post_loop, args=(host, int(port), body, stop, latencies, errors))
            for _ in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if errors:
            print(f"non-200 answers: {len(errors)} ({sorted(set(errors))})")
        return len(latencies) / elapsed, latencies


def bench_bare(model: str, device: str, seconds: float, path: Path) -> float:
    from ultralytics import YOLO

    yolo = YOLO(model)
    for _ in range(3):
        yolo.predict(str(path), device=device, verbose=False)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        yolo.predict(str(path), device=device, verbose=False)
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    from ultralytics.utils import ASSETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=test_model_path())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    image = ASSETS / "bus.jpg"

    service_rate, latencies = bench_service(args.model, args.device, args.clients, args.seconds, image.read_bytes())
    bare_rate = bench_bare(args.model, args.device, args.seconds, image)
    q = statistics.quantiles(latencies, n=100)
    print(f"model {Path(args.model).name}, device {args.device}, {os.cpu_count()} CPU cores, bus.jpg 810x1080")
    print(f"bare Ultralytics predict loop:       {bare_rate:7.2f} images/s")
    print(
        f"service over HTTP, {args.clients} clients:      {service_rate:7.2f} images/s  "
        f"(latency p50 {q[49] * 1e3:.0f} ms, p95 {q[94] * 1e3:.0f} ms)"
    )
    print(f"ratio service / bare:                {service_rate / bare_rate:7.2f}")


if __name__ == "__main__":
    main()
