"""The hotlist service against a real Kafka broker: gRPC management, matching reads into alerts,
rebuilding its state from the change log after a restart."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.topics import READS, READS_EARLY
from services.hotlist.alerts import alert_id
from tests.fixtures.hotlist_service import RunningHotlist

AGENCY = "pd-test"
WAIT_S = 60.0


def make_read(plate: str, region: str = "US-CA") -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id=uuid.uuid4().hex,
        plate=plate,
        region=region,
        confidence=0.93,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id=AGENCY),
        crop_jpeg=b"\xff\xd8\xff\xe0 fake crop",
    )
    read.captured_at.GetCurrentTime()
    return read


async def publish_read(kafka_producer: AIOKafkaProducer, prefix: str, read: reads_pb2.Read) -> None:
    # One partition for every read, so the service sees them in publishing order.
    await kafka_producer.send_and_wait(
        READS.name(prefix), key=read.read_id.encode(), value=read.SerializeToString(), partition=0
    )


async def next_alerts(consumer: AIOKafkaConsumer, until_read_id: str) -> list[alerts_pb2.Alert]:
    """Alerts as they arrive, up to and including the first one for `until_read_id`."""
    received: list[alerts_pb2.Alert] = []
    async with asyncio.timeout(WAIT_S):
        while True:
            record = await consumer.getone()
            alert = alerts_pb2.Alert.FromString(record.value)
            assert record.key == alert.alert_id.encode()
            received.append(alert)
            if alert.read.read_id == until_read_id:
                return received


async def test_read_on_hotlist_raises_alert_and_state_survives_restart(
    hotlist: RunningHotlist,
    kafka_producer: AIOKafkaProducer,
    alerts_reader: AIOKafkaConsumer,
    topic_prefix: str,
) -> None:
    client = await hotlist.start()
    try:
        created = await client.create_hotlist("Stolen vehicles", AGENCY, max_age_seconds=3600)
        assert created.hotlist_id and created.refreshed_at.seconds > 0
        entry = await client.add_entry(
            created.hotlist_id, plate="ABC123", reason="stolen_vehicle", priority=1, region="US-CA"
        )
        # Read-your-writes: the reply comes only after this replica applied the change.
        assert [e.entry_id for e in await client.list_entries(created.hotlist_id)] == [entry.entry_id]
        [listed] = await client.list_hotlists(AGENCY)
        assert listed.entry_count == 1
        assert await client.list_hotlists("other-agency") == []

        read = make_read("ABC123")
        await publish_read(kafka_producer, topic_prefix, read)
        [alert] = await next_alerts(alerts_reader, read.read_id)
        assert alert.alert_id == alert_id(read.read_id, entry.entry_id)
        assert alert.read == read
        assert alert.entry.entry_id == entry.entry_id
        assert alert.hotlist_name == "Stolen vehicles"
        assert alert.match_kind == alerts_pb2.MATCH_KIND_EXACT
        assert alert.status == alerts_pb2.ALERT_STATUS_UNCONFIRMED
        assert not alert.stale and not alert.region_mismatch
        assert alert.raised_at.seconds > 0
    finally:
        await client.close()

    await hotlist.stop()
    client = await hotlist.start()
    try:
        # The fresh replica rebuilt lists and entries from the change log alone.
        [rebuilt] = await client.list_hotlists(AGENCY)
        assert rebuilt.hotlist_id == created.hotlist_id
        assert rebuilt.entry_count == 1
        [rebuilt_entry] = await client.list_entries(created.hotlist_id)
        assert rebuilt_entry.plate == "ABC123"

        # It matches too: one look-alike (8 for B) on a fuzzy list, read from another region.
        confusable = make_read("A8C123", region="US-NV")
        await publish_read(kafka_producer, topic_prefix, confusable)
        # The first read was committed before the restart, so nothing comes before this alert.
        [alert] = await next_alerts(alerts_reader, confusable.read_id)
        assert alert.match_kind == alerts_pb2.MATCH_KIND_CONFUSABLE
        assert alert.region_mismatch

        assert await client.remove_entry(created.hotlist_id, entry.entry_id)
        assert not await client.remove_entry(created.hotlist_id, entry.entry_id)
        assert await client.list_entries(created.hotlist_id) == []
    finally:
        await client.close()

    # The removal (typed deletion plus null tombstone) survives a restart as well.
    await hotlist.stop()
    client = await hotlist.start()
    try:
        assert await client.list_entries(created.hotlist_id) == []
        [after_removal] = await client.list_hotlists(AGENCY)
        assert after_removal.entry_count == 0
    finally:
        await client.close()


async def test_invalid_entries_are_rejected(hotlist: RunningHotlist) -> None:
    client = await hotlist.start()
    try:
        created = await client.create_hotlist("Wanted", AGENCY)
        with pytest.raises(grpc.aio.AioRpcError) as rejected:
            await client.add_entries(
                created.hotlist_id,
                [
                    client_entry("ABC123", priority=1),
                    client_entry("ab-12", priority=1),
                ],
            )
        assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "entries[1]" in (rejected.value.details() or "")
        # All or nothing: the valid first entry was not added either.
        assert await client.list_entries(created.hotlist_id) == []

        for bad in (client_entry("**", priority=1), client_entry("ABC123", priority=0)):
            with pytest.raises(grpc.aio.AioRpcError) as rejected:
                await client.add_entries(created.hotlist_id, [bad])
            assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "entries[0]" in (rejected.value.details() or "")

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await client.add_entries("no-such-list", [client_entry("ABC123", priority=1)])
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await client.close()


async def test_undecodable_read_goes_to_dead_letter_topic(
    hotlist: RunningHotlist, kafka_producer: AIOKafkaProducer, kafka_bootstrap: str, topic_prefix: str
) -> None:
    client = await hotlist.start()
    await client.close()
    assert READS.dead_letter is not None
    await kafka_producer.send_and_wait(READS.name(topic_prefix), key=b"bad", value=b"\xff\xff not protobuf")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    consumer.assign([TopicPartition(READS.dead_letter.name(topic_prefix), 0)])
    try:
        async with asyncio.timeout(WAIT_S):
            record = await consumer.getone()
        assert record.value == b"\xff\xff not protobuf"
        assert dict(record.headers)["reason"] == b"undecodable"
    finally:
        await consumer.stop()


async def test_cli_creates_and_lists(hotlist: RunningHotlist) -> None:
    client = await hotlist.start()
    await client.close()
    env = {**os.environ, "PLATEWATCH_HOTLIST_GRPC_TARGET": hotlist.target}

    async def platewatch(*args: str) -> list[dict[str, object]]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "hotlist",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
        assert process.returncode == 0, stderr.decode()
        return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]

    [created] = await platewatch("create", "--name", "CLI list", "--agency", AGENCY, "--max-age-s", "60")
    hotlist_id = str(created["hotlist_id"])
    assert created["max_age_seconds"] == "60"
    [added] = await platewatch("add", "--list", hotlist_id, "--plate", "xyz-987", "--priority", "2")
    assert added["plate"] == "XYZ987"
    assert added["reason"] == "REASON_CODE_STOLEN_VEHICLE"
    [listed] = await platewatch("entries", "--list", hotlist_id)
    assert listed["entry_id"] == added["entry_id"]


def client_entry(plate: str, priority: int) -> hotlist_pb2.HotlistEntry:
    return hotlist_pb2.HotlistEntry(plate=plate, priority=priority)


async def test_early_read_alerts_before_the_final_read_and_a_misread_is_superseded(
    hotlist: RunningHotlist,
    kafka_producer: AIOKafkaProducer,
    alerts_reader: AIOKafkaConsumer,
    topic_prefix: str,
) -> None:
    client = await hotlist.start()
    try:
        created = await client.create_hotlist("Stolen vehicles", AGENCY)
        first = await client.add_entry(
            created.hotlist_id, plate="ABC123", reason="stolen_vehicle", priority=1
        )
        second = await client.add_entry(
            created.hotlist_id, plate="XYZ789", reason="stolen_vehicle", priority=1
        )

        # A pass whose early read hits and whose final read agrees: one alert, two versions.
        early = make_read("ABC123")
        early.provisional = True
        await kafka_producer.send_and_wait(
            READS_EARLY.name(topic_prefix), key=early.read_id.encode(), value=early.SerializeToString()
        )
        [raised] = await next_alerts(alerts_reader, early.read_id)
        assert raised.provisional and not raised.superseded
        assert raised.alert_id == alert_id(early.read_id, first.entry_id)
        final = reads_pb2.Read()
        final.CopyFrom(early)
        final.provisional, final.provisional_plate, final.frames = False, "ABC123", 4
        await publish_read(kafka_producer, topic_prefix, final)
        [refined] = await next_alerts(alerts_reader, final.read_id)
        assert refined.alert_id == raised.alert_id and refined.raised_at == raised.raised_at
        assert not refined.provisional and not refined.superseded and refined.read.frames == 4

        # A pass whose early frames read a listed plate but whose consensus is another listed plate:
        # the first alert is superseded, the second one raised.
        misread = make_read("ABC123")
        misread.provisional = True
        await kafka_producer.send_and_wait(
            READS_EARLY.name(topic_prefix), key=misread.read_id.encode(), value=misread.SerializeToString()
        )
        [early_alert] = await next_alerts(alerts_reader, misread.read_id)
        corrected = make_read("XYZ789")
        corrected.read_id, corrected.provisional_plate = misread.read_id, "ABC123"
        corrected.provisional_region = misread.region
        await publish_read(kafka_producer, topic_prefix, corrected)
        alerts = await next_alerts(alerts_reader, corrected.read_id)
        while len(alerts) < 2:
            alerts += await next_alerts(alerts_reader, corrected.read_id)
        by_entry = {alert.entry.entry_id: alert for alert in alerts}
        assert by_entry[first.entry_id].alert_id == early_alert.alert_id
        assert by_entry[first.entry_id].superseded and by_entry[first.entry_id].read.plate == "XYZ789"
        assert by_entry[second.entry_id].alert_id == alert_id(misread.read_id, second.entry_id)
        assert not by_entry[second.entry_id].superseded and not by_entry[second.entry_id].provisional
    finally:
        await client.close()
