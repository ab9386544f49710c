"""Load test: many concurrent clients against the CPU model; saturation must mean fast 503s.

    python scripts/load_test.py [--clients 16] [--seconds 60] [--max-pending 8]

Prints counts by status, 5xx and connection errors (both must be zero), latency percentiles of
accepted requests and the slowest 503 (must be well under 1 s: refusal does not wait).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import test_model_path
from tests.infra import vision_service


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    from ultralytics.utils import ASSETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=test_model_path())
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-pending", type=int, default=8)
    args = parser.parse_args()
    body = (ASSETS / "bus.jpg").read_bytes()
    statuses: Counter[int] = Counter()
    accepted: list[float] = []
    refused: list[float] = []
    connection_errors: list[str] = []
    lock = threading.Lock()

    env = {"VISION_MAX_PENDING_FRAMES": str(args.max_pending), "VISION_LOG_LEVEL": "warning"}
    with tempfile.TemporaryDirectory() as tmp, vision_service(Path(tmp), model=args.model, env=env) as base:
        host, port = base.removeprefix("http://").split(":")
        stop = time.perf_counter() + args.seconds

        def client() -> None:
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    conn.request("POST", "/v1/detect", body=body, headers={"content-type": "image/jpeg"})
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        connection_errors.append(type(exc).__name__)
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=60)
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[response.status] += 1
                    (accepted if response.status == 200 else refused).append(elapsed)
                if response.status == 503:
                    time.sleep(float(response.getheader("Retry-After", "1")) / 10)  # a polite, eager client
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    server_errors = sum(n for s, n in statuses.items() if s >= 500 and s != 503)
    print(f"{args.clients} clients, {args.seconds:.0f} s, max pending frames {args.max_pending}, CPU model")
    print(f"responses by status: {dict(sorted(statuses.items()))}")
    print(f"5xx other than 503: {server_errors}   connection errors: {len(connection_errors)}")
    print(
        f"accepted: {len(accepted) / args.seconds:.2f} images/s, latency p50 {percentile(accepted, 0.5) * 1e3:.0f} ms, "
        f"p99 {percentile(accepted, 0.99) * 1e3:.0f} ms"
    )
    if refused:
        print(f"503 refusals: slowest {max(refused) * 1e3:.0f} ms, p99 {percentile(refused, 0.99) * 1e3:.0f} ms")
    return 1 if server_errors or connection_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
