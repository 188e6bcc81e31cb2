"""The writer against real Kafka and embedded ClickHouse.

- In this process: reads and alerts are stored; malformed messages (1% garbage, plus an absurd
  timestamp and a read without a plate) go to the dead-letter topic with a reason while every valid
  read is stored; SIGTERM-style stop commits everything.
- As `platewatch serve writer search` subprocesses: a writer that dies after inserting and before
  committing (test_crash_after_insert) is restarted with different batch sizes; with deduplication
  every read is stored exactly once (checked through the search gRPC CountReads, since the data
  directory belongs to the subprocess), without it the re-delivered batch shows up twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from services.common.health import HealthState
from services.common.kafka import make_producer
from services.common.net import free_port
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.topics import ALERTS, HOTLIST_CHANGES, READS, Topic
from services.search.client import SearchClient
from services.storage.client import close_client, get_client
from services.storage.settings import StorageSettings
from services.writer.main import CONSUMER_GROUP, serve

REPO_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def make_read(index: int, captured_at: datetime | None = None) -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id=f"read-{index:06d}-{uuid.uuid4().hex[:8]}",
        plate=f"TST{index:04d}",
        region="DE",
        confidence=0.93,
        camera=common_pb2.CameraInfo(camera_id=f"cam-{index % 3}", agency_id="pd-test", lat=52.5, lon=13.4),
        crop_jpeg=b"\xff\xd8\xff\xe0" + index.to_bytes(4, "big"),
        frames=2,
        candidates=[common_pb2.TextCandidate(text=f"TST{index:04d}", confidence=0.93)],
    )
    read.captured_at.FromDatetime(captured_at or datetime.now(UTC) - timedelta(minutes=index % 90))
    return read


async def produce(bootstrap: str, topic: Topic, prefix: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send (key, value) pairs and wait until the broker has all of them."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic.name(prefix), value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_reads(bootstrap: str, prefix: str, reads: list[reads_pb2.Read]) -> None:
    await produce(bootstrap, READS, prefix, [(r.read_id.encode(), r.SerializeToString()) for r in reads])


async def read_topic(bootstrap: str, name: str, expected: int, within: float = 60.0) -> list[object]:
    """The first `expected` records of topic `name` (all partitions, from the start)."""
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[object] = []
    try:
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def group_caught_up(bootstrap: str, group: str, topic: Topic, prefix: str) -> bool:
    """Whether `group` has committed the end offset of every partition of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic.name(prefix), p) for p in range(topic.partitions)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return all(tp in committed and committed[tp].offset == end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for(condition: Callable[[], Awaitable[T]], within: float, what: str) -> T:
    """Poll an async condition until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.2)


def _count(client: Client, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


# ---- in-process: storing, dead letters, graceful stop -------------------------------------------


async def test_writer_stores_reads_and_alerts_and_dead_letters_bad_messages(
    clickhouse_client: Client, kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEWATCH_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PLATEWATCH_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("PLATEWATCH_BATCH_MAX_ROWS", "50")
    monkeypatch.setenv("PLATEWATCH_BATCH_MAX_SECONDS", "0.3")
    stop = asyncio.Event()
    health = HealthState()
    writer = asyncio.create_task(serve(stop, health))

    valid = [make_read(i) for i in range(297)]
    messages = [(r.read_id.encode(), r.SerializeToString()) for r in valid]
    # 1% garbage: truncated protobuf (a length prefix longer than what follows) does not parse.
    for position in (10, 150, 290):
        messages.insert(position, (b"garbage", b"\x0a\x10abc"))
    ancient = make_read(9001, captured_at=datetime(1971, 1, 1, tzinfo=UTC))
    no_plate = make_read(9002)
    no_plate.plate = ""
    messages += [(b"ancient", ancient.SerializeToString()), (b"no-plate", no_plate.SerializeToString())]
    await produce(kafka_bootstrap, READS, topic_prefix, messages)

    alert = alerts_pb2.Alert(
        alert_id="alert-1",
        read=valid[5],
        entry=hotlist_pb2.HotlistEntry(entry_id="entry-1", hotlist_id="list-1", plate=valid[5].plate),
        hotlist_name="Stolen",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.FromDatetime(datetime.now(UTC))
    await produce(kafka_bootstrap, ALERTS, topic_prefix, [(b"alert-1", alert.SerializeToString())])

    async def stored() -> bool:
        reads = await asyncio.to_thread(_count, clickhouse_client, "SELECT count() FROM reads")
        alerts = await asyncio.to_thread(_count, clickhouse_client, "SELECT count() FROM alerts")
        return reads == len(valid) and alerts == 1

    await wait_for(stored, 90, "every valid read and the alert to be stored")
    assert health.readiness() == {"writer": True, "writer_storage_and_assignment": True}

    dead = await read_topic(kafka_bootstrap, READS.dead_letter.name(topic_prefix), expected=5)  # type: ignore[union-attr]
    reasons = sorted(dict(r.headers)["reason"].decode() for r in dead)  # type: ignore[attr-defined]
    assert reasons == ["absurd_timestamp", "invalid_message", "undecodable", "undecodable", "undecodable"]

    stop.set()
    await asyncio.wait_for(writer, timeout=30)
    assert await group_caught_up(kafka_bootstrap, topic_prefix + CONSUMER_GROUP, READS, topic_prefix)

    ids = {row[0] for row in clickhouse_client.query("SELECT read_id FROM reads").result_rows}
    assert ids == {r.read_id for r in valid}
    row = clickhouse_client.query(
        "SELECT plate, camera_id, agency_id, candidate_texts, toUnixTimestamp64Milli(captured_at) "
        "FROM reads WHERE read_id = {id:String}",
        {"id": valid[7].read_id},
    ).result_rows[0]
    assert row == (
        valid[7].plate,
        valid[7].camera.camera_id,
        "pd-test",
        [valid[7].plate],
        valid[7].captured_at.ToMilliseconds(),
    )
    crop = clickhouse_client.query(
        "SELECT crop_jpeg FROM read_images WHERE read_id = {id:String}",
        {"id": valid[7].read_id},
        column_formats={"crop_jpeg": "bytes"},
    ).result_rows
    assert crop == [(valid[7].crop_jpeg,)]
    alert_row = clickhouse_client.query(
        "SELECT alert_id, read_id, hotlist_id, entry_id, match_kind, status FROM alerts FINAL"
    ).result_rows
    assert alert_row == [
        ("alert-1", valid[5].read_id, "list-1", "entry-1", "MATCH_KIND_EXACT", "ALERT_STATUS_UNCONFIRMED")
    ]


async def test_writer_mirrors_hotlist_changes(
    clickhouse_client: Client, kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOTLIST_CHANGES (the hotlist service's compacted log) lands in hotlist_entries: the list's own
    row with its name, entries named after their list, a removal as the latest, inactive version."""
    monkeypatch.setenv("PLATEWATCH_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PLATEWATCH_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("PLATEWATCH_BATCH_MAX_SECONDS", "0.3")

    def at(change: hotlist_pb2.HotlistChange, second: int) -> bytes:
        change.at.FromDatetime(datetime(2026, 11, 1, 12, 0, second, tzinfo=UTC))
        return change.SerializeToString()

    hotlist = hotlist_pb2.Hotlist(hotlist_id="list-9", name="Stolen vehicles", agency_id="pd-test")
    stolen = hotlist_pb2.HotlistEntry(
        entry_id="e-1",
        hotlist_id="list-9",
        plate="ABC1234",
        agency_id="pd-test",
        reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE,
    )
    removed = hotlist_pb2.HotlistEntry(entry_id="e-2", hotlist_id="list-9", plate="XYZ9", agency_id="pd-test")
    await produce(
        kafka_bootstrap,
        HOTLIST_CHANGES,
        topic_prefix,
        [
            (b"list/list-9", at(hotlist_pb2.HotlistChange(hotlist=hotlist), 0)),
            (b"entry/e-1", at(hotlist_pb2.HotlistChange(entry=stolen), 1)),
            (b"entry/e-2", at(hotlist_pb2.HotlistChange(entry=removed), 2)),
            (b"entry/e-2", at(hotlist_pb2.HotlistChange(entry=removed, deleted=True), 3)),
            (b"garbage", b"\x0a\x10abc"),
        ],
    )
    stop = asyncio.Event()
    writer = asyncio.create_task(serve(stop, HealthState()))
    # One version per entry after FINAL (the removal replaces e-2's earlier version).
    query = "SELECT count() FROM hotlist_entries FINAL"
    await wait_for(
        lambda: asyncio.to_thread(lambda: _count(clickhouse_client, query) == 3), 60, "3 mirrored rows"
    )
    stop.set()
    await asyncio.wait_for(writer, timeout=30)
    rows = clickhouse_client.query(
        "SELECT entry_id, plate, hotlist_name, reason, active FROM hotlist_entries FINAL ORDER BY entry_id"
    ).result_rows
    assert rows == [
        ("", "", "Stolen vehicles", "", True),
        ("e-1", "ABC1234", "Stolen vehicles", "REASON_CODE_STOLEN_VEHICLE", True),
        ("e-2", "XYZ9", "Stolen vehicles", "REASON_CODE_UNSPECIFIED", False),
    ]


# ---- subprocess: crash between insert and commit ------------------------------------------------


def _start_storage_process(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, grpc_port: int, log_name: str, **settings: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEWATCH_")}
    env.update(
        {
            "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
            "PLATEWATCH_VAR_DIR": str(tmp_path / "var"),
            "PLATEWATCH_SEARCH_GRPC_PORT": str(grpc_port),
            "PLATEWATCH_SEARCH_GRPC_HOST": "127.0.0.1",
            "PLATEWATCH_METRICS_PORT": str(free_port()),
            "PLATEWATCH_BATCH_MAX_SECONDS": "0.5",
        }
    )
    env.update({f"PLATEWATCH_{k.upper()}": v for k, v in settings.items()})
    log = (tmp_path / log_name).open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "writer", "search"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _stored_rows(var_dir: Path) -> int:
    """Rows in reads, read by opening the (now unowned) data directory in this process."""
    try:
        client = get_client(StorageSettings(var_dir=var_dir))
        return _count(client, "SELECT count() FROM reads")
    finally:
        close_client()


@pytest.mark.parametrize("deduplicate", [True, False], ids=["deduplicate", "no-deduplication"])
async def test_crash_after_insert_before_commit(
    deduplicate: bool, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    reads = [make_read(i) for i in range(300)]
    await produce_reads(kafka_bootstrap, topic_prefix, reads)
    port = free_port()
    dedup = "true" if deduplicate else "false"

    crashing = _start_storage_process(
        tmp_path,
        kafka_bootstrap,
        topic_prefix,
        port,
        "crash.log",
        batch_max_rows="64",
        deduplicate=dedup,
        test_crash_after_insert="1",
    )
    try:
        exit_code = await asyncio.to_thread(crashing.wait, 120)
    finally:
        _stop(crashing)
    assert exit_code == 137, (tmp_path / "crash.log").read_text()[-3000:]
    inserted_before_crash = await asyncio.to_thread(_stored_rows, tmp_path / "var")
    assert 0 < inserted_before_crash <= 64

    # Restart without the hook and with other batch boundaries, so insert tokens differ and the
    # read_id check has to catch the re-delivered reads.
    restarted = _start_storage_process(
        tmp_path, kafka_bootstrap, topic_prefix, port, "restart.log", batch_max_rows="50", deduplicate=dedup
    )
    try:
        async with SearchClient(f"127.0.0.1:{port}") as search:
            await search.wait_serving(within=60)
            await wait_for(
                lambda: group_caught_up(kafka_bootstrap, topic_prefix + CONSUMER_GROUP, READS, topic_prefix),
                120,
                "the restarted writer to commit every read",
            )
            counts = await search.count_reads(agency_ids=["pd-test"])
    finally:
        exit_code = await asyncio.to_thread(_stop, restarted)
    assert exit_code == 0, (tmp_path / "restart.log").read_text()[-3000:]

    assert counts.distinct_read_ids == len(reads)
    if deduplicate:
        assert counts.reads == len(reads)
    else:
        assert counts.reads == len(reads) + inserted_before_crash
