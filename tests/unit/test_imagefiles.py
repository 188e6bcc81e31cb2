"""Image sizes read from file headers before decoding (services/common/imagefiles.py)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from services.common.imagefiles import header_size, image_format, reduced_read_flag

# Every format header_size knows, as OpenCV writes it (OpenCV also decodes them all).
_EXTENSIONS = {
    ".jpg": "jpeg",
    ".png": "png",
    ".webp": "webp",
    ".tif": "tiff",
    ".bmp": "bmp",
    ".gif": "gif",
}


@pytest.mark.parametrize("extension", sorted(_EXTENSIONS))
@pytest.mark.parametrize(("width", "height"), [(53, 37), (1, 300), (4099, 3)])
def test_header_size_is_the_size_opencv_decodes(extension: str, width: int, height: int) -> None:
    image = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(extension, image)
    assert ok
    data = encoded.tobytes()
    assert image_format(data) == _EXTENSIONS[extension]
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    assert header_size(data) == (decoded.shape[1], decoded.shape[0]) == (width, height)


def test_lossless_and_extended_webp_sizes() -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    ok, lossless = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok and lossless.tobytes()[12:16] == b"VP8L"
    assert header_size(lossless.tobytes()) == (53, 37)
    extended = b"RIFF\x00\x00\x00\x00WEBPVP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00"
    extended += (52).to_bytes(3, "little") + (36).to_bytes(3, "little")
    assert header_size(extended) == (53, 37)


def test_big_endian_tiff_with_long_sizes() -> None:
    entries = [(256, 4, 1, struct.pack(">I", 70000)), (257, 3, 1, struct.pack(">HH", 513, 0))]
    ifd = struct.pack(">H", len(entries)) + b"".join(
        struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    data = b"MM\x00*" + struct.pack(">I", 8) + ifd + b"\x00\x00\x00\x00"
    assert header_size(data) == (70000, 513)
    assert header_size(data.replace(struct.pack(">H", 257), struct.pack(">H", 999))) is None  # no height


def test_top_down_bmp() -> None:
    bmp = b"BM" + bytes(12) + struct.pack("<Iii", 40, 640, -480)
    assert header_size(bmp) == (640, 480)


def _tiff(entries: list[tuple[int, int]]) -> bytes:
    """A little-endian TIFF whose first directory holds (tag, LONG value) entries in this order."""
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, 4, 1, value) for tag, value in entries
    )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def test_headers_a_decoder_reads_otherwise_never_understate_the_size() -> None:
    """Found in review: each of these once gave 16x16 while OpenCV decoded far more."""
    # A stuffed zero after a marker's 0xFF: libjpeg scans past it, so a length read there could hide
    # the real frame header behind a small fake one. No size.
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    jpeg = encoded.tobytes()
    assert header_size(jpeg[:2] + b"\xff\x00" + jpeg[2:]) is None
    # A repeated TIFF tag: libtiff keeps the first one.
    assert header_size(_tiff([(256, 6000), (257, 6000), (256, 16), (257, 16)])) == (6000, 6000)
    # Tiles larger than the image: OpenCV sizes its tile buffer by them.
    assert header_size(_tiff([(256, 16), (257, 16), (322, 14000), (323, 14000)])) == (14000, 14000)
    # PNM is not read at all (OpenCV ends a comment at a carriage return too).
    assert image_format(b"P4\n#c\r12000 12000\n16 16\n") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff",  # a JPEG cut inside its first marker
        b"\xff\xd8\xff\xe0 truncated",
        b"\x89PNG\r\n\x1a\n\x00\x00",  # a PNG cut before IHDR
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",  # a WebP without its frame header
        b"II*\x00\xff\xff\x00\x00",  # a TIFF whose first IFD lies past the end
        b"BM\x00",
        b"GIF89a\x01",
        b"P6\nwide tall\n",
    ],
)
def test_damaged_or_unknown_headers_give_no_size(data: bytes) -> None:
    assert header_size(data) is None


def test_a_tiny_jpeg_may_claim_gigapixels() -> None:
    """The reason for the guard: the header is what the decoder allocates by."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    assert len(data) < 1000 and header_size(bytes(data)) == (30000, 30000)


@pytest.mark.parametrize(
    ("width", "height", "flag"),
    [
        (1000, 1000, cv2.IMREAD_COLOR),
        (1001, 1000, cv2.IMREAD_REDUCED_COLOR_2),
        (4000, 1000, cv2.IMREAD_REDUCED_COLOR_2),  # 4x the budget: half each way fits exactly
        (4001, 1000, cv2.IMREAD_REDUCED_COLOR_4),
        (64000, 1000, cv2.IMREAD_REDUCED_COLOR_8),
        (64001, 1000, None),
    ],
)
def test_reduced_read_flag_is_the_least_reduction_within_budget(
    width: int, height: int, flag: int | None
) -> None:
    assert reduced_read_flag(width, height, 1_000_000) == flag


def test_decode_image_gives_pixels_or_says_why_not() -> None:
    from services.common.imagefiles import UndecodableImage, decode_image

    ok, encoded = cv2.imencode(".png", np.full((3, 5, 3), 7, np.uint8))
    assert ok and decode_image(encoded.tobytes()).shape == (3, 5, 3)
    with pytest.raises(UndecodableImage, match="corrupt or unsupported format"):
        decode_image(b"\xff\xd8junk")
