"""Reading uploads: the body streams in under a byte limit, then images are taken from it.

A request may send one image as a raw body with an ``image/*`` content type, or as multipart
form data (field ``image``; several ``image`` fields for the batch route). Limits are enforced
while the body streams in, so an oversized upload is refused without being held in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from vision_service.errors import InputError, Reason

# Multipart framing (boundaries, part headers) on top of the image bytes themselves.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
IMAGE_FIELD = "image"
# Text fields a form may carry besides its images (only "source" is read), and their size.
MAX_TEXT_FIELDS = 16
MAX_TEXT_FIELD_BYTES = 64 * 1024


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
    loop = asyncio.get_running_loop()
    try:
        # One deadline moved on by every chunk: a pause limit, not a body limit, and far cheaper
        # than a wait_for (a task) per chunk, which cost more than parsing at high rates.
        async with asyncio.timeout(pause_timeout) as deadline:
            async for chunk in request.stream():
                deadline.reschedule(loop.time() + pause_timeout)
                size += len(chunk)
                if size > limit:
                    raise InputError(Reason.TOO_LARGE, f"request body passed the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise InputError(Reason.BODY_TIMEOUT, f"the request body stalled for more than {pause_timeout:g} s") from None
    return b"".join(chunks)


async def read_upload(request: Request, *, image_limit: int, max_images: int, pause_timeout: float = 30.0) -> Upload:
    """Take the images out of a raw ``image/*`` body or a multipart form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body = await read_body(
            request, image_limit * max_images + MULTIPART_OVERHEAD_BYTES, pause_timeout=pause_timeout
        )
        return parse_multipart(body, request.headers["content-type"], max_images=max_images)
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


def parse_multipart(body: bytes, content_type: str, *, max_images: int) -> Upload:
    """The ``image`` file parts and the ``source`` text field of a ``multipart/form-data`` body.

    python-multipart does the parsing; its callbacks keep only views into ``body`` and join each
    image once (Starlette's form parser spools every part into a temporary file: about 6,900
    137 kB JPEGs/s per core here against 10,600, ``scripts/bench_ingest.py``). Other file fields
    are skipped. More than ``max_images`` images, more than :data:`MAX_TEXT_FIELDS` text fields or
    one over :data:`MAX_TEXT_FIELD_BYTES`, a part without a name, an ``image`` text field, or a
    body cut before its closing boundary raise :class:`InputError`.
    """
    from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

    if not body:
        raise InputError(Reason.EMPTY, "the request body is empty")
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise InputError(Reason.MALFORMED_REQUEST, "the multipart content type has no boundary parameter")
    images: list[bytes] = []
    texts: dict[str, str] = {}
    fields = 0
    view = memoryview(body)
    # The part being read: its headers, then what to do with its data.
    headers: dict[bytes, bytes] = {}
    header_field = header_value = b""
    kind = "skip"  # "image" | "text" | "skip"
    name = ""
    chunks: list[memoryview | bytes] = []

    def slice_of(data: bytes, start: int, end: int) -> memoryview | bytes:
        # python-multipart hands back the buffer it was given: slice a view, copy nothing yet.
        return view[start:end] if data is body else data[start:end]

    def on_part_begin() -> None:
        nonlocal kind
        headers.clear()
        chunks.clear()
        kind = "skip"

    def on_header_field(data: bytes, start: int, end: int) -> None:
        nonlocal header_field
        header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        nonlocal header_value
        header_value += data[start:end]

    def on_header_end() -> None:
        nonlocal header_field, header_value
        headers[header_field.strip().lower()] = header_value.strip()
        header_field = header_value = b""

    def on_headers_finished() -> None:
        nonlocal kind, name, fields
        options = parse_options_header(headers.get(b"content-disposition", b""))[1]
        if b"name" not in options:
            raise InputError(Reason.MALFORMED_REQUEST, "a multipart part has no name in its Content-Disposition")
        name = options[b"name"].decode("latin-1")
        is_file = b"filename" in options
        if name == IMAGE_FIELD and not is_file:
            raise InputError(Reason.MALFORMED_REQUEST, f"field {IMAGE_FIELD!r} must be a file, not text")
        if name == IMAGE_FIELD:
            if len(images) >= max_images:
                raise InputError(Reason.TOO_MANY_IMAGES, f"more images than the limit of {max_images} were sent")
            kind = "image"
        elif not is_file:
            fields += 1
            if fields > MAX_TEXT_FIELDS:
                raise InputError(Reason.MALFORMED_REQUEST, f"more than {MAX_TEXT_FIELDS} text fields")
            kind = "text"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if kind == "skip":
            return
        chunks.append(slice_of(data, start, end))
        if kind == "text" and sum(len(c) for c in chunks) > MAX_TEXT_FIELD_BYTES:
            raise InputError(Reason.MALFORMED_REQUEST, f"text field {name[:64]!r} is over {MAX_TEXT_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        joined = b"".join(chunks)  # the one copy of an image's bytes
        if kind == "image":
            images.append(joined)
        elif kind == "text":
            texts[name] = joined.decode("utf-8", errors="replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except InputError:
        raise
    except Exception as exc:  # python-multipart's parse errors, and its header size and count limits
        raise InputError(Reason.MALFORMED_REQUEST, f"could not parse multipart form: {exc}") from None
    if parser.state != MultipartState.END:
        raise InputError(Reason.MALFORMED_REQUEST, "the multipart body ends before its closing boundary")
    if not images:
        raise InputError(Reason.MISSING_FIELD, f"multipart form has no {IMAGE_FIELD!r} file field")
    return Upload(images=images, source=texts.get("source"))
