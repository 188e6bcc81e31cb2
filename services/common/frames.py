"""Bounds of the Frame contract (proto/platewatch/v1/frames.proto) that more than one service checks."""

from __future__ import annotations

# `Frame.roll_deg` lies within +-this many degrees: the capture registry refuses a camera's
# `roll_deg` beyond it, and inference dead-letters a frame beyond it (`bad_roll_deg`). A camera
# turned further is mounted wrong, not rolled.
MAX_ROLL_DEG = 45.0


def roll_in_range(roll: float) -> bool:
    """Whether `roll` is a roll the Frame contract allows: a number within +-`MAX_ROLL_DEG` (NaN is not)."""
    return abs(roll) <= MAX_ROLL_DEG


# `Frame.jpeg` holds at most this many pixels (8K UHD, 7680x4320): the largest frame a camera
# plausibly sends. Inference reads the size from the JPEG header before decoding and dead-letters a
# larger frame (`frame_too_large`): OpenCV allocates the whole bitmap first, so one frame of a few
# hundred bytes claiming 30000x30000 pixels would take 2.7 GB and crash the worker on every retry.
# Capture never sends more: it decodes a larger folder JPEG at a reduced scale, skips larger images
# of other formats and shrinks larger stream and video frames before encoding them.
MAX_FRAME_PIXELS = 7680 * 4320


def frame_size_allowed(width: int, height: int) -> bool:
    """Whether a width x height frame is one the Frame contract allows: not empty, at most
    `MAX_FRAME_PIXELS`."""
    return width > 0 and height > 0 and width * height <= MAX_FRAME_PIXELS
