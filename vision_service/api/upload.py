"""Reading uploads: the body streams in under a byte limit, then images are taken from it.

A request may send one image as a raw body with an ``image/*`` content type, or as multipart
form data (field ``image``; several ``image`` fields for the batch route). Limits are enforced
while the body streams in, so an oversized upload is refused without being held in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from vision_service.errors import InputError, Reason

# Multipart framing (boundaries, part headers) on top of the image bytes themselves.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
IMAGE_FIELD = "image"


@dataclass(frozen=True)
class Upload:
    """The images of one request (as raw bytes) and an optional form-supplied source id."""

    images: list[bytes]
    source: str | None = None


async def read_body(request: Request, limit: int, *, pause_timeout: float = 30.0) -> bytes:
    """Read the request body, refusing with ``too_large`` as soon as it passes ``limit`` bytes.

    A client that stops sending for ``pause_timeout`` seconds is refused with ``body_timeout``,
    so a slow or stalled upload cannot hold a worker forever.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(Reason.TOO_LARGE, f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), pause_timeout)
        except StopAsyncIteration:
            break
        except (asyncio.TimeoutError, TimeoutError):
            raise InputError(
                Reason.BODY_TIMEOUT, f"the request body stalled for more than {pause_timeout:g} s"
            ) from None
        size += len(chunk)
        if size > limit:
            raise InputError(Reason.TOO_LARGE, f"request body passed the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, *, image_limit: int, max_images: int, pause_timeout: float = 30.0) -> Upload:
    """Take the images out of a raw ``image/*`` body or a multipart form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body = await read_body(
            request, image_limit * max_images + MULTIPART_OVERHEAD_BYTES, pause_timeout=pause_timeout
        )
        return await _from_multipart(request, body, max_images=max_images)
    if content_type.startswith("image/"):
        body = await read_body(request, image_limit, pause_timeout=pause_timeout)
        if not body:
            raise InputError(Reason.EMPTY, "the request body is empty")
        return Upload(images=[body])
    raise InputError(
        Reason.UNSUPPORTED_MEDIA_TYPE,
        f"content type {content_type or '(none)'!r} is not accepted; send image/* bytes "
        f"or multipart/form-data with an {IMAGE_FIELD!r} field",
    )


async def _from_multipart(request: Request, body: bytes, *, max_images: int) -> Upload:
    if not body:
        raise InputError(Reason.EMPTY, "the request body is empty")

    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    replayed = Request(request.scope, replay)
    try:
        form = await replayed.form(max_files=max_images, max_fields=16, max_part_size=64 * 1024)
    except Exception as exc:  # Starlette raises HTTPException / MultiPartException on bad framing
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        raise InputError(Reason.MALFORMED_REQUEST, f"could not parse multipart form: {detail}") from None
    try:
        parts = form.getlist(IMAGE_FIELD)
        if not parts:
            raise InputError(Reason.MISSING_FIELD, f"multipart form has no {IMAGE_FIELD!r} field (fields: {len(form)})")
        if len(parts) > max_images:
            raise InputError(Reason.TOO_MANY_IMAGES, f"{len(parts)} images sent; the limit is {max_images}")
        images = []
        for part in parts:
            if not isinstance(part, UploadFile):
                raise InputError(Reason.MALFORMED_REQUEST, f"field {IMAGE_FIELD!r} must be a file, not text")
            # Per-image limits are checked by the decoder, so one bad image in a batch fails alone.
            images.append(await part.read())
        source = form.get("source")
        return Upload(images=images, source=source if isinstance(source, str) else None)
    finally:
        await form.close()
