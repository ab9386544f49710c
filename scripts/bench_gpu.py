"""Batched throughput of the service vs a bare batched Ultralytics loop, plus latency and GPU use, in one run.

    python scripts/bench_gpu.py [--model PATH] [--device cuda:0] [--clients 16] [--images 16] [--seconds 30]
                                [--device-path auto|on|off] [--max-batch 64]

1. Starts ``vision-service serve`` on 127.0.0.1 (``VISION_DEVICE``, ``VISION_DEVICE_PATH``,
   ``VISION_MAX_BATCH``), admitting ``clients x images`` frames so that no request is refused.
2. Latency at batch 1: one client posts ``bus.jpg`` to ``/v1/detect`` one request at a time;
   p50 and p95 of the server-side ``timings_ms.total`` (decode + shared batch time) are reported.
3. Throughput: ``--clients`` clients post ``--images`` copies of ``bus.jpg`` per request to
   ``/v1/detect/batch`` (the ingest route recommended at high rates: one HTTP parse per many
   images) for ``--seconds``; images/s = processed images / wall time. Meanwhile ``/metrics`` is
   scraped each second for ``vision_gpu_utilization_ratio`` (:mod:`vision_service.gpu`, NVML);
   its mean is reported, or ``n/a`` without a GPU.
4. After the service stops (so both get the whole machine): a bare Ultralytics loop,
   ``YOLO.predict`` on ``--images`` decoded frames per call, FP16 on CUDA, for ``--seconds``.

It runs on a CPU too (then the GPU utilisation is ``n/a``); keep ``--seconds`` short there.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

from tests.conftest import test_model_path
from tests.infra import vision_service

GPU_UTIL = re.compile(r"^vision_gpu_utilization_ratio\{[^}]*\}\s+([0-9.eE+-]+)$", re.MULTILINE)


def multipart(images: list[bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body of repeated ``image`` fields, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for index, data in enumerate(images):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{index}.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def latency_at_batch_one(host: str, port: int, body: bytes, requests: int) -> list[float]:
    """Server-side seconds (``timings_ms.total``) of sequential single-image requests."""
    conn = http.client.HTTPConnection(host, port, timeout=120)
    totals = []
    for _ in range(requests):
        conn.request("POST", "/v1/detect", body=body, headers={"content-type": "image/jpeg"})
        response = conn.getresponse()
        payload = response.read()
        if response.status == 200:
            totals.append(json.loads(payload)["timings_ms"]["total"] / 1000)
    conn.close()
    return totals


def batch_loop(
    host: str, port: int, body: bytes, content_type: str, stop: float, done: list[int], refused: list[int]
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=300)
    while time.perf_counter() < stop:
        conn.request("POST", "/v1/detect/batch", body=body, headers={"content-type": content_type})
        response = conn.getresponse()
        payload = response.read()
        if response.status == 200:
            done.append(int(json.loads(payload)["processed"]))
        else:
            refused.append(response.status)
    conn.close()


def gpu_sampler(base: str, stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(1.0):
        try:
            text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        samples.extend(float(v) for v in GPU_UTIL.findall(text))


def bench_service(args: argparse.Namespace, jpeg: bytes) -> tuple[float, list[float], list[float], list[int]]:
    env = {
        "VISION_DEVICE": args.device,
        "VISION_DEVICE_PATH": args.device_path,
        "VISION_MAX_BATCH": str(args.max_batch),
        "VISION_MAX_BATCH_IMAGES": str(max(args.images, 1)),
        "VISION_MAX_PENDING_FRAMES": str(max(args.clients * args.images, 32)),
    }
    with tempfile.TemporaryDirectory() as tmp, vision_service(Path(tmp), model=args.model, env=env) as base:
        host, port_text = base.removeprefix("http://").split(":")
        port = int(port_text)
        latency_at_batch_one(host, port, jpeg, 5)  # warm-up: lazy imports, allocator growth, kernels
        latencies = latency_at_batch_one(host, port, jpeg, args.latency_requests)
        body, content_type = multipart([jpeg] * args.images)
        done: list[int] = []
        refused: list[int] = []
        gpu: list[float] = []
        sampling = threading.Event()
        sampler = threading.Thread(target=gpu_sampler, args=(base, sampling, gpu))
        stop = time.perf_counter() + args.seconds
        started = time.perf_counter()
        clients = [
            threading.Thread(target=batch_loop, args=(host, port, body, content_type, stop, done, refused))
            for _ in range(args.clients)
        ]
        sampler.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.perf_counter() - started
        sampling.set()
        sampler.join()
        return sum(done) / elapsed, latencies, gpu, refused


def bench_bare(args: argparse.Namespace, jpeg_path: Path) -> float:
    import cv2
    from ultralytics import YOLO

    yolo = YOLO(args.model)
    frames = [cv2.imread(str(jpeg_path))] * args.images
    from ultralytics.cfg import DEFAULT_CFG_DICT

    half = args.device.startswith("cuda")
    # FP16 on CUDA; newer Ultralytics name it quantize=16 and warn at every call given half.
    precision = {"quantize": 16 if half else None} if "quantize" in DEFAULT_CFG_DICT else {"half": half}
    for _ in range(3):
        yolo.predict(frames, device=args.device, verbose=False, **precision)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        yolo.predict(frames, device=args.device, verbose=False, **precision)
        count += len(frames)
    return count / (time.perf_counter() - started)


def main() -> None:
    from ultralytics.utils import ASSETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=test_model_path())
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients on the batch endpoint")
    parser.add_argument("--images", type=int, default=16, help="images per batch request and per bare predict call")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each throughput phase")
    parser.add_argument("--device-path", choices=("auto", "on", "off"), default="auto", help="VISION_DEVICE_PATH")
    parser.add_argument("--max-batch", type=int, default=64, help="VISION_MAX_BATCH: most frames per model call")
    parser.add_argument("--latency-requests", type=int, default=100, help="sequential requests for p50/p95")
    args = parser.parse_args()
    image = ASSETS / "bus.jpg"

    service_rate, latencies, gpu, refused = bench_service(args, image.read_bytes())
    bare_rate = bench_bare(args, image)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    gpu_text = f"{statistics.fmean(gpu) * 100:.0f} %" if gpu else "n/a"
    print(
        f"model {Path(args.model).name}, device {args.device}, device path {args.device_path}, "
        f"max batch {args.max_batch}, {os.cpu_count()} CPU cores, bus.jpg 810x1080"
    )
    print(f"bare Ultralytics, batches of {args.images}:          {bare_rate:8.2f} images/s")
    print(f"service /v1/detect/batch, {args.clients} clients x {args.images}: {service_rate:8.2f} images/s")
    if refused:
        print(f"refused batch requests (not counted):    {len(refused)} (statuses {sorted(set(refused))})")
    print(f"ratio service / bare:                    {service_rate / bare_rate:8.2f}")
    print(f"server-side latency at batch 1:          p50 {q[49] * 1e3:.1f} ms, p95 {q[94] * 1e3:.1f} ms")
    print(f"GPU utilisation during the service run:  {gpu_text}")


if __name__ == "__main__":
    main()
