"""What a JPEG's marker segments say before any pixel is decoded: size, components, scans, orientation.

A JPEG is a sequence of marker segments (ITU-T T.81, Annex B): ``FF D8`` (start of image), then
segments ``FF xx`` + a 2-byte big-endian length (that counts itself), until ``FF D9`` (end of
image). Each start-of-scan segment (``FF DA``) is followed by entropy-coded data in which a
literal ``FF`` is stuffed as ``FF 00`` and restart markers ``FF D0``-``FF D7`` may appear; the
next marker is the first ``FF`` followed by anything else.

Why read it by hand: decoding cost grows with the number of scans (a progressive JPEG may repeat
a tiny scan thousands of times: 10,000 scans in 670 kB cost 25 s of CPU in libjpeg), and both
decoders need the size and orientation before they start. The segments before the first scan are
walked one by one; the scans after it are counted as the ``FF DA`` byte pairs that follow, in one
vectorised pass (``FF DA`` cannot occur in entropy-coded data; inside a table segment between two
scans it would be counted too, so the count is an upper bound). That costs about 30 µs for
bus.jpg (137 kB), where opening the file in Pillow costs about 37 µs and tells nothing of scans.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

SOI = b"\xff\xd8"
# Start-of-frame markers carry the size: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS, _EOI, _APP1 = 0xDA, 0xD9, 0xE1
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 have no length
# Some encoders pad a few bytes after the end-of-image marker.
_TAIL_SLACK = 32
EXIF_ORIENTATION = 0x0112  # the EXIF Orientation tag (decode.py reads it through Pillow)


@dataclass(frozen=True)
class JpegHeader:
    """A JPEG's facts from its markers: ``width`` x ``height``, colour ``components`` (1 grey, 3 colour,
    4 CMYK), the number of ``scans`` (an upper bound, see the module docstring), the EXIF
    ``orientation`` (1 = upright) and whether it ends with the end-of-image marker (``complete``)."""

    width: int
    height: int
    components: int
    scans: int
    orientation: int
    complete: bool


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """The header of a JPEG; None when ``data`` is not a JPEG whose markers lead to a frame header
    and a first scan (the strict decoder then names the problem)."""
    if not data.startswith(SOI):
        return None
    size: tuple[int, int, int] | None = None
    orientation, pos, end = 1, 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == _EOI:
            return None
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment = data[pos + 4 : pos + 2 + length]
        if marker in _SOF and len(segment) >= 6:
            height, width = struct.unpack_from(">HH", segment, 1)
            size = (width, height, segment[5])
        elif marker == _APP1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:])
        elif marker == _SOS:
            if size is None:
                return None
            scans = 1 + _count_sos(data, pos + 2 + length)
            complete = b"\xff\xd9" in data[-_TAIL_SLACK:]
            return JpegHeader(size[0], size[1], size[2], scans, orientation, complete)
        pos += 2 + length
    return None


def _count_sos(data: bytes, start: int) -> int:
    """``FF DA`` pairs in ``data[start:]`` (numpy: ``bytes.count`` of a two-byte needle is ~7x slower here)."""
    if start >= len(data) - 1:
        return 0
    tail = np.frombuffer(data, dtype=np.uint8, offset=start)
    marks = np.flatnonzero(tail[:-1] == 0xFF)
    return int(np.count_nonzero(tail[marks + 1] == 0xDA))


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 of an EXIF TIFF block; 1 when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    (first,) = struct.unpack_from(order + "I", tiff, 4)
    if first + 2 > len(tiff):
        return 1
    (entries,) = struct.unpack_from(order + "H", tiff, first)
    for index in range(entries):
        at = first + 2 + 12 * index
        if at + 12 > len(tiff):
            break
        tag, kind = struct.unpack_from(order + "HH", tiff, at)
        if tag == EXIF_ORIENTATION and kind == 3:  # SHORT
            (value,) = struct.unpack_from(order + "H", tiff, at + 8)
            return int(value)
    return 1
