"""Decoding: any real image a camera or client sends becomes BGR pixels; anything else is refused."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import FUZZ_EXAMPLES, encode_jpeg, encode_png, pil_bytes
from vision_service.engine.decode import decode_image
from vision_service.errors import ImageRejected, Reason

LIMITS = {"max_bytes": 8 * 1024 * 1024, "max_pixels": 4_000_000}


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge canvas, with one tiny compressed row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )


def reason_of(data: bytes, **limits: int) -> Reason:
    with pytest.raises(ImageRejected) as info:
        decode_image(data, **{**LIMITS, **limits})
    return info.value.reason


def test_jpeg_decodes_to_bgr_in_original_size(bus_bytes: bytes, bus_bgr: np.ndarray) -> None:
    pixels = decode_image(bus_bytes, **LIMITS)
    assert pixels.shape == bus_bgr.shape and pixels.dtype == np.uint8
    # Same pixels as OpenCV's own decoder, channel order included (libjpeg rounding aside).
    assert np.abs(pixels.astype(int) - bus_bgr.astype(int)).mean() < 1.0


def test_png_grayscale_and_alpha_become_three_channel_bgr(bus_bgr: np.ndarray) -> None:
    gray = bus_bgr.mean(axis=2).astype(np.uint8)
    assert decode_image(encode_png(gray), **LIMITS).shape == (*gray.shape, 3)
    rgba = Image.fromarray(bus_bgr[:, :, ::-1]).convert("RGBA")
    assert np.array_equal(decode_image(pil_bytes(rgba, "PNG"), **LIMITS), bus_bgr)


def test_exif_rotated_jpeg_is_turned_upright(bus_bgr: np.ndarray) -> None:
    image = Image.fromarray(bus_bgr[:, :, ::-1])
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    upright = decode_image(pil_bytes(image, "JPEG", exif=exif), **LIMITS)
    assert upright.shape[:2] == (bus_bgr.shape[1], bus_bgr.shape[0])


def test_empty_and_non_image_bytes_are_refused() -> None:
    assert reason_of(b"") is Reason.EMPTY
    assert reason_of(b"\xff") is Reason.NOT_AN_IMAGE
    assert reason_of(b"<html><body>hello</body></html>") is Reason.NOT_AN_IMAGE


def test_truncated_jpeg_and_png_are_corrupt(bus_bytes: bytes, bus_bgr: np.ndarray) -> None:
    assert reason_of(bus_bytes[: len(bus_bytes) // 2]) is Reason.CORRUPT_IMAGE
    png = encode_png(bus_bgr)
    assert reason_of(png[: len(png) // 2]) is Reason.CORRUPT_IMAGE


def test_byte_limit_is_checked_before_decoding(bus_bytes: bytes) -> None:
    assert reason_of(bus_bytes, max_bytes=len(bus_bytes) - 1) is Reason.TOO_LARGE
    assert decode_image(bus_bytes, max_bytes=len(bus_bytes), max_pixels=LIMITS["max_pixels"]).shape[1] == 810


def test_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 200
    assert reason_of(bomb) is Reason.TOO_MANY_PIXELS


def test_pixel_limit_is_exact(bus_bgr: np.ndarray) -> None:
    small = encode_jpeg(bus_bgr[:100, :100])
    assert decode_image(small, max_bytes=LIMITS["max_bytes"], max_pixels=10_000).shape[1] == 100
    assert reason_of(small, max_pixels=9_999) is Reason.TOO_MANY_PIXELS


def test_unsupported_formats_are_refused(bus_bgr: np.ndarray) -> None:
    image = Image.fromarray(bus_bgr[:64, :64, ::-1])
    assert reason_of(pil_bytes(image, "ICO")) is Reason.UNSUPPORTED_FORMAT
    assert reason_of(pil_bytes(image.convert("RGB"), "PDF")) is Reason.NOT_AN_IMAGE


@pytest.fixture(scope="module")
def seeds(bus_bgr: np.ndarray) -> list[bytes]:
    small = bus_bgr[::8, ::8]
    return [encode_jpeg(small), encode_png(small), pil_bytes(Image.fromarray(small[:, :, ::-1]), "WEBP")]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_images_decode_or_raise_input_error(seeds: list[bytes], data: st.DataObject) -> None:
    """Flipped bytes and cut-off files never crash the decoder: pixels or a named ImageRejected."""
    blob = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(0, 8))):
        index = data.draw(st.integers(0, len(blob) - 1))
        blob[index] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    try:
        pixels = decode_image(bytes(blob), **LIMITS)
    except ImageRejected as exc:
        assert exc.reason in Reason
        assert 400 <= exc.status_code < 500
    else:
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
