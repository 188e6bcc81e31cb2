"""Capture service metrics (per camera)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# outcome: captured (sampled from the source), published (acknowledged by Kafka), dropped_motion,
# dropped_backpressure (too many unacknowledged sends, or a newer frame replaced it before it was
# handled), failed_encode, failed_publish (the broker refused or the send timed out).
FRAMES = Counter("platewatch_capture_frames_total", "Frames by camera and outcome", ["camera", "outcome"])
CONNECTED = Gauge("platewatch_capture_camera_connected", "1 while the camera source is open", ["camera"])
LAST_FRAME = Gauge(
    "platewatch_capture_last_frame_timestamp_seconds",
    "Unix time of the camera's last captured frame (alert when stale)",
    ["camera"],
)
RECONNECTS = Counter("platewatch_capture_reconnects_total", "Source reconnect attempts", ["camera"])
