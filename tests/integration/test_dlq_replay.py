"""`platewatch dlq list|replay` against a real broker: dead letters on the reads dead-letter topic
(written by services.common.kafka.send_dead_letter, as the services write them) are replayed under
`--reason X --validate`: only decodable ones with that reason land on the reads topic, with the
replay headers; a second run re-sends nothing; a dry run sends nothing; a later run for another
reason still finds its dead letters although they sit before the ones already replayed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from typer.testing import CliRunner

from services.cli import app
from services.common.kafka import DeadLetterError, make_consumer, make_producer, send_dead_letter
from services.common.pb.platewatch.v1 import reads_pb2
from services.common.topics import READS
from services.dlq.replay import replay_group

REASON = "storage_rejected"
OTHER_REASON = "missing_plate"
# Field 15 with wire type 7 does not exist: no protobuf schema parses this.
GARBAGE = b"\x7f\x7f\x7f definitely not a protobuf"


def _read(index: int) -> reads_pb2.Read:
    return reads_pb2.Read(read_id=f"dlq-read-{index}", plate=f"DLQ{index:03d}", confidence=0.9)


def _record(prefix: str, offset: int, key: bytes, value: bytes) -> ConsumerRecord[bytes, bytes]:
    """The record a consumer of the reads topic would have failed on."""
    return ConsumerRecord(
        topic=READS.name(prefix),
        partition=offset % READS.partitions,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


async def _put_dead_letters(bootstrap: str, prefix: str) -> dict[str, Any]:
    """Dead letters in this order (offsets 0..8 of the one-partition dead-letter topic):
    OTHER decodable, REASON decodable x2, REASON garbage, OTHER decodable, REASON garbage,
    REASON decodable, REASON decodable but already replayed three times, REASON decodable."""
    producer = make_producer(bootstrap)
    await producer.start()
    plan: list[tuple[str, bytes, bytes]] = []
    for index, (reason, value) in enumerate(
        [
            (OTHER_REASON, _read(0).SerializeToString()),
            (REASON, _read(1).SerializeToString()),
            (REASON, _read(2).SerializeToString()),
            (REASON, GARBAGE),
            (OTHER_REASON, _read(4).SerializeToString()),
            (REASON, GARBAGE),
            (REASON, _read(6).SerializeToString()),
        ]
    ):
        plan.append((reason, f"key-{index}".encode(), value))
    try:
        for offset, (reason, key, value) in enumerate(plan):
            error = DeadLetterError(reason, "test")
            await send_dead_letter(
                producer, READS, _record(prefix, offset, key, value), error, service="t", prefix=prefix
            )
        assert READS.dead_letter is not None
        looping = _read(7).SerializeToString()
        # What a third failure of an already replayed read looks like (the count travels with it).
        await producer.send_and_wait(
            READS.dead_letter.name(prefix),
            value=looping,
            key=b"key-7",
            headers=[("reason", REASON.encode()), ("failed_at_ms", b"1700000000000"), ("replay_count", b"3")],
        )
        last = _read(8).SerializeToString()
        await send_dead_letter(
            producer,
            READS,
            _record(prefix, 8, b"key-8", last),
            DeadLetterError(REASON),
            service="t",
            prefix=prefix,
        )
    finally:
        await producer.stop()
    return {
        "replayable": {b"key-1": _read(1), b"key-2": _read(2), b"key-6": _read(6), b"key-8": _read(8)},
        "other": {b"key-0": _read(0), b"key-4": _read(4)},
    }


async def _reads_on_topic(bootstrap: str, prefix: str) -> list[Any]:
    """Every record on the reads topic now (all partitions, up to their end offsets)."""
    consumer = make_consumer(bootstrap, None)
    await consumer.start()
    try:
        tps = [TopicPartition(READS.name(prefix), p) for p in range(READS.partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert time.monotonic() < deadline, "reads topic not read to its end within 30 s"
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _cli(bootstrap: str, prefix: str, *args: str) -> str:
    env = {"PLATEWATCH_KAFKA_BOOTSTRAP": bootstrap, "PLATEWATCH_TOPIC_PREFIX": prefix}
    result = CliRunner().invoke(app, ["dlq", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout  # warnings (e.g. refused dead letters) are logged to stderr


def test_replay_by_reason_with_validation_once(kafka_bootstrap: str, topic_prefix: str) -> None:
    expected = asyncio.run(_put_dead_letters(kafka_bootstrap, topic_prefix))
    assert READS.dead_letter is not None
    dlq_name = READS.dead_letter.name(topic_prefix)

    listing = _cli(kafka_bootstrap, topic_prefix, "list", "--topic", "reads", "--limit", "3")
    assert f"{dlq_name}: 9 dead letters, 9 not replayed" in listing
    assert f"       7  {REASON}" in listing and f"       2  {OTHER_REASON}" in listing
    assert listing.count(f"{dlq_name}/0/") == 3

    replay = ["replay", "--topic", "reads", "--reason", REASON, "--validate"]
    dry = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay, "--dry-run"))
    assert dry["dry_run"] is True
    assert dry["replayed_from"] == [f"{dlq_name}/0/{offset}" for offset in (1, 2, 6, 8)]
    assert sorted(dry["refused"]) == [f"{dlq_name}/0/{offset}" for offset in (3, 5, 7)]
    assert asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix)) == []

    first = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay))
    assert first["replayed"] == 4
    assert first["refused"][f"{dlq_name}/0/7"].startswith("refused_loop")
    assert first["refused"][f"{dlq_name}/0/3"].startswith("refused_undecodable")
    assert first["filtered"] == {"filtered_reason": 2}
    records = asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix))
    by_key = {record.key: record for record in records}
    assert len(records) == len(by_key) == 4
    assert set(by_key) == set(expected["replayable"])
    for key, read in expected["replayable"].items():
        record = by_key[key]
        assert record.value == read.SerializeToString()
        headers = dict(record.headers)
        assert headers["replay_count"] == b"1"
        assert headers["dead_letter_reason"] == REASON.encode()
        assert headers["replayed_from"].decode().startswith(f"{dlq_name}/0/")
    assert sorted(dict(r.headers)["replayed_from"].decode() for r in records) == first["replayed_from"]

    second = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay))
    assert second["replayed"] == 0 and second["refused"] == {}
    assert len(asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix))) == 4

    # The other reason's dead letters were left pending (offset 0 sits before everything replayed).
    listing = _cli(kafka_bootstrap, topic_prefix, "list", "--topic", "reads", "--limit", "0")
    assert "9 dead letters, 2 not replayed" in listing
    other = json.loads(
        _cli(
            kafka_bootstrap,
            topic_prefix,
            "replay",
            "--topic",
            "reads",
            "--reason",
            OTHER_REASON,
            "--validate",
        )
    )
    assert other["replayed_from"] == [f"{dlq_name}/0/0", f"{dlq_name}/0/4"]
    records = asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix))
    assert sorted(r.key for r in records) == sorted([*expected["replayable"], *expected["other"]])
    assert "9 dead letters, 0 not replayed" in _cli(kafka_bootstrap, topic_prefix, "list", "--topic", "reads")
    assert replay_group(READS, topic_prefix) == f"{topic_prefix}dlq-replay-{READS.logical}"


def test_max_limits_a_run_and_the_next_run_continues(kafka_bootstrap: str, topic_prefix: str) -> None:
    asyncio.run(_put_dead_letters(kafka_bootstrap, topic_prefix))
    replay = ["replay", "--topic", "reads", "--all-reasons", "--no-validate", "--max", "3"]
    first = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay))
    assert first["replayed"] == 3 and first["stopped_early"]
    second = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay))
    # Offsets 3..8 minus the loop-refused 7: 3 more now, the last two on a third run.
    assert second["replayed"] == 3
    third = json.loads(_cli(kafka_bootstrap, topic_prefix, *replay))
    assert third["replayed"] == 2 and not third["stopped_early"]
    replayed_from = first["replayed_from"] + second["replayed_from"] + third["replayed_from"]
    assert len(set(replayed_from)) == 8
    # --no-validate re-sends garbage as it is: the operator asked for exactly that.
    assert len(asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix))) == 8


def test_loop_guard_holds_when_failures_lose_the_replay_count(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The same read dead-lettered four times, its headers rebuilt from scratch each time (as
    send_dead_letter does): the copies themselves count, so the fourth is refused."""

    async def put() -> None:
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        try:
            value = _read(1).SerializeToString()
            for offset in range(4):
                record = _record(topic_prefix, offset, b"same-key", value)
                await send_dead_letter(
                    producer, READS, record, DeadLetterError(REASON), service="t", prefix=topic_prefix
                )
        finally:
            await producer.stop()

    asyncio.run(put())
    assert READS.dead_letter is not None
    dlq_name = READS.dead_letter.name(topic_prefix)
    report = json.loads(
        _cli(kafka_bootstrap, topic_prefix, "replay", "--topic", "reads", "--all-reasons", "--validate")
    )
    assert report["replayed_from"] == [f"{dlq_name}/0/{offset}" for offset in range(3)]
    assert list(report["refused"]) == [f"{dlq_name}/0/3"]
    counts = sorted(
        dict(r.headers)["replay_count"] for r in asyncio.run(_reads_on_topic(kafka_bootstrap, topic_prefix))
    )
    assert counts == [b"1", b"2", b"3"]
