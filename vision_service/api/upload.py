"""Reading uploads: the body streams in under a byte limit, then images are taken from it.

A request may send one image as a raw body with an ``image/*`` content type, or as multipart
form data (field ``image``; several ``image`` fields for the batch route). Limits are enforced
while the body streams in, so an oversized upload is refused without being held in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from vision_service.errors import ApiError, ImageRejected, Reason

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

    from vision_service.core.config import Settings

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


@dataclass(frozen=True)
class BodyTimeouts:
    """How long a request body may take: the longest pause between two chunks, and the whole body."""

    pause: float = 30.0
    total: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyTimeouts:
        """``VISION_BODY_TIMEOUT_SECONDS`` and ``VISION_BODY_DEADLINE_SECONDS``."""
        return cls(settings.body_timeout_seconds, settings.body_deadline_seconds)


async def read_body(
    request: Request, limit: int, *, timeouts: BodyTimeouts, error: type[ApiError] = ImageRejected
) -> bytes:
    """Read the request body, refusing with ``too_large`` as soon as it passes ``limit`` bytes.

    A client that stops sending for ``timeouts.pause`` seconds, or has not sent the whole body
    after ``timeouts.total`` seconds however it trickles, is refused with ``body_timeout``: a slow
    or stalled upload cannot hold a connection and a worker for ever. Refusals are raised as
    ``error``: :class:`ImageRejected` for image uploads (counted as rejected images),
    :class:`ApiError` for other bodies (a camera definition).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise error(Reason.TOO_LARGE, f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeouts.total
    try:
        # One deadline moved on by every chunk (never past the total), far cheaper than a
        # wait_for (a task) per chunk, which cost more than parsing at high rates.
        async with asyncio.timeout(min(timeouts.pause, timeouts.total)) as deadline:
            async for chunk in request.stream():
                deadline.reschedule(min(loop.time() + timeouts.pause, give_up))
                size += len(chunk)
                if size > limit:
                    raise error(Reason.TOO_LARGE, f"request body passed the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise error(
            Reason.BODY_TIMEOUT,
            f"the request body stalled for more than {timeouts.pause:g} s or took more than {timeouts.total:g} s",
        ) from None
    return b"".join(chunks)


async def read_upload(request: Request, *, image_limit: int, max_images: int, timeouts: BodyTimeouts) -> Upload:
    """Take the images out of a raw ``image/*`` body or a multipart form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body = await read_body(request, image_limit * max_images + MULTIPART_OVERHEAD_BYTES, timeouts=timeouts)
        return parse_multipart(body, request.headers["content-type"], max_images=max_images)
    if content_type.startswith("image/"):
        body = await read_body(request, image_limit, timeouts=timeouts)
        if not body:
            raise ImageRejected(Reason.EMPTY, "the request body is empty")
        return Upload(images=[body])
    raise ImageRejected(
        Reason.UNSUPPORTED_MEDIA_TYPE,
        f"content type {content_type or '(none)'!r} is not accepted; send image/* bytes "
        f"or multipart/form-data with an {IMAGE_FIELD!r} field",
    )


def parse_multipart(body: bytes, content_type: str, *, max_images: int) -> Upload:
    """The ``image`` file parts and the ``source`` text field of a ``multipart/form-data`` body.

    python-multipart does the parsing; :class:`_FormReader`'s callbacks keep only views into
    ``body`` and join each image once (Starlette's form parser spools every part into a temporary
    file: about 6,900 137 kB JPEGs/s per core here against 10,600, ``scripts/bench_ingest.py``).
    Other file fields are skipped. More than ``max_images`` images, more than
    :data:`MAX_TEXT_FIELDS` text fields or one over :data:`MAX_TEXT_FIELD_BYTES`, a part without a
    name, an ``image`` text field, or a body cut before its closing boundary raise
    :class:`ImageRejected`.
    """
    from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

    if not body:
        raise ImageRejected(Reason.EMPTY, "the request body is empty")
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ImageRejected(Reason.MALFORMED_REQUEST, "the multipart content type has no boundary parameter")
    form = _FormReader(body, max_images)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except ImageRejected:
        raise
    except Exception as exc:  # python-multipart's parse errors, and its header size and count limits
        raise ImageRejected(Reason.MALFORMED_REQUEST, f"could not parse multipart form: {exc}") from None
    if parser.state != MultipartState.END:
        raise ImageRejected(Reason.MALFORMED_REQUEST, "the multipart body ends before its closing boundary")
    if not form.images:
        raise ImageRejected(Reason.MISSING_FIELD, f"multipart form has no {IMAGE_FIELD!r} file field")
    return Upload(images=form.images, source=form.texts.get("source"))


class _FormReader:
    """python-multipart callbacks that collect a form's images and text fields from one body.

    State of the part being read: its headers, then what to do with its data (``kind``: keep it
    as an image, as a text field, or skip it).
    """

    def __init__(self, body: bytes, max_images: int) -> None:
        self.body = body
        self.view = memoryview(body)
        self.max_images = max_images
        self.images: list[bytes] = []
        self.texts: dict[str, str] = {}
        self.text_fields = 0
        self.headers: dict[bytes, bytes] = {}
        self.header_field = self.header_value = b""
        self.kind = "skip"
        self.name = ""
        self.chunks: list[memoryview | bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def _slice(self, data: bytes, start: int, end: int) -> memoryview | bytes:
        # python-multipart hands back the buffer it was given: slice a view, copy nothing yet.
        return self.view[start:end] if data is self.body else data[start:end]

    def on_part_begin(self) -> None:
        self.headers.clear()
        self.chunks.clear()
        self.kind = "skip"

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.strip().lower()] = self.header_value.strip()
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        options = parse_options_header(self.headers.get(b"content-disposition", b""))[1]
        if b"name" not in options:
            raise ImageRejected(Reason.MALFORMED_REQUEST, "a multipart part has no name in its Content-Disposition")
        self.name = options[b"name"].decode("latin-1")
        is_file = b"filename" in options
        if self.name == IMAGE_FIELD and not is_file:
            raise ImageRejected(Reason.MALFORMED_REQUEST, f"field {IMAGE_FIELD!r} must be a file, not text")
        if self.name == IMAGE_FIELD:
            if len(self.images) >= self.max_images:
                raise ImageRejected(
                    Reason.TOO_MANY_IMAGES, f"more images than the limit of {self.max_images} were sent"
                )
            self.kind = "image"
        elif not is_file:
            self.text_fields += 1
            if self.text_fields > MAX_TEXT_FIELDS:
                raise ImageRejected(Reason.MALFORMED_REQUEST, f"more than {MAX_TEXT_FIELDS} text fields")
            self.kind = "text"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.kind == "skip":
            return
        self.chunks.append(self._slice(data, start, end))
        if self.kind == "text" and sum(len(c) for c in self.chunks) > MAX_TEXT_FIELD_BYTES:
            raise ImageRejected(
                Reason.MALFORMED_REQUEST, f"text field {self.name[:64]!r} is over {MAX_TEXT_FIELD_BYTES} bytes"
            )

    def on_part_end(self) -> None:
        joined = b"".join(self.chunks)  # the one copy of an image's bytes
        if self.kind == "image":
            self.images.append(joined)
        elif self.kind == "text":
            self.texts[self.name] = joined.decode("utf-8", errors="replace")
