"""Crash safety across the storage path: raw reads flow through the normalizer and the writer while
both are SIGKILLed and restarted again and again. Afterwards ClickHouse holds exactly one row per
vehicle pass: count() == uniqExact(read_id) == passes sent."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from aiokafka import TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import make_consumer, make_producer
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2, search_pb2, search_pb2_grpc
from services.common.topics import RAW_READS, READS
from services.stack import Stack, wait_until

CAMERAS_YAML = """
cameras:
  - id: cam-crash-1
    agency_id: agency-a
    name: Crash test north
    site: test-site
    lat: 51.5
    lon: -0.12
    heading_deg: 0
    source: /dev/null
    sample_fps: 5
    enabled: false
"""


def _raw_reads_for_pass(index: int, base_ms: int) -> list[reads_pb2.RawRead]:
    """Three frames of one vehicle pass; passes are 10 s apart so none merge."""
    plate = f"CR{index:05d}"
    reads = []
    for frame in range(3):
        at = Timestamp()
        at.FromMilliseconds(base_ms + index * 10_000 + frame * 200)
        reads.append(
            reads_pb2.RawRead(
                camera_id="cam-crash-1",
                agency_id="agency-a",
                frame_sequence=index * 10 + frame,
                captured_at=at,
                plate_index=0,
                box=common_pb2.Box(x=100, y=400 - frame * 40, width=160, height=40),
                frame_width=1280,
                frame_height=720,
                candidates=[common_pb2.TextCandidate(text=plate, confidence=0.95)],
                detection_confidence=0.9,
                crop_jpeg=b"\xff\xd8\xff\xd9",
            )
        )
    return reads


async def _send(bootstrap: str, topic: str, reads: list[reads_pb2.RawRead]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for read in reads:
            await producer.send(topic, read.SerializeToString(), key=read.camera_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _unconsumed(bootstrap: str, prefix: str) -> int:
    """Committed reads the writer group has not consumed yet (read_committed, so transaction markers
    and aborted records do not count)."""
    topic = READS.name(prefix)
    group = make_consumer(bootstrap, f"{prefix}writer")
    reader = make_consumer(bootstrap, None)
    await group.start()
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(READS.partitions)]
        reader.assign(partitions)
        for tp in partitions:
            committed = await group.committed(tp)
            reader.seek(tp, committed or 0)
        batches = await reader.getmany(timeout_ms=2000)
        return sum(len(records) for records in batches.values())
    finally:
        await group.stop()
        await reader.stop()


def _count(target: str) -> tuple[int, int]:
    with grpc.insecure_channel(target) as channel:
        reply = search_pb2_grpc.SearchServiceStub(channel).CountReads(
            search_pb2.CountReadsRequest(agency_ids=["agency-a"]), timeout=10
        )
    return reply.reads, reply.distinct_read_ids


def test_sigkill_normalizer_and_writer_loses_and_duplicates_nothing(
    stack_factory: Callable[..., Stack], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(CAMERAS_YAML)
    stack = stack_factory(
        cameras_file=cameras,
        extra_env={"PLATEWATCH_IDLE_CLOSE_S": "1", "PLATEWATCH_BATCH_MAX_SECONDS": "0.3"},
    )
    stack.start_services(["storage", "normalizer"])
    passes = 120
    base_ms = int(time.time() * 1000) - passes * 10_000
    raw = [r for i in range(passes) for r in _raw_reads_for_pass(i, base_ms)]
    rng = random.Random(7)
    topic = RAW_READS.name(topic_prefix)
    chunks = [raw[i : i + 45] for i in range(0, len(raw), 45)]
    for number, chunk in enumerate(chunks):
        asyncio.run(_send(kafka_bootstrap, topic, chunk))
        victim = ("normalizer", "storage")[number % 2]
        time.sleep(rng.uniform(0.2, 1.5))  # let some of the chunk be mid-flight when the kill lands
        stack.processes[victim].kill()
        stack.start_service(victim)
    target = f"127.0.0.1:{stack.ports.search_grpc}"
    wait_until(lambda: _count(target)[0] >= passes, 180, f"{passes} stored reads")
    # Drain for good: the normalizer flushes its last transaction, then nothing may remain unconsumed
    # by the writer, so no late duplicate can land after the count below.
    stack.processes["normalizer"].stop()
    wait_until(
        lambda: asyncio.run(_unconsumed(kafka_bootstrap, topic_prefix)) == 0, 120, "the writer to catch up"
    )
    assert _count(target) == (passes, passes)
