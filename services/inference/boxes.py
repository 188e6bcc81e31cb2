"""Axis-aligned box arithmetic shared by plate finding and the accuracy benchmark (no heavy imports:
the CLI loads it at start)."""

from __future__ import annotations

from collections.abc import Sequence


def intersection(a: Sequence[float], b: Sequence[float]) -> float:
    """Area two (x, y, w, h) boxes share (0 when they do not overlap)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    return float(width * height)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    inter = intersection(a, b)
    if inter == 0.0:
        return 0.0
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))
