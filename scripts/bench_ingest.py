"""Host-side cost per image of the high-rate ingest route (/v1/detect/batch), stage by stage.

    python scripts/bench_ingest.py [--images 16] [--seconds 3]

At thousands of images/s the model is on the GPU and what is left on the host is Python: the
multipart parse (on the event loop), the decode (in the thread pool; on CUDA it is nvJPEG) and
the JSON response (on the event loop). This times each with ``bus.jpg`` (810x1080, 137 kB)
and prints images/s on one core:

* read: ``vision_service.api.upload.read_body`` over the body in 64 KiB chunks (uvicorn hands
  the body over as the socket delivers it), with its stall timeout armed;
* parse: ``vision_service.api.upload.parse_multipart`` vs Starlette's ``Request.form()``
  (what the route used before), on a body of ``--images`` images;
* decode: the strict CPU decoder (Pillow) vs ``torchvision.io.decode_jpeg`` batched on the CPU
  (the device engine's call; on a GPU the same call runs nvJPEG, measured by bench_gpu.py);
* respond: the route's real JSON for ``--images`` images (taken from the app with the test
  model), validated against ``BatchResponse`` and serialised, as FastAPI does.

The event-loop share (parse + respond) bounds what one service process can ingest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

from starlette.requests import Request
from ultralytics.utils import ASSETS
from urllib3 import encode_multipart_formdata

from tests.conftest import test_model_path
from vision_service.api.schemas import BatchResponse
from vision_service.api.upload import BodyTimeouts, parse_multipart, read_body
from vision_service.engine.decode import decode_image

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}


def rate(work: Callable[[], object], images: int, seconds: float) -> float:
    """Images/s of ``work`` (which handles ``images`` images per call), repeated for ``seconds``."""
    work()  # warm-up
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        calls += 1
    return calls * images / (time.perf_counter() - started)


def rate_async(work: Callable[[], Awaitable[object]], images: int, seconds: float) -> float:
    """:func:`rate` for a coroutine function, all calls in one event loop (as in the service)."""

    async def loop() -> float:
        await work()
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            await work()
            calls += 1
        return calls * images / (time.perf_counter() - started)

    return asyncio.run(loop())


async def read_in_chunks(pieces: list[bytes]) -> None:
    """``read_body`` on a request whose body arrives as ``pieces``."""
    messages = iter(pieces)

    async def receive() -> dict:
        piece = next(messages, None)
        return {"type": "http.request", "body": piece or b"", "more_body": piece is not None}

    await read_body(
        Request({"type": "http", "method": "POST", "headers": []}, receive), 1 << 40, timeouts=BodyTimeouts()
    )


async def starlette_form(body: bytes, content_type: str) -> None:
    """Starlette's form parser on the same body, as the route used it before parse_multipart."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type.encode())]}
    form = await Request(scope, receive).form(max_files=1000, max_fields=16)
    for part in form.getlist("image"):
        await part.read()  # type: ignore[union-attr]
    await form.close()


def batch_json(body: bytes, content_type: str) -> dict:
    """The real /v1/detect/batch answer for ``body``, from the app with the test model on the CPU."""
    from fastapi.testclient import TestClient

    from vision_service.api.main import create_app
    from vision_service.core.config import Settings

    app = create_app(Settings(model=test_model_path(), device="cpu", max_batch_images=64), load_model=False)
    app.state.service.load_model()
    with TestClient(app) as client:
        response = client.post("/v1/detect/batch", content=body, headers={"content-type": content_type})
        response.raise_for_status()
        return response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="images per request")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args()
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    torch.set_num_threads(1)  # one core, like the event loop
    jpeg = (ASSETS / "bus.jpg").read_bytes()
    n, seconds = args.images, args.seconds
    body, content_type = encode_multipart_formdata([("image", (f"{i}.jpg", jpeg, "image/jpeg")) for i in range(n)])
    pieces = [body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]
    encoded = [torch.frombuffer(bytearray(jpeg), dtype=torch.uint8)] * n
    answer = batch_json(body, content_type)
    # The event loop's share: read, parse and respond (decoding runs in the thread pool).
    read = rate_async(lambda: read_in_chunks(pieces), n, seconds)
    parse = rate(lambda: parse_multipart(body, content_type, max_images=n), n, seconds)
    respond = rate(lambda: BatchResponse.model_validate(answer).model_dump_json(), n, seconds)
    rows = [
        ("read", "read_body, 64 KiB chunks", read),
        ("parse", "parse_multipart (this service)", parse),
        ("parse", "Starlette Request.form()", rate_async(lambda: starlette_form(body, content_type), n, seconds)),
        ("decode", "strict CPU decoder (Pillow)", rate(lambda: decode_image(jpeg, **LIMITS), 1, seconds)),
        ("decode", "decode_jpeg batched, CPU", rate(lambda: decode_jpeg(encoded, mode=ImageReadMode.RGB), n, seconds)),
        ("respond", "BatchResponse validate + JSON", respond),
    ]
    print(f"bus.jpg ({len(jpeg) / 1000:.0f} kB), {n} images per request, one core, images/s:")
    for stage, what, images_per_s in rows:
        print(f"  {stage:8s} {what:34s} {images_per_s:10,.0f}   ({1e6 / images_per_s:7.1f} us/image)")
    loop = 1 / (1 / read + 1 / parse + 1 / respond)
    print(f"event-loop share (read + parse + respond): {loop:,.0f} images/s per service process")


if __name__ == "__main__":
    main()
