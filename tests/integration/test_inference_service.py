"""The inference service against a real Kafka broker and a real Triton server: a rendered frame
yields one RawRead on RAW_READS, so does the same frame from a camera with a known roll, a corrupt
frame and a frame with an impossible roll land on the frames dead-letter topic, and the offsets of
all of them are committed."""

from __future__ import annotations

import asyncio
import struct
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
from tests.unit.test_printed_region import plate_with_word

TIMEOUT_S = 60.0


def _frame(camera_id: str, sequence: int, jpeg: bytes, roll_deg: float = 0.0) -> frames_pb2.Frame:
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
        roll_deg=roll_deg,
    )


def _claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header claiming `width` x `height` pixels."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


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
    # "TEXAS" printed above the registration: with Triton the words around plates are read ("auto").
    ok, jpeg = cv2.imencode(".jpg", plate_with_word("TEXAS"), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    # The same scene from a camera with 10 degrees of roll (level text runs down to the right).
    matrix = cv2.getRotationMatrix2D((640, 360), -10.0, 1.0)
    rolled = cv2.warpAffine(render_frame("ABC1234"), matrix, (1280, 720), borderMode=cv2.BORDER_REFLECT)
    ok, rolled_jpeg = cv2.imencode(".jpg", rolled, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    frames = (
        _frame("cam-a", 1, jpeg.tobytes()),
        _frame("cam-b", 7, b"\xff\xd8 not really a jpeg"),
        _frame("cam-c", 3, rolled_jpeg.tobytes(), roll_deg=10.0),
        _frame("cam-d", 4, jpeg.tobytes(), roll_deg=90.0),
        # A small JPEG whose header claims 30000x30000 pixels: decoded, it would take 2.7 GB.
        _frame("cam-e", 5, _claiming(jpeg.tobytes(), 30000, 30000)),
    )
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for frame in frames:
            await producer.send_and_wait(
                FRAMES.name(topic_prefix), frame.SerializeToString(), key=frame.camera_id.encode()
            )
    finally:
        await producer.stop()

    try:
        raw_records = await wait_for_records(kafka_bootstrap, RAW_READS, topic_prefix, 2)
        assert FRAMES.dead_letter is not None
        dead = await wait_for_records(kafka_bootstrap, FRAMES.dead_letter, topic_prefix, 3)
        deadline = time.monotonic() + TIMEOUT_S
        while not await _committed_everything(kafka_bootstrap, topic_prefix):
            assert time.monotonic() < deadline, "inference never committed the frames"
            await asyncio.sleep(0.2)  # poll interval
        readiness = health.readiness()
        assert readiness and all(readiness.values()), readiness
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)

    # Every frame is committed, so nothing else can arrive: exactly two reads and three dead letters.
    raw_records = await read_topic(kafka_bootstrap, RAW_READS, topic_prefix)
    assert sorted(record.key for record in raw_records) == [b"cam-a", b"cam-c"]
    by_camera = {record.key: reads_pb2.RawRead.FromString(record.value) for record in raw_records}
    read = by_camera[b"cam-a"]
    assert read.camera_id == "cam-a" and read.agency_id == "agency-1" and read.frame_sequence == 1
    assert read.candidates[0].text == "ABC1234"
    assert len(read.candidates[0].char_confidences) == 7
    assert read.frame_width == 1280 and read.frame_height == 720
    assert 470 <= read.box.x <= 520 and read.box.width > 150
    assert read.vehicle.color == "red"
    assert read.printed_region == "US-TX"
    assert read.model_version and read.inferred_at.seconds > 0
    assert read.captured_at.seconds > 0
    thumb = cv2.imdecode(np.frombuffer(read.frame_thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumb is not None and thumb.shape[1] == 320
    assert read.crop_jpeg[:2] == b"\xff\xd8"

    # The rolled camera's read: the plate, boxed in the frame's own pixels around where the roll moved it.
    rolled_read = by_camera[b"cam-c"]
    assert rolled_read.candidates[0].text == "ABC1234"
    centre = cv2.transform(
        np.array([[[read.box.x + read.box.width / 2, read.box.y + read.box.height / 2]]]), matrix
    )
    assert abs(rolled_read.box.x + rolled_read.box.width / 2 - centre[0, 0, 0]) <= 20
    assert abs(rolled_read.box.y + rolled_read.box.height / 2 - centre[0, 0, 1]) <= 20
    assert (
        rolled_read.box.x + rolled_read.box.width <= 1280
        and rolled_read.box.y + rolled_read.box.height <= 720
    )

    dead = await read_topic(kafka_bootstrap, FRAMES.dead_letter, topic_prefix)
    reasons = sorted((record.key, dict(record.headers)["reason"]) for record in dead)
    assert reasons == [
        (b"cam-b", b"undecodable_jpeg"),
        (b"cam-d", b"bad_roll_deg"),
        (b"cam-e", b"frame_too_large"),
    ]
