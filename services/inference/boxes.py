"""Axis-aligned box arithmetic shared by plate finding and the accuracy benchmark (no heavy imports:
the CLI loads it at start)."""

from __future__ import annotations

from collections.abc import Sequence


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return float(inter / (aw * ah + bw * bh - inter))
