"""Image sizes from file headers, before any decoding: the guard every decoder of untrusted images
needs. A few hundred bytes can claim 30000x30000 pixels, and OpenCV allocates the whole bitmap before
it finds the data missing (2.7 GB for such a JPEG), so sizes are checked here first.

`header_size(data)` returns (width, height) for JPEG, PNG, WebP, TIFF, BMP and GIF, the formats
OpenCV decodes whose size is one cheap read away, and None for anything else or a damaged header. It
is conservative: where a decoder would read a header differently (a stuffed JPEG zero, a repeated TIFF
tag: the cases found so far), it gives None or the larger size. PNM is not read: OpenCV's parser of its
text header differs from any simple one in details (comments ended by a carriage return).

`reduced_read_flag` picks the `cv2.IMREAD_*` flag that decodes a picture at 1/1, 1/2, 1/4 or 1/8
scale to stay within a pixel budget: JPEG decoders do that scaling inside the decoder, every other
format is decoded whole first and then shrunk, so callers bound those by their full size.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT/JPG/DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# (scale denominator, flag), smallest reduction first.
_REDUCTIONS = (
    (1, cv2.IMREAD_COLOR),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (8, cv2.IMREAD_REDUCED_COLOR_8),
)


def image_format(data: bytes) -> str | None:
    """The format named by the file's magic bytes ("jpeg", "png", "webp", "tiff", "bmp", "gif"), or
    None when it is none of these."""
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) that the file's header declares, None for an unknown format or a damaged or
    truncated header. Only the header is read: the pixels may still be missing or corrupt."""
    reader = _READERS.get(image_format(data) or "")
    if reader is None:
        return None
    try:
        size = reader(data)
    except (struct.error, ValueError, IndexError):
        return None
    if size is None or size[0] < 0 or size[1] < 0:
        return None
    return size


def reduced_read_flag(width: int, height: int, max_pixels: int) -> int | None:
    """The colour `cv2.imread`/`imdecode` flag whose 1/1, 1/2, 1/4 or 1/8 scale (the least reduction
    that does) brings width x height within `max_pixels`; None when even 1/8 does not."""
    pixels = width * height
    for factor, flag in _REDUCTIONS:
        if pixels <= max_pixels * factor * factor:
            return flag
    return None


class UndecodableImage(Exception):
    """OpenCV gave no picture for the data; the message says why (OpenCV's own words when it raised)."""


def decode_image(data: bytes, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """`cv2.imdecode` of `data` with `flag`, for a caller that has checked the header's size first
    (`header_size`); UndecodableImage when OpenCV raises or gives no pixels."""
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        raise UndecodableImage(str(exc)) from exc
    if image is None or image.size == 0:
        raise UndecodableImage("corrupt or unsupported format")
    return image


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker == 0x00:
            # A stuffed zero, not a marker: libjpeg scans past it byte by byte, so a segment length
            # read here could hide the real frame header behind a small fake one.
            return None
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        offset += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: key frame start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit sizes minus one
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:  # extended: 24-bit canvas sizes minus one
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """The first image's ImageWidth (256) and ImageLength (257), each as its first entry (libtiff
    ignores repeats), grown to TileWidth (322) and TileLength (323) when tiles are larger (OpenCV
    sizes a tile buffer by them); BigTIFF is not read."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for entry in range(count):
        start = ifd + 2 + 12 * entry
        tag, kind, _ = struct.unpack(order + "HHI", data[start : start + 8])
        if tag in (256, 257, 322, 323) and tag not in found:
            if kind == 3:  # SHORT, left-justified in the 4-byte value field
                (found[tag],) = struct.unpack(order + "H", data[start + 8 : start + 10])
            elif kind == 4:  # LONG
                (found[tag],) = struct.unpack(order + "I", data[start + 8 : start + 12])
            else:
                return None
    if 256 not in found or 257 not in found:
        return None
    return max(found[256], found.get(322, 0)), max(found[257], found.get(323, 0))


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
        width, height = struct.unpack("<HH", data[18:22])
        return int(width), int(height)
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _gif_size(data: bytes) -> tuple[int, int] | None:
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


_READERS = {
    "jpeg": _jpeg_size,
    "png": _png_size,
    "webp": _webp_size,
    "tiff": _tiff_size,
    "bmp": _bmp_size,
    "gif": _gif_size,
}
