"""Inference service metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_PROCESSED = Counter("platewatch_inference_frames_total", "Frames run through plate recognition")
PLATES_FOUND = Counter("platewatch_inference_plates_total", "Plates found (one RawRead each)")
LINES_REJECTED = Counter(
    "platewatch_inference_lines_rejected_total",
    "Text lines the plate classifier dropped: scored under its threshold (before they are read),"
    " or read as a 3-character plate without its firm word",
)
INFERENCE_LATENCY = Histogram(
    "platewatch_inference_batch_seconds",
    "Seconds to recognize one batch of frames (det + rec + post-processing)",
    ["backend"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "platewatch_inference_batch_frames", "Frames per recognition batch", buckets=(1, 2, 4, 8, 16, 32)
)
BACKEND_ERRORS = Counter(
    "platewatch_inference_backend_errors_total", "Failed recognition attempts (batch retried)", ["backend"]
)
CAMERA_LEAN = Gauge(
    "platewatch_inference_camera_lean_degrees",
    "How much a camera's frames lean: a running mean (each frame with text weighs 0.05) of each frame's"
    " median text-line angle, degrees by which level text runs down to the right, its known roll"
    " included: the value for the camera's roll_deg in the registry once it settles",
    ["camera"],
)
