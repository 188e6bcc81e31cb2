"""The inference service against a real Kafka broker and a real Triton server: a rendered frame
yields one RawRead on RAW_READS, a corrupt frame lands on the frames dead-letter topic, and the
offsets of both are committed."""

from __future__ import annotations

import asyncio
import time

import cv2
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.health import HealthState
from services.common.kafka import make_producer
from services.common.pb.platewatch.v1 import frames_pb2, reads_pb2
from services.common.topics import FRAMES, RAW_READS
from services.inference import main as inference
from tests.kafka_io import read_topic, wait_for_records
from tests.unit.test_inference_postprocess import render_frame

TIMEOUT_S = 60.0


def _frame(camera_id: str, sequence: int, jpeg: bytes) -> frames_pb2.Frame:
    captured_at = Timestamp()
    captured_at.GetCurrentTime()
    return frames_pb2.Frame(
        camera_id=camera_id,
        agency_id="agency-1",
        sequence=sequence,
        captured_at=captured_at,
        jpeg=jpeg,
        width=1280,
        height=720,
        source="test",
    )


async def _committed_everything(bootstrap: str, prefix: str) -> bool:
    """The inference group's committed offsets reach the end of every FRAMES partition."""
    topic = FRAMES.name(prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="inference", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(FRAMES.partitions)]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp)
            if ends[tp] and (committed or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


async def test_frame_to_raw_read_and_corrupt_frame_to_dead_letter(
    kafka_bootstrap: str, topic_prefix: str, triton_url: str
) -> None:
    stop = asyncio.Event()
    health = HealthState()
    service = asyncio.create_task(
        inference.serve(
            stop, health, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, triton_url=triton_url
        )
    )
    ok, jpeg = cv2.imencode(".jpg", render_frame("ABC1234"), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for frame in (_frame("cam-a", 1, jpeg.tobytes()), _frame("cam-b", 7, b"\xff\xd8 not really a jpeg")):
            await producer.send_and_wait(
                FRAMES.name(topic_prefix), frame.SerializeToString(), key=frame.camera_id.encode()
            )
    finally:
        await producer.stop()

    try:
        raw_records = await wait_for_records(kafka_bootstrap, RAW_READS, topic_prefix, 1)
        assert FRAMES.dead_letter is not None
        dead = await wait_for_records(kafka_bootstrap, FRAMES.dead_letter, topic_prefix, 1)
        deadline = time.monotonic() + TIMEOUT_S
        while not await _committed_everything(kafka_bootstrap, topic_prefix):
            assert time.monotonic() < deadline, "inference never committed the frames"
            await asyncio.sleep(0.2)  # poll interval
        readiness = health.readiness()
        assert readiness and all(readiness.values()), readiness
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)

    # Both frames are committed, so nothing else can arrive: exactly one read and one dead letter.
    raw_records = await read_topic(kafka_bootstrap, RAW_READS, topic_prefix)
    assert len(raw_records) == 1
    assert raw_records[0].key == b"cam-a"
    read = reads_pb2.RawRead.FromString(raw_records[0].value)
    assert read.camera_id == "cam-a" and read.agency_id == "agency-1" and read.frame_sequence == 1
    assert read.candidates[0].text == "ABC1234"
    assert len(read.candidates[0].char_confidences) == 7
    assert read.frame_width == 1280 and read.frame_height == 720
    assert 470 <= read.box.x <= 520 and read.box.width > 150
    assert read.vehicle.color == "red"
    assert read.model_version and read.inferred_at.seconds > 0
    assert read.captured_at.seconds > 0
    thumb = cv2.imdecode(np.frombuffer(read.frame_thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumb is not None and thumb.shape[1] == 320
    assert read.crop_jpeg[:2] == b"\xff\xd8"

    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["reason"] == b"undecodable_jpeg"
    assert dead[0].key == b"cam-b"
