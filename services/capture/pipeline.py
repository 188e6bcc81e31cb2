"""The per-camera frame pipeline, independent of Kafka: latest-frame slot, motion gate, bounded
in-flight sends (drop, never queue), JPEG encoding and the Frame message.

Flow: the reader thread's frame goes into a one-frame slot (a newer frame replaces one not yet handled);
`CameraPipeline.run` takes it, drops it when it barely differs from the last published frame (unless
`max_static_s` passed), drops it when `max_inflight` sends are still unacknowledged, else encodes and
hands it to the `FramePublisher`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from services.capture import metrics
from services.capture.sources import CapturedFrame, ReaderListener
from services.common.frames import MAX_FRAME_PIXELS
from services.common.pb.platewatch.v1 import frames_pb2

log = logging.getLogger(__name__)

MOTION_WIDTH = 64

CAPTURED = "captured"
PUBLISHED = "published"
DROPPED_MOTION = "dropped_motion"
DROPPED_BACKPRESSURE = "dropped_backpressure"
FAILED_ENCODE = "failed_encode"
FAILED_PUBLISH = "failed_publish"


class FramePublisher(Protocol):
    async def send_frame(self, frame: frames_pb2.Frame) -> asyncio.Future[Any]:
        """Start sending; the returned future completes when the broker acknowledged (or failed)."""
        ...


class CameraStats(ReaderListener):
    """Counters and connection state of one camera, mirrored to Prometheus. Thread-safe: the reader
    thread reports connection changes, the event loop counts frames."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.counts: dict[str, int] = {}
        self.connected = False
        self.last_error = ""
        self.reconnects = 0
        self.retry_delays: list[float] = []
        self._lock = threading.Lock()
        metrics.CONNECTED.labels(camera_id).set(0)

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + n
        metrics.FRAMES.labels(self.camera_id, outcome).inc(n)

    def get(self, outcome: str) -> int:
        with self._lock:
            return self.counts.get(outcome, 0)

    @property
    def dropped(self) -> int:
        with self._lock:
            return sum(n for outcome, n in self.counts.items() if outcome.startswith(("dropped", "failed")))

    def on_connected(self, connected: bool, error: str = "") -> None:
        with self._lock:
            self.connected = connected
            if error:
                self.last_error = error
        metrics.CONNECTED.labels(self.camera_id).set(1 if connected else 0)

    def on_reconnect(self, delay_s: float, error: str) -> None:
        with self._lock:
            self.reconnects += 1
            self.retry_delays.append(delay_s)
        metrics.RECONNECTS.labels(self.camera_id).inc()


class LatestFrameSlot:
    """Holds at most one frame (event-loop side). `put` replaces an unhandled frame and returns it."""

    def __init__(self) -> None:
        self._frame: CapturedFrame | None = None
        self._ready = asyncio.Event()

    def put(self, frame: CapturedFrame) -> CapturedFrame | None:
        replaced = self._frame
        self._frame = frame
        self._ready.set()
        return replaced

    async def get(self) -> CapturedFrame:
        await self._ready.wait()
        self._ready.clear()
        frame, self._frame = self._frame, None
        assert frame is not None
        return frame


def motion_thumbnail(image: np.ndarray) -> np.ndarray:
    """Small greyscale copy for cheap frame differencing (also damps sensor noise)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = grey.shape[:2]
    size = (MOTION_WIDTH, max(1, round(h * MOTION_WIDTH / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


class MotionGate:
    """Passes a frame when its thumbnail's mean absolute grey difference from the last published
    frame's is at least `threshold`, or when `max_static_s` passed since the last publish."""

    def __init__(self, threshold: float, max_static_s: float) -> None:
        self.threshold = threshold
        self.max_static_s = max_static_s
        self._reference: np.ndarray | None = None
        self._published_at = float("-inf")

    def difference(self, thumb: np.ndarray) -> float:
        if self._reference is None or self._reference.shape != thumb.shape:
            return float("inf")
        return float(cv2.absdiff(thumb, self._reference).mean())

    def admits(self, thumb: np.ndarray, at: float) -> bool:
        if at - self._published_at >= self.max_static_s:
            return True
        return self.difference(thumb) >= self.threshold

    def mark_published(self, thumb: np.ndarray, at: float) -> None:
        self._reference = thumb
        self._published_at = at


