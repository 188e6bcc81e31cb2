"""Camera-sized frames for benchmarks and the detector's calibration: an image fitted onto a
1280x720 frame, frames spread over a video, the demo clip rendered afresh."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

FRAME_WIDTH = 1280
FRAME_HEIGHT = 720


def fit_frame(image: np.ndarray, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> np.ndarray:
    """`image` scaled to fit `width` x `height` with its aspect ratio kept, centred on a black frame
    of exactly that size (plates keep their shape, which the plate-geometry filter checks)."""
    return place_in_frame(image, width, height)[0]


def place_in_frame(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, int, int]:
    """`fit_frame` with where the image went: (frame, scale, left, top); an image pixel (x, y) is
    at (left + x * scale, top + y * scale) in the frame."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image, 1.0, 0, 0
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    frame[top : top + new_h, left : left + new_w] = resized
    return frame, scale, left, top


def video_frames(path: Path, limit: int) -> list[np.ndarray]:
    """Up to `limit` frames of the video at `path`, spread evenly over the clip, fitted to 1280x720."""
    capture = cv2.VideoCapture(str(path))
    try:
        decoded: list[np.ndarray] = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            decoded.append(frame)
    finally:
        capture.release()
    if len(decoded) > limit:
        picks = np.linspace(0, len(decoded) - 1, limit).round().astype(int)
        decoded = [decoded[i] for i in picks]
    return [fit_frame(f) for f in decoded]


def rendered_frames(limit: int) -> list[np.ndarray]:
    """The demo clip rendered afresh into a temporary folder (the bundled file left untouched)."""
    from services.demo.render import render

    with tempfile.TemporaryDirectory(prefix="platewatch-bench-") as tmp:
        # MJPG/AVI: writable by every OpenCV build, unlike mp4v.
        clip = Path(tmp) / "demo.avi"
        render(clip, Path(tmp) / "manifest.yaml")
        return video_frames(clip, limit)
