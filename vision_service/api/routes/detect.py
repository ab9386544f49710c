"""POST /v1/detect and /v1/detect/batch: upload -> frames -> quality + detections -> JSON."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from vision_service.api.schemas import (
    BatchItem,
    BatchResponse,
    DetectResponse,
    ErrorResponse,
    ModelOut,
    detect_response,
    json_response,
)
from vision_service.api.state import ServiceState, State
from vision_service.api.upload import BodyTimeouts, read_upload
from vision_service.errors import ImageRejected, Reason
from vision_service.measurement import Measurement
from vision_service.pipeline import trim_heap

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
    """The accepted source id a request names (its label for rejected-image counts), or ``unknown_source``."""
    source = source or "upload"
    if source not in state.sources:
        # Never a label: an unknown id is counted under the fixed value 'unknown'.
        request.state.source_label = "unknown"
        raise ImageRejected(
            Reason.UNKNOWN_SOURCE,
            f"source {source[:64]!r} is not configured; known sources: {state.sources.ids()}",
        )
    request.state.source_label = source
    return source


async def _read_images(
    state: ServiceState, request: Request, source: str | None, max_images: int
) -> tuple[list[bytes], str]:
    """The request's images and the accepted source they are for (a form's ``source`` field wins)."""
    source = _checked_source(state, request, source)
    settings = state.settings
    upload = await read_upload(
        request,
        image_limit=settings.max_upload_bytes,
        max_images=max_images,
        timeouts=BodyTimeouts.from_settings(settings),
    )
    return upload.images, _checked_source(state, request, upload.source or source)


def _model(state: ServiceState) -> ModelOut:
    model = state.pipeline.engine.model
    return ModelOut(name=model.name, device=model.device)


@router.post(
    "/detect",
    response_model=DetectResponse,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Detect objects in one image and measure its quality",
)
async def detect(request: Request, state: State, source: str | None = SOURCE_QUERY) -> Response:
    images, source = await _read_images(state, request, source, max_images=1)
    (outcome,) = await _measure(state, images, source)
    if isinstance(outcome, ImageRejected):
        raise outcome
    return json_response(detect_response(outcome, _model(state)))


@router.post(
    "/detect/batch",
    response_model=BatchResponse,
    responses=_ERRORS,
    openapi_extra=_BODY_DOC,
    summary="Detect objects in several images (repeated 'image' fields); a bad image fails alone",
)
async def detect_batch(request: Request, state: State, source: str | None = SOURCE_QUERY) -> Response:
    images, source = await _read_images(state, request, source, max_images=state.settings.max_batch_images)
    outcomes = await _measure(state, images, source)
    model = _model(state)
    results: list[BatchItem] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, ImageRejected):
            state.metrics.record_rejection(source, outcome.reason)
            results.append(BatchItem(index=index, ok=False, error=outcome.reason.value, detail=outcome.detail))
        else:
            results.append(BatchItem(index=index, ok=True, **dict(detect_response(outcome, model))))
    failed = sum(isinstance(outcome, ImageRejected) for outcome in outcomes)
    return json_response(BatchResponse(results=results, processed=len(outcomes) - failed, failed=failed))


async def _measure(state: ServiceState, images: list[bytes], source: str) -> list[Measurement | ImageRejected]:
    """Each image's measurement, or why it was refused; a refusal of the upload as a whole is raised.

    Admitted from the headers before any decoding (when the detector is saturated, refusing costs no
    decode work); each frame joins the frames of concurrent requests and cameras in one engine run.
    After a large upload the heap is trimmed in a worker thread, never on the event loop.
    """
    admission, outcomes = await run_in_threadpool(state.pipeline.submit_images, images, source)
    try:
        futures = [asyncio.wrap_future(o) for o in outcomes if not isinstance(o, ImageRejected)]
        measured = iter(await asyncio.gather(*futures))
    finally:
        admission.release()
        if admission.trim_after:
            await run_in_threadpool(trim_heap)
    return [o if isinstance(o, ImageRejected) else next(measured) for o in outcomes]