class InflightLimiter:
    """Tracks unacknowledged sends; `has_room` is False at the limit (the caller drops the frame)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending: set[asyncio.Future[Any]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def has_room(self) -> bool:
        return len(self._pending) < self.limit

    def track(self, future: asyncio.Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def wait_all(self, timeout_s: float) -> bool:
        """Wait for every pending send; False when some are still pending after `timeout_s`."""
        if not self._pending:
            return True
        _, pending = await asyncio.wait(set(self._pending), timeout=timeout_s)
        return not pending


def within_frame_contract(image: np.ndarray) -> np.ndarray:
    """`image`, or a copy shrunk (same aspect) to at most `MAX_FRAME_PIXELS`, which inference refuses
    beyond: a camera streaming past 8K still gets its frames read."""
    height, width = image.shape[:2]
    if width * height <= MAX_FRAME_PIXELS:
        return image
    factor = (MAX_FRAME_PIXELS / (width * height)) ** 0.5
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def encode_frame(image: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """The frame as it will be sent (`within_frame_contract`) and its JPEG."""
    sent = within_frame_contract(image)
    return sent, encode_jpeg(sent, quality)


def to_timestamp(unix_s: float) -> Timestamp:
    """Float seconds to a Timestamp without the precision loss of multiplying by 1e9 first."""
    seconds = int(unix_s // 1)
    nanos = round((unix_s - seconds) * 1e9)
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return Timestamp(seconds=seconds, nanos=nanos)


@dataclass(frozen=True)
class PipelineConfig:
    jpeg_quality: int = 85
    max_inflight: int = 4
    motion_threshold: float = 2.0
    max_static_s: float = 5.0


class CameraPipeline:
    """One camera's frames from the slot to the publisher (see module docstring)."""

    def __init__(
        self,
        camera_id: str,
        agency_id: str,
        source_label: str,
        publisher: FramePublisher,
        config: PipelineConfig,
        stats: CameraStats | None = None,
        region: str | None = None,
        roll_deg: float = 0.0,
    ) -> None:
        self.camera_id = camera_id
        self.agency_id = agency_id
        # The registry's region, sent with every frame for the recognizer's plate grammar.
        self.region = region or ""
        # The registry's roll, sent with every frame: the recognizer turns the frame upright by it.
        self.roll_deg = roll_deg
        self.source_label = source_label
        self.publisher = publisher
        self.config = config
        self.stats = stats or CameraStats(camera_id)
        self.slot = LatestFrameSlot()
        self.gate = MotionGate(config.motion_threshold, config.max_static_s)
        self.inflight = InflightLimiter(config.max_inflight)
        self.sequence = 0
        self.last_captured_at = 0.0

    def offer(self, frame: CapturedFrame) -> None:
        """A frame from the reader (called on the event loop). Never blocks, never queues."""
        self.stats.count(CAPTURED)
        self.last_captured_at = frame.captured_at
        metrics.LAST_FRAME.labels(self.camera_id).set(frame.captured_at)
        if self.slot.put(frame) is not None:
            self.stats.count(DROPPED_BACKPRESSURE)

    async def run(self) -> None:
        """Handle frames from the slot until cancelled."""
        while True:
            frame = await self.slot.get()
            await self.handle(frame)

    async def handle(self, frame: CapturedFrame) -> str:
        """Gate, encode and send one frame; returns its outcome (published means sent, not yet acked)."""
        thumb = motion_thumbnail(frame.image)
        if not self.gate.admits(thumb, frame.captured_at):
            self.stats.count(DROPPED_MOTION)
            return DROPPED_MOTION
        if not self.inflight.has_room():
            self.stats.count(DROPPED_BACKPRESSURE)
            return DROPPED_BACKPRESSURE
        try:
            image, jpeg = await asyncio.to_thread(encode_frame, frame.image, self.config.jpeg_quality)
        except Exception as exc:
            log.warning("frame encoding failed", extra={"camera": self.camera_id, "error": str(exc)})
            self.stats.count(FAILED_ENCODE)
            return FAILED_ENCODE
        self.sequence += 1
        height, width = image.shape[:2]
        captured_at = to_timestamp(frame.captured_at)
        message = frames_pb2.Frame(
            camera_id=self.camera_id,
            agency_id=self.agency_id,
            sequence=self.sequence,
            captured_at=captured_at,
            jpeg=jpeg,
            width=width,
            height=height,
            source=self.source_label,
            region=self.region,
            roll_deg=self.roll_deg,
        )
        try:
            future = await self.publisher.send_frame(message)
        except Exception as exc:
            log.warning("frame send failed", extra={"camera": self.camera_id, "error": str(exc)})
            self.stats.count(FAILED_PUBLISH)
            return FAILED_PUBLISH
        self.gate.mark_published(thumb, frame.captured_at)
        self.inflight.track(future)
        future.add_done_callback(self._acknowledged)
        return PUBLISHED

    def _acknowledged(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            error = "cancelled" if future.cancelled() else str(future.exception())
            log.warning("frame not acknowledged", extra={"camera": self.camera_id, "error": error})
            self.stats.count(FAILED_PUBLISH)
        else:
            self.stats.count(PUBLISHED)
