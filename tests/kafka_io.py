"""Reading topics back in tests: everything committed so far, or wait until enough has arrived."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.common.topics import Topic


async def read_topic(
    bootstrap: str, topic: Topic, prefix: str, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Every committed record now in `topic` (group-less, read_committed, beginning to end offsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name(prefix), p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                assert time.monotonic() < deadline, f"reading {tp} took more than {timeout_s}s"
                batch = await consumer.getmany(tp, timeout_ms=500)
                records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


async def wait_for_records(
    bootstrap: str, topic: Topic, prefix: str, count: int, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Poll `topic` until it holds at least `count` records or `timeout_s` passes; returns what is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = await read_topic(bootstrap, topic, prefix)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.2)  # poll interval
