"""The capture service: camera sources in, sampled JPEG `Frame`s out on FRAMES (key camera_id), plus a
`CameraHeartbeat` per camera on CAMERA_STATUS every `heartbeat_interval_s`.

Each camera has a reader thread (services/capture/sources.py) feeding its `CameraPipeline`
(services/capture/pipeline.py) through `loop.call_soon_threadsafe`. Frames are dropped, never queued:
the one-frame slot keeps only the newest frame, and at most `max_inflight_frames` sends per camera may
be unacknowledged.

Readiness "capture": the producer is started and at least one camera opened its source at least once
(one unreachable camera does not hold the whole process unready; its `camera_connected` gauge and
heartbeats say it is down). Stop: readers are stopped and joined, pending sends flushed, producer closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import field_validator
from pydantic_settings import NoDecode

from services.capture.pipeline import CameraPipeline, CameraStats, PipelineConfig
from services.capture.registry import Camera, load_registry, resolve_source
from services.capture.sources import CameraReader, CapturedFrame
from services.common.health import HealthState
from services.common.kafka import make_producer
from services.common.metrics import MESSAGES_PRODUCED
from services.common.pb.platewatch.v1 import frames_pb2
from services.common.settings import CommonSettings
from services.common.topics import CAMERA_STATUS, FRAMES

log = logging.getLogger(__name__)

SERVICE = "capture"
READER_JOIN_TIMEOUT_S = 6.0
FLUSH_TIMEOUT_S = 10.0


class CaptureSettings(CommonSettings):
    """Env: PLATEWATCH_CAMERA_IDS (comma-separated or JSON list; empty = every enabled camera),
    PLATEWATCH_LOOP_FILES, PLATEWATCH_JPEG_QUALITY, PLATEWATCH_MAX_INFLIGHT_FRAMES, ..."""

    camera_ids: Annotated[list[str], NoDecode] = []
    # Replay video files and image folders forever (the demo stack).
    loop_files: bool = False
    jpeg_quality: int = 85
    # Unacknowledged sends per camera before frames are dropped.
    max_inflight_frames: int = 4
    heartbeat_interval_s: float = 5.0
    # Mean absolute grey difference (0-255) on a 64 px wide thumbnail below which a frame is static.
    motion_threshold: float = 2.0
    # Publish at least one frame this often even without motion.
    max_static_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0

    @field_validator("camera_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


class KafkaFramePublisher:
    """FramePublisher over an aiokafka producer: FRAMES, key camera_id."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send_frame(self, frame: frames_pb2.Frame) -> asyncio.Future[Any]:
        future = await self.producer.send(self.topic, frame.SerializeToString(), key=frame.camera_id.encode())
        future.add_done_callback(self._count)
        return future

    @staticmethod
    def _count(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            MESSAGES_PRODUCED.labels(SERVICE, FRAMES.logical).inc()


class _LoopListener(CameraStats):
    """Camera stats that also forward the reader thread's frames into the event loop."""

    def __init__(self, camera_id: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(camera_id)
        self.loop = loop
        self.pipeline: CameraPipeline | None = None

    def on_frame(self, frame: CapturedFrame) -> None:
        if self.pipeline is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.pipeline.offer, frame)
        except RuntimeError:
            pass  # loop closed during shutdown


class CaptureService:
    def __init__(self, settings: CaptureSettings, health: HealthState) -> None:
        self.settings = settings
        self.health = health
        registry = load_registry(settings.cameras_file)
        # UnknownCameraError (a RegistryError) names the unknown id and the known ones.
        self.cameras: list[Camera] = registry.select(settings.camera_ids)
        if not self.cameras:
            raise ValueError(f"no enabled cameras in {settings.cameras_file}")
        self.producer = make_producer(settings.kafka_bootstrap)
        self.producer_started = False
        self.readers: list[CameraReader] = []
        self.pipelines: list[CameraPipeline] = []

    def ready(self) -> bool:
        return self.producer_started and any(reader.opened_once.is_set() for reader in self.readers)

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        self.health.add_check(SERVICE, self.ready)
        loop = asyncio.get_running_loop()
        await self.producer.start()
        self.producer_started = True
        publisher = KafkaFramePublisher(self.producer, FRAMES.name(settings.topic_prefix))
        config = PipelineConfig(
            jpeg_quality=settings.jpeg_quality,
            max_inflight=settings.max_inflight_frames,
            motion_threshold=settings.motion_threshold,
            max_static_s=settings.max_static_s,
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            for camera in self.cameras:
                source = resolve_source(camera)
                listener = _LoopListener(camera.id, loop)
                pipeline = CameraPipeline(
                    camera.id,
                    camera.agency_id,
                    source,
                    publisher,
                    config,
                    listener,
                    region=camera.region,
                    roll_deg=camera.roll_deg,
                )
                listener.pipeline = pipeline
                reader = CameraReader(
                    camera.id,
                    source,
                    camera.sample_fps,
                    listener,
                    loop_files=settings.loop_files,
                    reconnect_initial_s=settings.reconnect_initial_s,
                    reconnect_max_s=settings.reconnect_max_s,
                )
                self.pipelines.append(pipeline)
                self.readers.append(reader)
                tasks.append(asyncio.create_task(pipeline.run(), name=f"capture-pipeline-{camera.id}"))
                tasks.append(asyncio.create_task(self._heartbeats(camera, listener, stop)))
                reader.start()
            log.info(
                "capture started",
                extra={"cameras": [c.id for c in self.cameras], "loop_files": settings.loop_files},
            )
            await stop.wait()
        finally:
            self.producer_started = False
            for reader in self.readers:
                reader.stop()
            deadline = time.monotonic() + READER_JOIN_TIMEOUT_S
            for reader in self.readers:
                await asyncio.to_thread(reader.join, max(0.0, deadline - time.monotonic()))
                if reader.is_alive():
                    log.warning("camera reader did not stop in time", extra={"camera": reader.camera_id})
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for pipeline in self.pipelines:
                if not await pipeline.inflight.wait_all(FLUSH_TIMEOUT_S):
                    log.warning("frames still unacknowledged at stop", extra={"camera": pipeline.camera_id})
            await self.producer.stop()
            log.info("capture stopped")

    async def _heartbeats(self, camera: Camera, stats: CameraStats, stop: asyncio.Event) -> None:
        topic = CAMERA_STATUS.name(self.settings.topic_prefix)
        while not stop.is_set():
            now = Timestamp()
            now.GetCurrentTime()
            heartbeat = frames_pb2.CameraHeartbeat(
                camera_id=camera.id,
                agency_id=camera.agency_id,
                at=now,
                connected=stats.connected,
                frames_captured=stats.get("captured"),
                frames_published=stats.get("published"),
                frames_dropped=stats.dropped,
                last_error=stats.last_error,
            )
            try:
                await self.producer.send(topic, heartbeat.SerializeToString(), key=camera.id.encode())
                MESSAGES_PRODUCED.labels(SERVICE, CAMERA_STATUS.logical).inc()
            except Exception:
                log.warning("heartbeat send failed", extra={"camera": camera.id}, exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), self.settings.heartbeat_interval_s)
            except TimeoutError:
                pass


async def serve(stop: asyncio.Event, health: HealthState, **overrides: Any) -> None:
    """Run the capture service until `stop` is set (see module docstring)."""
    settings = CaptureSettings(**overrides)
    await CaptureService(settings, health).run(stop)
