"""Loading untrusted image files with bounded memory, for the command-line tools.

`load_image(path)` returns a BGR uint8 array or raises `ImageError` with a message fit for a per-file
error line. Limits (why): a file over `MAX_FILE_BYTES` is refused before it is read (it would be
held in memory whole); the pixel size is read from the JPEG/PNG header first, so a huge picture
(say 50 Mpx) is decoded at 1/2, 1/4 or 1/8 scale (JPEG does that inside the decoder, without the
full-size bitmap) down to at most `MAX_DECODED_PIXELS`, and one over `MAX_PIXELS` is refused.
Plates need far fewer pixels than that: detection runs on a 960-pixel canvas. A JPEG's EXIF
orientation is applied by the decoder, so boxes refer to the photo as viewers show it (phone photos
are often stored sideways with an orientation tag).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 400_000_000
MAX_DECODED_PIXELS = 16_000_000
_REDUCED = ((1, cv2.IMREAD_COLOR), (2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4))
_SMALLEST = (8, cv2.IMREAD_REDUCED_COLOR_8)
# JPEG start-of-frame markers (baseline, progressive, lossless, ...), not DHT/JPG/DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageError(Exception):
    """The file is not an image this tool can read; the message says why."""


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, None for other formats or a damaged header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _SOF_MARKERS:
            if offset + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return int(width), int(height)
        offset += 2 + length
    return None


@dataclass(frozen=True)
class LoadedImage:
    """`image`: BGR uint8, upright per the file's EXIF orientation; `scale`: original pixels per
    decoded pixel (1.0 unless downscaled), to map boxes back to the photo's full-size coordinates."""

    image: np.ndarray
    scale: float = 1.0


def load_image(path: Path) -> LoadedImage:
    """The image at `path` (downscaled when huge, see the module docstring)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise ImageError("empty file")
    if size > MAX_FILE_BYTES:
        raise ImageError(f"file too large ({size} bytes; at most {MAX_FILE_BYTES})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    flag = cv2.IMREAD_COLOR
    # The long side, not the width: the decoder turns an EXIF-rotated photo a quarter turn, which
    # swaps width and height but keeps the long side.
    original_long_side = 0
    dimensions = header_size(data)
    if dimensions is not None:
        width, height = dimensions
        original_long_side = max(width, height)
        pixels = width * height
        if pixels == 0:
            raise ImageError("image header says it has no pixels")
        if pixels > MAX_PIXELS:
            raise ImageError(f"image too large ({width}x{height}; at most {MAX_PIXELS} pixels)")
        flag = next(
            (f for factor, f in _REDUCED if pixels / (factor * factor) <= MAX_DECODED_PIXELS), _SMALLEST[1]
        )
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        raise ImageError(f"not a decodable image: {exc}") from exc
    if image is None or image.size == 0:
        raise ImageError("not a decodable image (corrupt or unsupported format)")
    original_long_side = original_long_side or max(image.shape[:2])
    if image.shape[0] * image.shape[1] > MAX_DECODED_PIXELS * 4:
        # A format without a header size we know (BMP, TIFF, WebP) decoded at full size.
        factor = (MAX_DECODED_PIXELS / (image.shape[0] * image.shape[1])) ** 0.5
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return LoadedImage(image, original_long_side / max(image.shape[:2]))
