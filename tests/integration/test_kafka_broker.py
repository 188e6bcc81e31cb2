"""The real broker from tests/fixtures/kafka_broker.py: topics as the registry says, the producer and
consumer settings from services/common/kafka.py, and transactions as the normalizer uses them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.common.kafka import decode, make_consumer, make_producer
from services.common.kafka_admin import ensure_topics
from services.common.net import free_port
from services.common.pb.platewatch.v1 import common_pb2, frames_pb2, reads_pb2
from services.common.topics import FRAMES, HOTLIST_CHANGES, NORMALIZER_STATE, RAW_READS, READS, all_topics
from services.deploy_tools.kafka_broker import (
    KafkaBroker,
    KafkaBrokerError,
    ensure_kafka_jars,
    probe_broker,
)

pytestmark = pytest.mark.timeout(180)

WAIT_S = 30.0


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    return admin


async def _topic_configs(admin: AIOKafkaAdminClient, name: str) -> dict[str, str]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    configs: dict[str, str] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            assert resource["error_code"] == 0, resource
            for entry in resource["config_entries"]:
                configs[entry["config_names"]] = entry["config_value"]
    return configs


async def _consume_until(
    consumer: AIOKafkaConsumer, done: Callable[[list[ConsumerRecord]], bool], timeout_s: float = WAIT_S
) -> list[ConsumerRecord]:
    """Collect records until `done(records)` holds; fails the test on timeout."""
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(records):
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout_s}s with {len(records)} records: {[r.value for r in records]}")
    return records


async def _eventually(
    probe: Callable[[], Awaitable[object]], expected: object, timeout_s: float = WAIT_S
) -> None:
    """Poll `probe` until it returns `expected`; fails the test with the last value on timeout."""
    value: object = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                value = await probe()
                if value == expected:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"still {value!r}, not {expected!r}, after {timeout_s}s")


def _read(read_id: str) -> reads_pb2.Read:
    return reads_pb2.Read(
        read_id=read_id,
        plate="AB12CDE",
        region="GB",
        confidence=0.91,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="agency-a"),
        frames=3,
    )


async def test_broker_answers_metadata(kafka_bootstrap: str) -> None:
    assert await probe_broker(kafka_bootstrap) >= 1


async def test_topics_exist_with_registry_partitions_and_config(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    admin = await _admin(kafka_bootstrap)
    try:
        described = {
            t["topic"]: t for t in await admin.describe_topics([t.name(topic_prefix) for t in all_topics()])
        }
        for topic in all_topics():
            name = topic.name(topic_prefix)
            assert described[name]["error_code"] == 0, name
            assert len(described[name]["partitions"]) == topic.partitions, name
            configs = await _topic_configs(admin, name)
            for key, value in topic.config().items():
                assert configs[key] == value, (name, key)
            assert configs["cleanup.policy"] == ("compact" if topic.compacted else "delete")
    finally:
        await admin.close()


async def test_ensure_topics_is_idempotent(kafka_bootstrap: str, topic_prefix: str) -> None:
    assert await ensure_topics(kafka_bootstrap, topic_prefix) == []
    # A partial set under a new prefix creates exactly those topics.
    other = f"t{uuid.uuid4().hex[:8]}."
    assert await ensure_topics(kafka_bootstrap, other, [READS, HOTLIST_CHANGES]) == [
        READS.name(other),
        HOTLIST_CHANGES.name(other),
    ]
    admin = await _admin(kafka_bootstrap)
    try:
        names = set(await admin.list_topics())
        await admin.delete_topics([READS.name(other), HOTLIST_CHANGES.name(other)])
    finally:
        await admin.close()
    assert READS.name(other) in names and NORMALIZER_STATE.name(other) not in names


async def test_broker_does_not_auto_create_topics(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Only the registry creates topics: a typo'd name must fail, not silently appear."""
    producer = make_producer(kafka_bootstrap, request_timeout_ms=3_000, metadata_max_age_ms=1_000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises KafkaTimeoutError or UnknownTopic
            async with asyncio.timeout(15):
                await producer.send_and_wait(f"{topic_prefix}not-in-the-registry", b"x")
    finally:
        await producer.stop()
    admin = await _admin(kafka_bootstrap)
    try:
        assert f"{topic_prefix}not-in-the-registry" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_idempotent_producer_and_read_committed_consumer_round_trip(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = READS.name(topic_prefix)
    read = _read("read-roundtrip-1")
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, read.SerializeToString(), key=read.read_id.encode())
    finally:
        await producer.stop()

    group = f"{topic_prefix}roundtrip"
    consumer = make_consumer(kafka_bootstrap, group, topic)
    await consumer.start()
    try:
        records = await _consume_until(consumer, lambda rs: len(rs) >= 1)
        assert len(records) == 1
        record = records[0]
        assert (record.partition, record.offset) == (metadata.partition, metadata.offset)
        assert record.key == read.read_id.encode()
        assert decode(READS, record.value) == read
        partition = TopicPartition(topic, record.partition)
        await consumer.commit({partition: record.offset + 1})
        assert await consumer.committed(partition) == record.offset + 1
    finally:
        await consumer.stop()


async def test_large_frame_fits_end_to_end(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Frames topics accept up to 16 MB; an 8 MB frame must pass producer, broker and consumer."""
    topic = FRAMES.name(topic_prefix)
    frame = frames_pb2.Frame(
        camera_id="cam-1", sequence=1, jpeg=bytes(range(256)) * 32_768, width=7680, height=4320
    )
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, frame.SerializeToString(), key=b"cam-1")
    finally:
        await producer.stop()
    consumer = make_consumer(kafka_bootstrap, f"{topic_prefix}frames", topic)
    await consumer.start()
    try:
        records = await _consume_until(consumer, lambda rs: len(rs) >= 1)
        assert decode(FRAMES, records[0].value) == frame
    finally:
        await consumer.stop()


async def test_transactions_commit_visible_abort_hidden(kafka_bootstrap: str, topic_prefix: str) -> None:
    """read_committed consumers see committed transactions only; the aborted write really reached
    the log (a read_uncommitted consumer sees it), so its absence is the isolation, not a lost send."""
    topic = READS.name(topic_prefix)
    producer = make_producer(kafka_bootstrap, transactional_id=f"{topic_prefix}txn-test")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1", key=b"k", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", key=b"k", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2", key=b"k", partition=0)
    finally:
        await producer.stop()

    committed = make_consumer(kafka_bootstrap, f"{topic_prefix}committed", topic)
    uncommitted = make_consumer(
        kafka_bootstrap, f"{topic_prefix}uncommitted", topic, isolation_level="read_uncommitted"
    )
    await committed.start()
    await uncommitted.start()
    try:
        seen = await _consume_until(committed, lambda rs: any(r.value == b"committed-2" for r in rs))
        assert [r.value for r in seen] == [b"committed-1", b"committed-2"]
        raw = await _consume_until(uncommitted, lambda rs: any(r.value == b"committed-2" for r in rs))
        assert [r.value for r in raw] == [b"committed-1", b"aborted", b"committed-2"]
    finally:
        await committed.stop()
        await uncommitted.stop()


async def test_consume_transform_produce_commits_offsets_atomically(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The normalizer's pattern: read raw reads, write reads and state, and commit the input offset
    inside the same transaction."""
    source = RAW_READS.name(topic_prefix)
    output = READS.name(topic_prefix)
    state = NORMALIZER_STATE.name(topic_prefix)
    group = f"{topic_prefix}normalizer"

    seed = make_producer(kafka_bootstrap)
    await seed.start()
    try:
        await seed.send_and_wait(source, b"raw-1", key=b"cam-1", partition=0)
    finally:
        await seed.stop()

    consumer = make_consumer(kafka_bootstrap, group, source)
    producer = make_producer(kafka_bootstrap, transactional_id=f"{topic_prefix}normalizer-0")
    await consumer.start()
    await producer.start()
    try:
        (record,) = await _consume_until(consumer, lambda rs: len(rs) >= 1)
        partition = TopicPartition(source, record.partition)
        async with producer.transaction():
            await producer.send(output, b"read-1", key=b"read-1")
            await producer.send(state, b"tracks", key=str(record.partition).encode())
            await producer.send_offsets_to_transaction({partition: record.offset + 1}, group)
        # The commit's markers reach __consumer_offsets just after EndTxn returns: poll, briefly.
        await _eventually(lambda: consumer.committed(partition), record.offset + 1)
    finally:
        await producer.stop()
        await consumer.stop()

    reader = make_consumer(kafka_bootstrap, f"{topic_prefix}reader", output, state)
    await reader.start()
    try:
        records = await _consume_until(reader, lambda rs: len(rs) >= 2)
        assert sorted(r.value for r in records) == [b"read-1", b"tracks"]
    finally:
        await reader.stop()


def test_broker_stops_from_another_process_and_keeps_data(tmp_path: Path) -> None:
    """stop() via the pid file (as `platewatch kafka stop` does), then a restart on the same data
    directory reuses the formatted storage and still has the topics."""
    classpath = ensure_kafka_jars()
    data_dir = tmp_path / "kafka"
    broker = KafkaBroker(data_dir, free_port(), free_port(), classpath=classpath)
    broker.start()
    try:
        broker.wait_ready(90)
        with pytest.raises(KafkaBrokerError):
            broker.start()  # one broker per data directory
        asyncio.run(ensure_topics(broker.bootstrap, "", [HOTLIST_CHANGES]))
        meta = (broker.log_dir / "meta.properties").read_text()

        elsewhere = KafkaBroker(data_dir, broker.port, broker.controller_port, classpath=classpath)
        pid = elsewhere.running_pid()
        assert pid is not None and pid == broker.running_pid()
        assert elsewhere.stop(timeout=30)
        assert elsewhere.running_pid() is None
        assert not broker.pid_file.exists()

        restarted = KafkaBroker(data_dir, free_port(), free_port(), classpath=classpath)
        restarted.start()
        try:
            restarted.wait_ready(90)
            assert (restarted.log_dir / "meta.properties").read_text() == meta, "storage was reformatted"
            assert asyncio.run(ensure_topics(restarted.bootstrap, "", [HOTLIST_CHANGES])) == []
        finally:
            restarted.stop()
    finally:
        broker.stop()
    assert not KafkaBroker(data_dir, 1, 2).stop(), "nothing left to stop"


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = KafkaBroker(tmp_path, taken.getsockname()[1], free_port(), classpath=ensure_kafka_jars())
        with pytest.raises(KafkaBrokerError, match="already in use"):
            broker.start()
    assert broker.running_pid() is None


def test_kafka_env_points_a_service_subprocess_at_the_test_broker(
    kafka_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str
) -> None:
    script = (
        "from services.common.settings import CommonSettings\n"
        "settings = CommonSettings()\n"
        "print(settings.kafka_bootstrap, settings.topic_prefix)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEWATCH_")} | kafka_env
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [kafka_bootstrap, topic_prefix]
