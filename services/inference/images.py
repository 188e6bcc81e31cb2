"""Loading untrusted image files with bounded memory, for the command-line tools.

`load_image(path)` returns a BGR uint8 array or raises `ImageError` with a message fit for a per-file
error line. Limits (why): a file over `MAX_FILE_BYTES` is refused before it is read (it would be
held in memory whole); the pixel size is read from the header first
(`services.common.imagefiles.header_size`: JPEG, PNG, WebP, TIFF, BMP, GIF), and a file whose
size cannot be read that way is refused, since a few hundred bytes can claim gigapixels. A huge JPEG
(say 50 Mpx) is decoded at 1/2, 1/4 or 1/8 scale inside the decoder, without the full-size bitmap,
down to at most `MAX_DECODED_PIXELS`; one over `MAX_PIXELS` is refused. Other formats are decoded
whole before they are shrunk, so they are refused over `MAX_FULL_DECODE_PIXELS` (a GIF over
`MAX_GIF_PIXELS`).
Plates need far fewer pixels than that: detection runs on a 960-pixel canvas. A JPEG's EXIF
orientation is applied by the decoder, so boxes refer to the photo as viewers show it (phone photos
are often stored sideways with an orientation tag).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from services.common.imagefiles import (
    UndecodableImage,
    decode_image,
    header_size,
    image_format,
    reduced_read_flag,
)

MAX_FILE_BYTES = 200 * 1024 * 1024
# JPEG is scaled down inside its decoder, so its full size may be large; every other format is
# decoded whole before it is shrunk, so it is held to a smaller full size. Peak memory of one load
# measured here: PNG, TIFF, WebP 0.36-0.39 GB at 100 Mpx; GIF 1.2 GB at 100 Mpx (its decoder keeps
# 4 channels and a canvas), hence its own limit.
MAX_PIXELS = 400_000_000
MAX_FULL_DECODE_PIXELS = 100_000_000
MAX_GIF_PIXELS = 25_000_000
MAX_DECODED_PIXELS = 16_000_000
SUPPORTED_FORMATS = "JPEG, PNG, WebP, TIFF, BMP, GIF"


class ImageError(Exception):
    """The file is not an image this tool can read; the message says why."""


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
    # The size comes from the header, before decoding: a few hundred bytes can claim gigapixels.
    dimensions = header_size(data)
    kind = image_format(data)
    if dimensions is None:
        if kind is None:
            raise ImageError(f"not a decodable image: not a format this tool reads ({SUPPORTED_FORMATS})")
        raise ImageError(f"not a decodable image: damaged {kind.upper()} header, no image size in it")
    width, height = dimensions
    pixels = width * height
    if pixels == 0:
        raise ImageError("image header says it has no pixels")
    limit = {"jpeg": MAX_PIXELS, "gif": MAX_GIF_PIXELS}.get(kind or "", MAX_FULL_DECODE_PIXELS)
    if pixels > limit:
        raise ImageError(f"image too large ({width}x{height}; at most {limit} pixels for this format)")
    # The long side, not the width: the decoder turns an EXIF-rotated photo a quarter turn, which
    # swaps width and height but keeps the long side.
    original_long_side = max(width, height)
    flag = reduced_read_flag(width, height, MAX_DECODED_PIXELS) or cv2.IMREAD_REDUCED_COLOR_8
    try:
        image = decode_image(data, flag)
    except UndecodableImage as exc:
        raise ImageError(f"not a decodable image: {exc}") from exc
    if image.shape[0] * image.shape[1] > MAX_DECODED_PIXELS * 4:
        # A header that understated the size (the decoder trusts the data): shrink, never keep more.
        factor = (MAX_DECODED_PIXELS / (image.shape[0] * image.shape[1])) ** 0.5
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return LoadedImage(image, original_long_side / max(image.shape[:2]))
