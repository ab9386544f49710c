"""Soak: thousands of requests against one service process; prints its memory growth.

    python scripts/soak.py [--requests 10000] [--clients 4] [--warmup 500]

Uses a 320x240 crop of bus.jpg at inference size 320 so 10,000 requests fit in minutes on two
cores; every tenth request is a corrupt upload, so the error path is soaked too. Memory is the
service process's resident set size (VmRSS) after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import encode_jpeg, test_model_path
from tests.infra import service_process


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run(host: str, port: int, count: int, clients: int, good: bytes, bad: bytes) -> dict[int, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(count))

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        for i in counter:
            conn.request(
                "POST", "/v1/detect", body=bad if i % 10 == 9 else good, headers={"content-type": "image/jpeg"}
            )
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def main() -> int:
    from quality.bench import load_bgr

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=test_model_path())
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    bus = load_bgr("bus.jpg")
    good = encode_jpeg(cv2.resize(bus, (240, 320)))
    bad = good[: len(good) // 2]
    env = {"VISION_IMAGE_SIZE": "320", "VISION_LOG_LEVEL": "warning", "VISION_MAX_PENDING_FRAMES": "64"}
    with tempfile.TemporaryDirectory() as tmp, service_process(Path(tmp), model=args.model, env=env) as (base, proc):
        host, port = base.removeprefix("http://").split(":")
        run(host, int(port), args.warmup, args.clients, good, bad)
        before = rss_mib(proc.pid)
        statuses = run(host, int(port), args.requests, args.clients, good, bad)
        after = rss_mib(proc.pid)
    print(f"{args.requests} requests after {args.warmup} warm-up, {args.clients} clients: statuses {statuses}")
    print(f"service RSS after warm-up {before:.1f} MiB, after soak {after:.1f} MiB, growth {after - before:+.1f} MiB")
    return 0 if after - before < 20 and not any(s >= 500 for s in statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
