"""The writer's behaviour when ClickHouse fails: retry with backoff, fetching paused, no commit
until the insert is acknowledged. ClickHouse and Kafka are stand-ins here (unit test)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.writer.main import StorageUnavailable, Writer
from services.writer.rows import read_rows
from services.writer.settings import WriterSettings

TP = TopicPartition("reads", 0)


class FlakyClickHouse:
    """Fails the first `failures` inserts, then stores; remembers what it stored."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.retried_twice = threading.Event()
        self.inserts: list[tuple[str, int, str]] = []

    def insert(self, table: str, rows: list[Any], column_names: list[str], settings: dict[str, str]) -> None:
        self.attempts += 1
        if self.attempts >= 3:
            self.retried_twice.set()
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("ClickHouse is down")
        self.inserts.append((table, len(rows), settings["insert_deduplication_token"]))

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        class Result:
            result_rows: list[tuple[str]] = []

        return Result()


class RecordingConsumer:
    def __init__(self) -> None:
        self.paused: list[TopicPartition] = []
        self.resumed: list[TopicPartition] = []
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.extend(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.resumed.extend(tps)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


def _writer(failures: int, stop: asyncio.Event) -> tuple[Writer, FlakyClickHouse, RecordingConsumer]:
    clickhouse = FlakyClickHouse(failures)
    consumer = RecordingConsumer()
    settings = WriterSettings(retry_max_seconds=0.05)
    writer = Writer(settings, clickhouse, consumer, producer=None, stop=stop)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    for offset in (7, 8):
        read = reads_pb2.Read(read_id=f"r{offset}", plate="ABC", camera=common_pb2.CameraInfo(camera_id="c"))
        read.captured_at.FromDatetime(now)
        writer.batch.reads[TP].append((offset, read_rows(read, now)))
        writer.batch.note(TP, offset)
    return writer, clickhouse, consumer


async def test_failed_inserts_are_retried_with_fetching_paused_and_committed_after() -> None:
    writer, clickhouse, consumer = _writer(failures=3, stop=asyncio.Event())
    await writer.flush()
    assert clickhouse.inserts == [("read_images", 2, "reads/0/7-8"), ("reads", 2, "reads/0/7-8")]
    assert consumer.paused == [TP] and consumer.resumed == [TP]
    assert consumer.commits == [{TP: 9}]
    assert writer.clickhouse_ok and writer.batch.empty


async def test_stopping_during_an_outage_gives_up_without_committing() -> None:
    stop = asyncio.Event()
    writer, clickhouse, consumer = _writer(failures=1_000_000, stop=stop)
    flush = asyncio.create_task(writer.flush())
    # It keeps retrying rather than giving up on its own.
    assert await asyncio.to_thread(clickhouse.retried_twice.wait, 10)
    assert not flush.done() and not writer.clickhouse_ok
    stop.set()
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(flush, timeout=5)
    assert consumer.commits == [] and clickhouse.inserts == []
