"""ClickHouse down: the storage process (writer + search) starts anyway, reports not-ready and keeps
retrying; the reads backlog waits in Kafka (the writer commits nothing and its memory stays flat)
while the hotlist keeps raising alerts from the same reads. When a storage process with working
ClickHouse takes over, every read is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import make_consumer, make_producer
from services.common.net import free_port
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, reads_pb2, search_pb2, search_pb2_grpc
from services.common.topics import ALERTS, READS
from services.hotlist.client import HotlistClient
from services.stack import ManagedProcess, Stack, wait_until
from services.writer.main import CONSUMER_GROUP

AGENCY = "pd-outage"
HOT_PLATE = "OUT999"
READS_SENT = 3000
HOT_EVERY = 100  # every 100th read is the hotlisted plate: 30 alerts expected
CROP_BYTES = 16 * 1024
# The backlog is READS_SENT * CROP_BYTES = 47 MiB of image bytes alone. A writer that fetched it into
# memory while ClickHouse is down would grow by at least that (decoded protobufs and row lists hold
# further copies). Allowing half of it for allocator noise, health scrapes and retry attempts still
# fails any writer that buffers the backlog, and passes one that leaves it in Kafka.
RSS_GROWTH_BOUND_KIB = READS_SENT * CROP_BYTES // 1024 // 2
# Fixed window, after the backlog and its alerts are in, during which the process must stay up and
# unready, commit nothing, keep retrying and keep its memory flat. The writer's backoff is capped at
# RETRY_MAX_S here, so the window spans several attempts.
OBSERVATION_S = 8.0
RETRY_MAX_S = 2.0


def _read(index: int, now: datetime) -> reads_pb2.Read:
    plate = HOT_PLATE if index % HOT_EVERY == 0 else f"OK{index:05d}"
    read = reads_pb2.Read(
        read_id=f"outage-{index:05d}",
        plate=plate,
        region="DE",
        confidence=0.95,
        camera=common_pb2.CameraInfo(camera_id=f"cam-{index % 4}", agency_id=AGENCY, lat=52.5, lon=13.4),
        # Incompressible enough that nothing downstream can hide a buffered backlog.
        crop_jpeg=b"\xff\xd8" + index.to_bytes(4, "big") * (CROP_BYTES // 4),
        frames=2,
        candidates=[common_pb2.TextCandidate(text=plate, confidence=0.95)],
    )
    read.captured_at.FromDatetime(now - timedelta(seconds=index))
    return read


async def _produce(bootstrap: str, prefix: str, reads: list[reads_pb2.Read]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futures = [
            await producer.send(READS.name(prefix), value=r.SerializeToString(), key=r.read_id.encode())
            for r in reads
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _put_plate_on_hotlist(target: str) -> None:
    async with HotlistClient(target) as client:
        await client.wait_serving(60)
        hotlist = await client.create_hotlist(name="Outage test", agency_id=AGENCY)
        await client.add_entry(hotlist.hotlist_id, plate=HOT_PLATE, reason="stolen_vehicle")


async def _alerted_read_ids(bootstrap: str, prefix: str) -> set[str]:
    """Read ids of every alert on the alerts topic so far."""
    consumer = make_consumer(bootstrap, None)
    await consumer.start()
    try:
        tps = [TopicPartition(ALERTS.name(prefix), p) for p in range(ALERTS.partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ids: set[str] = set()
        deadline = time.monotonic() + 30
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                break
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                for record in batch:
                    alert = alerts_pb2.Alert()
                    alert.ParseFromString(record.value)
                    ids.add(alert.read.read_id)
        return ids
    finally:
        await consumer.stop()


async def _writer_committed(bootstrap: str, prefix: str) -> dict[int, int]:
    """The writer group's committed offsets on the reads topic, by partition (absent: none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(prefix + CONSUMER_GROUP)
    finally:
        await admin.close()
    reads_topic = READS.name(prefix)
    return {
        tp.partition: meta.offset
        for tp, meta in committed.items()
        if tp.topic == reads_topic and meta.offset >= 0
    }


