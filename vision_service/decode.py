"""Bytes to frame: a strict image decoder that checks size limits before decoding pixels.

Pillow reads only the header on ``Image.open``, so width x height is checked against the pixel
limit before any pixel is decompressed (a 50,000 x 50,000 PNG bomb costs a few hundred bytes of
work). Decoding is strict: a truncated or corrupt file raises instead of yielding grey pixels.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vision_service.errors import InputError, Reason

# Formats a camera or a client realistically sends; anything else Pillow knows (EPS, PSD, ICO...)
# is refused, which also keeps rarely-audited decoders out of reach.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})

# We enforce our own pixel limit; Pillow's global bomb check would raise a different error type.
Image.MAX_IMAGE_PIXELS = None
_EXIF_ORIENTATION = 0x0112
# Below this neither the quality signals (3x3 filters, 8x8 noise blocks) nor detection mean anything.
MIN_SIDE = 8


@dataclass(frozen=True)
class Frame:
    """A decoded image: uint8 BGR pixels (OpenCV order) and the format it came in."""

    pixels: np.ndarray
    format: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Frame:
    """Decode image bytes to a BGR frame, or raise :class:`InputError` naming the problem."""
    if not data:
        raise InputError(Reason.EMPTY, "the request carried no image bytes")
    if len(data) > max_bytes:
        raise InputError(Reason.TOO_LARGE, f"image is {len(data)} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(Reason.NOT_AN_IMAGE, "the bytes are not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise InputError(Reason.CORRUPT_IMAGE, f"unreadable image header: {exc}") from None
    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise InputError(
                Reason.UNSUPPORTED_FORMAT,
                f"{image.format} images are not accepted; send one of {sorted(SUPPORTED_FORMATS)}",
            )
        width, height = image.size
        if width < MIN_SIDE or height < MIN_SIDE:
            raise InputError(
                Reason.TOO_SMALL, f"image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels"
            )
        if width * height > max_pixels:
            raise InputError(
                Reason.TOO_MANY_PIXELS,
                f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # Pillow warns, rather than fails, on some corruption
                image.load()
            rgb = _to_rgb(_upright(image))
        except Exception as exc:
            raise InputError(Reason.CORRUPT_IMAGE, f"{image.format} data is truncated or corrupt: {exc}") from None
        fmt = str(image.format)
    # OpenCV and Ultralytics expect BGR; cvtColor is ~7x faster than a NumPy channel flip copy.
    return Frame(pixels=cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), format=fmt)


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
    if image.getexif().get(_EXIF_ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)
