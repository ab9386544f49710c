"""POST /v1/detect and /v1/detect/batch: upload -> frame -> quality + detections -> JSON."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from vision_service.api.schemas import BatchResponse, DetectResponse, ErrorResponse
from vision_service.api.state import ServiceState, State
from vision_service.api.upload import read_upload
from vision_service.decode import decode_image
from vision_service.errors import InputError, Reason
from vision_service.measurement import Measurement
from vision_service.pipeline import PendingFrame

router = APIRouter(prefix="/v1", tags=["detection"])

# Shown in the OpenAPI document: both routes take a raw image/* body or multipart form data.
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "source": {"type": "string"},
                    },
                    "required": ["image"],
                }
            },
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 503)}
SOURCE_QUERY = Query(None, description="A configured source id; default 'upload'.", max_length=64)


def _checked_source(state: ServiceState, request: Request, source: str | None) -> str:
    source = source or "upload"
    if source not in state.sources:
        # Never a label: an unknown id is counted under the fixed value 'unknown'.
        request.state.source_label = "unknown"
        raise InputError(
            Reason.UNKNOWN_SOURCE,
            f"source {source[:64]!r} is not configured; known sources: {sorted(state.sources)}",
        )
    request.state.source_label = source
    return source


def _response(m: Measurement, state: ServiceState) -> dict[str, Any]:
    t = m.times
    return {
        "source": m.source,
        "detections": [d.as_dict() for d in m.detections],
        "count": len(m.detections),
        "quality": m.quality.as_dict(),
        "image": {"width": m.width, "height": m.height},
        "timings_ms": {
            "decode": t.decode * 1000,
            "quality": t.quality * 1000,
            "preprocess": t.preprocess * 1000,
            "inference": t.inference * 1000,
            "postprocess": t.postprocess * 1000,
            "total": m.total_seconds * 1000,
        },
        "model": {"name": state.detector.name, "device": state.detector.device},
    }


def _decode(state: ServiceState, images: list[bytes], source: str) -> list[PendingFrame | InputError]:
    """Decode every image; a bad one becomes its own error. Blocking: run it in the thread pool.

    With the device path on, JPEGs are decoded together on the model's device (nvJPEG on CUDA)
    and stay there; otherwise each image goes through the strict CPU decoder.
    """
    limits = {"max_bytes": state.settings.max_upload_bytes, "max_pixels": state.settings.max_image_pixels}
    device_path = state.pipeline.device_path
    if device_path is not None:
        started = time.perf_counter()
        outcomes = device_path.decode(images, **limits)
        each = (time.perf_counter() - started) / len(images)  # one batched call: its time split evenly
        return [item if isinstance(item, InputError) else PendingFrame(item, source, each) for item in outcomes]
    decoded: list[PendingFrame | InputError] = []
    for data in images:
        started = time.perf_counter()
        try:
            frame = decode_image(data, **limits)
        except InputError as exc:
            decoded.append(exc)
        else:
            decoded.append(PendingFrame(frame.pixels, source, time.perf_counter() - started))
    return decoded


def _require_ready(state: ServiceState) -> None:
    if not state.ready:
        detail = state.load_error or "the model is still loading; retry shortly"
        raise InputError(Reason.NOT_READY, detail)


@router.post(
    "/detect",
    response_model=DetectResponse,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Detect objects in one image and measure its quality",
)
async def detect(request: Request, state: State, source: str | None = SOURCE_QUERY) -> dict[str, Any]:
    source = _checked_source(state, request, source)
    _require_ready(state)
    upload = await read_upload(
        request,
        image_limit=state.settings.max_upload_bytes,
        max_images=1,
        pause_timeout=state.settings.body_timeout_seconds,
    )
    if upload.source is not None:
        source = _checked_source(state, request, upload.source)
    # Admit before decoding: when the detector is saturated, refusing costs no decode work.
    with state.pipeline.admit(1):
        (frame,) = await run_in_threadpool(_decode, state, upload.images, source)
        if isinstance(frame, InputError):
            raise frame
        # Joins the frames of concurrent requests (and cameras) in one model call.
        (measurement,) = await state.pipeline.gather([frame])
    return _response(measurement, state)


@router.post(
    "/detect/batch",
    response_model=BatchResponse,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Detect objects in several images (repeated 'image' fields); a bad image fails alone",
)
async def detect_batch(request: Request, state: State, source: str | None = SOURCE_QUERY) -> dict[str, Any]:
    source = _checked_source(state, request, source)
    _require_ready(state)
    settings = state.settings
    upload = await read_upload(
        request,
        image_limit=settings.max_upload_bytes,
        max_images=settings.max_batch_images,
        pause_timeout=settings.body_timeout_seconds,
    )
    if upload.source is not None:
        source = _checked_source(state, request, upload.source)

    measurements: list[Measurement] = []
    with state.pipeline.admit(len(upload.images)):
        decoded = await run_in_threadpool(_decode, state, upload.images, source)
        for item in decoded:
            if isinstance(item, InputError):
                state.metrics.record_rejection(source, item.reason)
        frames = [d for d in decoded if isinstance(d, PendingFrame)]
        if frames:
            measurements = await state.pipeline.gather(frames)
    done = iter(measurements)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(decoded):
        if isinstance(item, InputError):
            results.append({"index": index, "ok": False, **item.to_json()})
        else:
            results.append({"index": index, "ok": True, **_response(next(done), state)})
    return {"results": results, "processed": len(frames), "failed": len(decoded) - len(frames)}