async def _reads_end_offsets(bootstrap: str, prefix: str) -> dict[int, int]:
    consumer = make_consumer(bootstrap, None)
    await consumer.start()
    try:
        tps = [TopicPartition(READS.name(prefix), p) for p in range(READS.partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _readiness(process: ManagedProcess) -> tuple[int, dict[str, bool]]:
    assert process.ready_url is not None
    try:
        with urllib.request.urlopen(process.ready_url, timeout=2) as response:
            return int(response.status), json.loads(response.read())["checks"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["checks"]


def _retries_logged(log_path: Path) -> int:
    """Failed attempts of the writer to open ClickHouse, as logged."""
    count = 0
    for line in log_path.read_text().splitlines():
        if '"ClickHouse not usable yet"' in line and '"component": "writer"' in line:
            count += 1
    return count


def _count(target: str) -> tuple[int, int]:
    with grpc.insecure_channel(target) as channel:
        reply = search_pb2_grpc.SearchServiceStub(channel).CountReads(
            search_pb2.CountReadsRequest(agency_ids=[AGENCY]), timeout=10
        )
    return reply.reads, reply.distinct_read_ids


def test_clickhouse_outage_keeps_backlog_in_kafka_and_alerts_flowing(
    stack_factory: Callable[..., Stack], kafka_bootstrap: str, topic_prefix: str
) -> None:
    stack = stack_factory(extra_env={"PLATEWATCH_BATCH_MAX_SECONDS": "0.3"})
    stack.start_services(["hotlist"])
    asyncio.run(_put_plate_on_hotlist(f"127.0.0.1:{stack.ports.hotlist_grpc}"))

    # Storage whose ClickHouse is down: nothing listens on this port.
    down = stack.make_process("storage")
    down.env["PLATEWATCH_CLICKHOUSE_URL"] = f"http://127.0.0.1:{free_port()}"
    down.env["PLATEWATCH_RETRY_MAX_SECONDS"] = str(RETRY_MAX_S)
    stack.processes["storage"] = down  # so the fixture stops it if the test fails
    down.start()
    wait_until(lambda: _retries_logged(down.log_path) >= 3, 60, "the writer to retry opening ClickHouse")
    assert down.running()
    status, checks = _readiness(down)
    # The search component shares the process and its ClickHouse, so it is not ready either.
    assert status == 503 and checks.get("writer") is False and checks.get("search") is False
    baseline_rss = _rss_kib(down.pid or 0)

    now = datetime.now(UTC)
    reads = [_read(i, now) for i in range(READS_SENT)]
    asyncio.run(_produce(kafka_bootstrap, topic_prefix, reads))
    hot_ids = {r.read_id for r in reads if r.plate == HOT_PLATE}
    assert len(hot_ids) == READS_SENT // HOT_EVERY

    # The alert path does not depend on storage.
    wait_until(
        lambda: hot_ids <= asyncio.run(_alerted_read_ids(kafka_bootstrap, topic_prefix)),
        120,
        "alerts for every hotlisted read while ClickHouse is down",
    )

    # Fixed observation window (see OBSERVATION_S): nothing may move while ClickHouse stays down.
    retries_before = _retries_logged(down.log_path)
    peak_rss = baseline_rss
    deadline = time.monotonic() + OBSERVATION_S
    while time.monotonic() < deadline:
        assert down.running(), f"storage process died during the outage; see {down.log_path}"
        peak_rss = max(peak_rss, _rss_kib(down.pid or 0))
        time.sleep(0.25)
    assert asyncio.run(_writer_committed(kafka_bootstrap, topic_prefix)) == {}
    assert _readiness(down)[0] == 503
    assert _retries_logged(down.log_path) > retries_before, "the writer stopped retrying"
    assert peak_rss - baseline_rss < RSS_GROWTH_BOUND_KIB, (
        f"RSS grew {peak_rss - baseline_rss} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB) while ClickHouse was down"
    )

    # A graceful stop while ClickHouse is still down, then a storage process that can store.
    down.stop()
    assert down.exit_code() == 0, f"storage did not stop cleanly; see {down.log_path}"
    del stack.processes["storage"]
    stack.start_service("storage")
    target = f"127.0.0.1:{stack.ports.search_grpc}"
    wait_until(lambda: _count(target)[0] >= READS_SENT, 180, f"{READS_SENT} stored reads")
    ends = asyncio.run(_reads_end_offsets(kafka_bootstrap, topic_prefix))
    wait_until(
        lambda: asyncio.run(_writer_committed(kafka_bootstrap, topic_prefix)) == ends,
        60,
        "the writer to commit the whole backlog",
    )
    assert _count(target) == (READS_SENT, READS_SENT)
