"""Bounds of the Frame contract (proto/platewatch/v1/frames.proto) that more than one service checks."""

from __future__ import annotations

# `Frame.roll_deg` lies within +-this many degrees: the capture registry refuses a camera's
# `roll_deg` beyond it, and inference dead-letters a frame beyond it (`bad_roll_deg`). A camera
# turned further is mounted wrong, not rolled.
MAX_ROLL_DEG = 45.0


def roll_in_range(roll: float) -> bool:
    """Whether `roll` is a roll the Frame contract allows: a number within +-`MAX_ROLL_DEG` (NaN is not)."""
    return abs(roll) <= MAX_ROLL_DEG
