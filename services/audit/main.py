"""The audit component: chains audit events from Kafka into ClickHouse and signs checkpoints.

Ordering: the AUDIT topic has ONE partition and this component is its only consumer (group
"audit"), so the chain is one global sequence in the order the broker accepted the events. (A
chain per agency would need one head per agency and per-agency checkpoints; a single chain is
simpler to verify and to hand over, and the audit rate is far below one partition's capacity.)

Loop: fetch events, chain each onto the head (sequence + 1, prev_hash = head hash), insert the
batch into `audit_log`, and only then commit the offsets. Crash safety:
* the head (sequence, hash) is read back from ClickHouse at start, so the chain continues exactly
  where the stored log ends;
* events already chained (a crash after insert, before commit, redelivers them) are recognised by
  event_id and skipped, so each event is chained once;
* a failed insert is retried with the same entries and the same insert_deduplication_token, so an
  insert that succeeded but reported an error is not stored twice.

Checkpoints (Ed25519 over the head) are written every `audit_checkpoint_every` entries, every
`audit_checkpoint_seconds` when new entries arrived, and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from clickhouse_connect.driver.client import Client
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from services.audit import store
from services.audit.chain import Entry, chain_entry, load_or_create_signing_key, sign_checkpoint, to_micros
from services.audit.grpc_service import AuditServicer
from services.audit.settings import AuditSettings
from services.audit.verify import verify_stored
from services.common.health import HealthState
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import (
    AUDIT_CHAIN_LAST_VERIFIED,
    AUDIT_CHAIN_VERIFIED,
    AUDIT_ENTRIES,
    MESSAGES_CONSUMED,
)
from services.common.pb.platewatch.v1 import audit_pb2, audit_pb2_grpc
from services.common.topics import AUDIT
from services.storage.client import open_storage

log = logging.getLogger(__name__)

SERVICE = "audit"
CONSUMER_GROUP = "audit"
GRPC_SERVICE_NAME = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
# How far back (in sequence numbers) already-chained event_ids are loaded at start; a redelivery
# after a crash repeats at most the uncommitted batches, far fewer than this.
DEDUP_WINDOW = 100_000

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def event_fields(event: audit_pb2.AuditEvent) -> dict[str, object]:
    """The hashed event fields of a wire event (occurred_at to microseconds)."""
    occurred = event.occurred_at.seconds * 1_000_000 + event.occurred_at.nanos // 1000
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "actor": event.actor,
        "agency_id": event.agency_id,
        "action": event.action,
        "outcome": event.outcome,
        "purpose_code": event.purpose_code,
        "case_number": event.case_number,
        "result_count": int(event.result_count),
        "details_json": event.details_json or "{}",
        "occurred_at_us": occurred,
        "source": event.source,
    }


class Chainer:
    """Owns the head of the chain. Call `load()` once, then `run()` until stop."""

    def __init__(
        self,
        settings: AuditSettings,
        client: Client,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        key: Ed25519PrivateKey,
        stop: asyncio.Event,
        clock: Clock = _utc_now,
    ) -> None:
        self.settings = settings
        self.client = client
        self.consumer = consumer
        self.producer = producer
        self.key = key
        self.stop = stop
        self.clock = clock
        self.head = store.Head(0, "")
        self.checkpointed = 0
        self.last_checkpoint_at = time.monotonic()
        # event_ids of the last DEDUP_WINDOW entries (set for lookup, deque to forget the oldest).
        self.seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self.clickhouse_ok = True

    async def load(self) -> None:
        self.head = await asyncio.to_thread(store.read_head, self.client)
        recent = await asyncio.to_thread(
            store.recent_event_ids, self.client, max(0, self.head.sequence - DEDUP_WINDOW)
        )
        for event_id in recent:
            self._remember(event_id)
        latest = await asyncio.to_thread(store.get_checkpoint, self.client, 0)
        self.checkpointed = latest.sequence if latest else 0
        log.info(
            "audit chain head loaded",
            extra={"sequence": self.head.sequence, "checkpointed": self.checkpointed},
        )

    async def run(self) -> None:
        try:
            while not self.stop.is_set():
                fetched = await self.consumer.getmany(
                    timeout_ms=500, max_records=self.settings.audit_batch_max
                )
                records = [r for records in fetched.values() for r in records]
                entries = await self.process(records) if records else []
                await self.maybe_checkpoint(entries)
        finally:
            if self.head.sequence > self.checkpointed:
                await self.checkpoint()

    def _remember(self, event_id: str) -> None:
        self.seen.add(event_id)
        self._seen_order.append(event_id)
        while len(self._seen_order) > DEDUP_WINDOW:
            self.seen.discard(self._seen_order.popleft())

    async def process(self, records: list[ConsumerRecord]) -> list[Entry]:
        """Chain, store and commit one fetched batch (single partition: records are in order)."""
        entries: list[Entry] = []
        sequence, prev_hash = self.head.sequence, self.head.entry_hash
        now_us = to_micros(self.clock())
        for record in records:
            MESSAGES_CONSUMED.labels(SERVICE, AUDIT.logical).inc()
            try:
                event = decode(AUDIT, record.value)
                assert isinstance(event, audit_pb2.AuditEvent)
                if not event.event_id or not event.kind:
                    raise DeadLetterError("invalid_event", "event_id and kind are required")
            except DeadLetterError as error:
                await send_dead_letter(
                    self.producer, AUDIT, record, error, service=SERVICE, prefix=self.settings.topic_prefix
                )
                continue
            if event.event_id in self.seen:
                continue
            sequence += 1
            entry = chain_entry(sequence, prev_hash, now_us, event_fields(event))
            entries.append(entry)
            self._remember(event.event_id)
            prev_hash = entry.entry_hash
        if entries:
            await self._insert(entries)
            self.head = store.Head(entries[-1].sequence, entries[-1].entry_hash)
            for entry in entries:
                AUDIT_ENTRIES.labels(entry.kind).inc()
        last = records[-1]
        await self.consumer.commit({TopicPartition(last.topic, last.partition): last.offset + 1})
        return entries

    async def _insert(self, entries: list[Entry]) -> None:
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(store.insert_entries, self.client, entries)
                self.clickhouse_ok = True
                return
            except Exception as exc:
                self.clickhouse_ok = False
                log.warning(
                    "audit insert failed; retrying", extra={"error": str(exc)[:500], "retry_in": delay}
                )
                if self.stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def maybe_checkpoint(self, entries: list[Entry] | None = None) -> None:
        """Sign every entry whose sequence is a multiple of `audit_checkpoint_every` (so checkpoints
        fall on the same sequences however batches are cut), and the head when the last checkpoint
        is older than `audit_checkpoint_seconds`."""
        every = max(1, self.settings.audit_checkpoint_every)
        for entry in entries or ():
            if entry.sequence % every == 0 and entry.sequence > self.checkpointed:
                await self.checkpoint(store.Head(entry.sequence, entry.entry_hash))
        if self.head.sequence <= self.checkpointed:
            return
        if time.monotonic() - self.last_checkpoint_at >= self.settings.audit_checkpoint_seconds:
            await self.checkpoint()

    async def checkpoint(self, at: store.Head | None = None) -> None:
        """Sign and store a checkpoint over `at` (default: the head)."""
        target = at or self.head
        checkpoint = sign_checkpoint(self.key, target.sequence, target.entry_hash, to_micros(self.clock()))
        await asyncio.to_thread(store.insert_checkpoint, self.client, checkpoint)
        self.checkpointed = checkpoint.sequence
        self.last_checkpoint_at = time.monotonic()
        log.info(
            "audit checkpoint signed",
            extra={"sequence": checkpoint.sequence, "key_id": checkpoint.key_id},
        )


async def verify_periodically(client: Client, every_seconds: float, stop: asyncio.Event) -> None:
    """Verify the stored chain now, then every `every_seconds` until `stop` (at least once); publish
    the outcome on the AUDIT_CHAIN_VERIFIED / AUDIT_CHAIN_LAST_VERIFIED gauges so a break pages someone."""
    while True:
        try:
            result = await asyncio.to_thread(verify_stored, client)
        except Exception:  # a failed run is not a broken chain; the staleness alert covers it
            log.exception("audit chain verification could not run")
        else:
            AUDIT_CHAIN_VERIFIED.set(1 if result.ok else 0)
            AUDIT_CHAIN_LAST_VERIFIED.set(time.time())
            log.log(
                logging.INFO if result.ok else logging.ERROR,
                "audit chain verified" if result.ok else "audit chain verification found problems",
                extra={"entries": result.entries, "findings": len(result.findings)},
            )
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)
        if stop.is_set():
            return


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Chain audit events and serve AuditService on `audit_grpc_port` until `stop`."""
    settings = AuditSettings()
    health.set_ready(SERVICE, False)
    key = load_or_create_signing_key(settings.signing_key_path())
    servicer = AuditServicer(settings)
    server = grpc.aio.server()
    audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", GRPC_SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(f"{settings.audit_grpc_host}:{settings.audit_grpc_port}")
    await server.start()
    log.info("audit gRPC listening", extra={"port": port})
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None
    verifier: asyncio.Task[None] | None = None
    try:
        client = await open_storage(settings, stop, SERVICE)
        if client is None:
            return
        consumer = make_consumer(settings.kafka_bootstrap, CONSUMER_GROUP, AUDIT.name(settings.topic_prefix))
        producer = make_producer(settings.kafka_bootstrap)
        await consumer.start()
        await producer.start()
        await servicer.attach(client)
        chainer = Chainer(settings, client, consumer, producer, key, stop)
        await chainer.load()
        for name in ("", GRPC_SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        health.set_ready(SERVICE, True)
        if settings.audit_verify_seconds > 0:
            verifier = asyncio.create_task(verify_periodically(client, settings.audit_verify_seconds, stop))
        await chainer.run()
        if verifier is not None:
            await verifier
    finally:
        if verifier is not None and not verifier.done():
            verifier.cancel()
        health.set_ready(SERVICE, False)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=5)
        await servicer.close()
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()
        log.info("audit stopped")
