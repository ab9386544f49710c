"""Bytes to pixels on the CPU: a strict image decoder that checks size limits before decoding.

Pillow reads only the header on ``Image.open``, so width x height is checked against the pixel
limit before any pixel is decompressed (a 50,000 x 50,000 PNG bomb costs a few hundred bytes of
work). Decoding is strict: a truncated or corrupt file raises instead of yielding grey pixels.
Both engines use it: the host engine for every upload, the device engine for what its device
decoder does not take (see ``device.py``).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vision_service.core.config import MAX_JPEG_SCANS
from vision_service.engine.jpeg import EXIF_ORIENTATION, read_jpeg_header
from vision_service.errors import ImageRejected, Reason

if TYPE_CHECKING:
    from vision_service.engine import DecodeLimits

F = TypeVar("F")

# Formats a camera or a client realistically sends; anything else Pillow knows (EPS, PSD, ICO...)
# is refused, which also keeps rarely-audited decoders out of reach.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})

# We enforce our own pixel limit; Pillow's global bomb check would raise a different error type.
Image.MAX_IMAGE_PIXELS = None
# Pillow stores a decoded image in blocks of 16 MiB by default: below glibc's largest mmap threshold
# (32 MiB), so after a burst of large uploads freed blocks stay in the process's heap (measured:
# 4 concurrent 40 MP PNGs left RSS 560 MB higher). Blocks of 64 MiB are mapped and unmapped whole.
Image.core.set_block_size(64 * 1024 * 1024)
# Below this neither the quality signals (3x3 filters, 8x8 noise blocks) nor detection mean anything.
MIN_SIDE = 8


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, max_scans: int = MAX_JPEG_SCANS) -> np.ndarray:
    """Decode image bytes to uint8 BGR ``(H, W, 3)`` pixels, or raise :class:`ImageRejected` naming the problem.

    Every limit is checked before a pixel is decoded: bytes, width x height, and a JPEG's scans.
    The cost of the other formats is bounded by their pixels (PNG, WebP, BMP, TIFF; GIF and MPO
    decode their first frame only).
    """
    if not data:
        raise ImageRejected(Reason.EMPTY, "the request carried no image bytes")
    if len(data) > max_bytes:
        raise ImageRejected(Reason.TOO_LARGE, f"image is {len(data)} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected(Reason.NOT_AN_IMAGE, "the bytes are not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ImageRejected(Reason.CORRUPT_IMAGE, f"unreadable image header: {exc}") from None
    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise ImageRejected(
                Reason.UNSUPPORTED_FORMAT,
                f"{image.format} images are not accepted; send one of {sorted(SUPPORTED_FORMATS)}",
            )
        width, height = image.size
        if width < MIN_SIDE or height < MIN_SIDE:
            raise ImageRejected(
                Reason.TOO_SMALL, f"image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels"
            )
        if width * height > max_pixels:
            raise ImageRejected(
                Reason.TOO_MANY_PIXELS,
                f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            )
        if image.format in ("JPEG", "MPO"):
            header = read_jpeg_header(data)
            if header is not None and header.scans > max_scans:
                raise ImageRejected(
                    Reason.TOO_MANY_SCANS,
                    f"JPEG has {header.scans} scans; the limit is {max_scans} (each scan is a pass over the image)",
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # Pillow warns, rather than fails, on some corruption
                image.load()
            rgb = _to_rgb(_upright(image))
        except Exception as exc:
            raise ImageRejected(Reason.CORRUPT_IMAGE, f"{image.format} data is truncated or corrupt: {exc}") from None
    # OpenCV and Ultralytics expect BGR; cvtColor is ~7x faster than a NumPy channel flip copy.
    bgr: np.ndarray = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return bgr


def decode_each(
    images: Iterable[bytes], limits: DecodeLimits, make_frame: Callable[[np.ndarray, float], F]
) -> Iterator[F | ImageRejected]:
    """Each image, decoded by :func:`decode_image` when asked for: a frame of its pixels and seconds, or its error."""
    for data in images:
        started = time.perf_counter()
        try:
            bgr = decode_image(
                data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, max_scans=limits.max_scans
            )
        except ImageRejected as exc:
            yield exc
        else:
            yield make_frame(bgr, time.perf_counter() - started)


def declared_pixels(data: bytes) -> int:
    """Width x height an image's header declares, without decoding it; 0 when it has no readable header.

    Counted against the memory budget before any decoding (the decoders refuse what has no header).
    """
    header = read_jpeg_header(data)
    if header is not None:
        return header.width * header.height
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not an image, or a hostile header: the decoder says which
        return 0
    return int(width) * int(height)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """8-bit RGB pixels of any Pillow mode; 16-bit grey is scaled (Pillow would clip it at 255)."""
    if image.mode == "RGB":
        return np.asarray(image)
    if image.mode.startswith("I"):  # I;16, I;16B, I (16/32-bit integer grey)
        wide = np.asarray(image).astype(np.float32)
        gray = np.clip(wide / 257.0 if wide.max() > 255 else wide, 0, 255).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    return np.asarray(image.convert("RGB"))


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phones store rotated sensors' pixels as shot)."""
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)
