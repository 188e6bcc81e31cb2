"""The Kafka-free frame pipeline: motion gating, drop-not-queue backpressure, the latest-frame slot,
and the Frame messages it builds."""

from __future__ import annotations

import asyncio
from typing import Any

import cv2
import numpy as np
import pytest

from services.capture import pipeline as capture_pipeline
from services.capture.pipeline import (
    DROPPED_BACKPRESSURE,
    DROPPED_MOTION,
    PUBLISHED,
    CameraPipeline,
    PipelineConfig,
)
from services.capture.sources import CapturedFrame
from services.common.pb.platewatch.v1 import frames_pb2


class RecordingPublisher:
    """Collects frames; `auto_ack` completes each send at once, otherwise the futures never complete."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.sent: list[frames_pb2.Frame] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.any_sent = asyncio.Event()

    async def send_frame(self, frame: frames_pb2.Frame) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.auto_ack:
            future.set_result(None)
        self.sent.append(frame)
        self.futures.append(future)
        self.any_sent.set()
        return future


def image(value: int) -> np.ndarray:
    img = np.full((72, 128, 3), 100, np.uint8)
    img[20:50, 30:90] = value  # a "vehicle" patch whose brightness changes
    return img


def pipeline(publisher: RecordingPublisher, **config: Any) -> CameraPipeline:
    return CameraPipeline("cam-1", "pd", "/footage/x.mp4", publisher, PipelineConfig(**config))


async def test_static_frames_are_dropped_except_every_max_static_s() -> None:
    publisher = RecordingPublisher()
    pipe = pipeline(publisher, motion_threshold=2.0, max_static_s=1.0)
    # 30 identical frames at 10 fps (3 s): published at t=0, 1, 2 only.
    outcomes = [await pipe.handle(CapturedFrame(image(100), 1000.0 + i * 0.1)) for i in range(30)]
    assert outcomes.count(PUBLISHED) == 3
    assert outcomes.count(DROPPED_MOTION) == 27
    assert [f.captured_at.ToNanoseconds() / 1e9 for f in publisher.sent] == [1000.0, 1001.0, 1002.0]
    await asyncio.sleep(0)  # let the acknowledgement callbacks run
    assert pipe.stats.get("published") == 3 and pipe.stats.get("dropped_motion") == 27


async def test_moving_frames_pass_the_gate_and_small_noise_does_not() -> None:
    publisher = RecordingPublisher()
    pipe = pipeline(publisher, motion_threshold=2.0, max_static_s=60.0)
    assert await pipe.handle(CapturedFrame(image(100), 0.0)) == PUBLISHED
    assert await pipe.handle(CapturedFrame(image(101), 0.1)) == DROPPED_MOTION  # sensor noise
    assert await pipe.handle(CapturedFrame(image(200), 0.2)) == PUBLISHED  # something moved
    # Compared with the last PUBLISHED frame: slow drift adds up until it passes.
    outcomes = [await pipe.handle(CapturedFrame(image(200 + 4 * i), 0.3 + i * 0.1)) for i in range(1, 6)]
    assert PUBLISHED in outcomes and DROPPED_MOTION in outcomes


async def test_frames_are_dropped_not_queued_when_sends_are_unacknowledged() -> None:
    publisher = RecordingPublisher(auto_ack=False)
    pipe = pipeline(publisher, max_inflight=2, motion_threshold=0.0)
    outcomes = [await pipe.handle(CapturedFrame(image(i * 40), i * 0.1)) for i in range(6)]
    assert outcomes == [PUBLISHED, PUBLISHED] + [DROPPED_BACKPRESSURE] * 4
    assert pipe.inflight.in_flight == 2
    assert pipe.stats.get("dropped_backpressure") == 4
    assert pipe.stats.get("published") == 0  # counted only when the broker acknowledges
    # One acknowledgement frees one slot.
    publisher.futures[0].set_result(None)
    await asyncio.sleep(0)  # let the done-callbacks run
    assert pipe.stats.get("published") == 1
    assert await pipe.handle(CapturedFrame(image(250), 1.0)) == PUBLISHED
    assert await pipe.handle(CapturedFrame(image(10), 1.1)) == DROPPED_BACKPRESSURE


async def test_failed_acknowledgement_is_counted_and_frees_the_slot() -> None:
    publisher = RecordingPublisher(auto_ack=False)
    pipe = pipeline(publisher, max_inflight=1, motion_threshold=0.0)
    assert await pipe.handle(CapturedFrame(image(0), 0.0)) == PUBLISHED
    publisher.futures[0].set_exception(RuntimeError("broker down"))
    await asyncio.sleep(0)
    assert pipe.stats.get("failed_publish") == 1
    assert await pipe.handle(CapturedFrame(image(200), 0.1)) == PUBLISHED


async def test_slot_keeps_only_the_newest_frame() -> None:
    publisher = RecordingPublisher()
    pipe = pipeline(publisher, motion_threshold=0.0)
    for i in range(3):
        pipe.offer(CapturedFrame(image(i * 50), 10.0 + i))
    assert pipe.stats.get("captured") == 3
    assert pipe.stats.get("dropped_backpressure") == 2
    runner = asyncio.create_task(pipe.run())
    try:
        await asyncio.wait_for(publisher.any_sent.wait(), 5)
    finally:
        runner.cancel()
    assert [f.captured_at.seconds for f in publisher.sent] == [12]


async def test_frame_message_contents() -> None:
    publisher = RecordingPublisher()
    pipe = pipeline(publisher, motion_threshold=0.0, jpeg_quality=90)
    await pipe.handle(CapturedFrame(image(10), 1700000000.25))
    await pipe.handle(CapturedFrame(image(200), 1700000000.5))
    first, second = publisher.sent
    assert (first.camera_id, first.agency_id, first.source) == ("cam-1", "pd", "/footage/x.mp4")
    assert (first.sequence, second.sequence) == (1, 2)
    assert (first.width, first.height) == (128, 72)
    assert first.captured_at.ToNanoseconds() == 1_700_000_000_250_000_000
    decoded = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (72, 128, 3)
    assert first.region == ""  # no region in the registry


async def test_frames_past_the_contract_are_shrunk_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_pipeline, "MAX_FRAME_PIXELS", 128 * 72 // 4)  # stands in for 8K
    publisher = RecordingPublisher()
    pipe = pipeline(publisher, motion_threshold=0.0)
    await pipe.handle(CapturedFrame(image(10), 1.0))
    (sent,) = publisher.sent
    assert (sent.width, sent.height) == (64, 36)
    decoded = cv2.imdecode(np.frombuffer(sent.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (36, 64, 3)


async def test_frames_carry_the_camera_region() -> None:
    publisher = RecordingPublisher()
    pipe = CameraPipeline("cam-1", "pd", "x", publisher, PipelineConfig(motion_threshold=0.0), region="us-ia")
    await pipe.handle(CapturedFrame(image(10), 1.0))
    assert publisher.sent[0].region == "us-ia"


async def test_frames_carry_the_camera_roll() -> None:
    publisher = RecordingPublisher()
    config = PipelineConfig(motion_threshold=0.0)
    await CameraPipeline("cam-1", "pd", "x", publisher, config).handle(CapturedFrame(image(10), 1.0))
    await CameraPipeline("cam-2", "pd", "x", publisher, config, roll_deg=-6.5).handle(
        CapturedFrame(image(10), 1.0)
    )
    assert [frame.roll_deg for frame in publisher.sent] == [0.0, -6.5]
