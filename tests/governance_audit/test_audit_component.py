"""The audit component against real Kafka and embedded ClickHouse: events recorded through
AuditRecorder are chained once, in order, checkpointed and signed, served over AuditService, and
the chain survives restarts and redelivery."""

from __future__ import annotations

import asyncio
import json

import pytest
from clickhouse_connect.driver.client import Client

from services.audit import store
from services.audit.chain import checkpoint_signature_ok
from services.audit.client import AuditEvent, AuditRecorder
from services.audit.main import Chainer
from services.audit.remote import AuditClient
from services.audit.settings import AuditSettings
from services.audit.verify import verify_entries
from services.common.kafka import make_consumer, make_producer
from services.common.pb.platewatch.v1 import audit_pb2
from services.common.topics import AUDIT
from tests.governance_audit.conftest import RunningAudit, start_audit
from tests.waiting import until

pytestmark = pytest.mark.integration


def stored_count(client: Client) -> int:
    return int(client.query("SELECT count() FROM audit_log").result_rows[0][0])


async def record_searches(count: int, start: int = 0) -> list[str]:
    settings = AuditSettings()
    ids = []
    async with AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="test") as recorder:
        for number in range(start, start + count):
            sent = await recorder.record(
                AuditEvent(
                    kind="search",
                    actor=f"officer-{number % 2}",
                    agency_id="agency-a" if number % 3 else "agency-b",
                    action="POST /reads/search",
                    purpose_code="stolen-vehicle",
                    case_number=f"C-{number}",
                    result_count=number,
                    details={"plate": f"ABC{number:03d}", "agency_ids": ["agency-a"]},
                )
            )
            ids.append(sent.event_id)
    return ids


async def test_events_are_chained_checkpointed_and_verifiable(
    clickhouse_client: Client, audit_component: RunningAudit
) -> None:
    event_ids = await record_searches(12)
    await until(lambda: stored_count(clickhouse_client) == 12, "12 chained entries", 30)

    with AuditClient(audit_component.target) as remote:
        entries = await asyncio.to_thread(remote.entries)
        filtered = await asyncio.to_thread(
            remote.entries, audit_pb2.ListAuditEntriesRequest(agency_id="agency-b")
        )
        checkpoints = await asyncio.to_thread(remote.checkpoints)
        status = await asyncio.to_thread(remote.json_call, "VerifyChain", audit_pb2.VerifyChainRequest())

    assert [e.sequence for e in entries] == list(range(1, 13))
    assert [e.event_id for e in entries] == event_ids, "chained in the order they were recorded"
    assert json.loads(entries[4].details_json) == {"agency_ids": ["agency-a"], "plate": "ABC004"}
    assert {e.agency_id for e in filtered} == {"agency-b"} and len(filtered) == 4
    # Every 5 entries a checkpoint, signed with the configured key.
    assert [c.sequence for c in checkpoints][:2] == [5, 10]
    assert all(checkpoint_signature_ok(c, audit_component.public_key) for c in checkpoints)
    result = verify_entries(entries, checkpoints, audit_component.public_key)
    assert result.ok, result.findings
    assert status["ok"] and status["last_sequence"] == 12

    # Shutdown signs the head; a restart continues the chain from ClickHouse.
    await audit_component.shutdown()
    latest = store.get_checkpoint(clickhouse_client)
    assert latest is not None and latest.sequence == 12
    restarted = await start_audit_again(audit_component)
    try:
        await record_searches(3, start=12)
        await until(lambda: stored_count(clickhouse_client) == 15, "15 chained entries", 30)
    finally:
        await restarted.shutdown()
    entries = list(store.iter_entries(clickhouse_client))
    assert [e.sequence for e in entries] == list(range(1, 16))
    assert verify_entries(entries, store.list_checkpoints(clickhouse_client), audit_component.public_key).ok


async def start_audit_again(previous: RunningAudit) -> RunningAudit:
    from os import environ

    return await start_audit(dict(environ))


async def test_redelivered_events_are_chained_once(
    clickhouse_client: Client, audit_component: RunningAudit
) -> None:
    await record_searches(4)
    await until(lambda: stored_count(clickhouse_client) == 4, "4 chained entries", 30)
    await audit_component.shutdown()

    # A consumer that never committed (as after a crash between insert and commit) re-reads all.
    settings = AuditSettings()
    consumer = make_consumer(settings.kafka_bootstrap, "audit-redelivery", AUDIT.name(settings.topic_prefix))
    producer = make_producer(settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        from services.audit.chain import load_or_create_signing_key

        chainer = Chainer(
            settings,
            clickhouse_client,
            consumer,
            producer,
            load_or_create_signing_key(audit_component.key_file),
            asyncio.Event(),
        )
        await chainer.load()
        fetched = await consumer.getmany(timeout_ms=10_000)
        records = [r for batch in fetched.values() for r in batch]
        assert len(records) == 4
        assert await chainer.process(records) == []
    finally:
        await consumer.stop()
        await producer.stop()
    assert stored_count(clickhouse_client) == 4
