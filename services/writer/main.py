"""The writer: reads and alerts from Kafka into ClickHouse, each stored once.

Loop: fetch messages, turn each into rows (bad ones go to the dead-letter topic, the batch goes
on), and when the batch holds `batch_max_rows` messages or `batch_max_bytes` of message values, or
its first message is `batch_max_seconds` old, insert it and only then commit the offsets. One batch
is one insert per table whatever the number of partitions it spans: ClickHouse pays a large fixed
cost per insert (a part per table and materialized view, then merges), measured at 0.57 ms of CPU
per read in blocks of 125 rows against 0.07-0.15 ms in blocks of 1,000-5,000 (loadtest.writer_cpu).
A crash between insert and commit re-delivers the batch; two layers keep that from duplicating rows:

(a) every insert carries `insert_deduplication_token` = the topic/partition/first-last offsets of its
    rows, so re-inserting the exact same rows is dropped by ClickHouse itself;
(b) a restarted writer may cut batches differently (different tokens), so before inserting, reads
    whose read_id is already stored are dropped. The reads topic is keyed by read_id and this
    group has one owner per partition, so no other writer can be inserting the same read_id.

read_images rows are inserted before reads rows, so "read stored" implies "images stored" and
layer (b) never skips images that are missing.

ClickHouse failures are retried with capped exponential backoff while the assigned partitions
are paused (nothing more is fetched, so memory stays bounded) and nothing is committed.

Pseudonymization (issue 6, policy `pseudonymization.enabled` or an agency's `pseudonymize` rule,
`PseudonymizingTokenizer`): every read of a pseudonymizing agency is stored with its plate only as
`pt1:<period>:<HMAC-SHA256>` under the agency's key for the capture period, and without the
recognizer's candidate texts; so are the tables fed from `reads` by materialized views
(reads_by_camera, plates, read_counts_hourly has no plate). The writer does not try to tell hits
from non-hits: when a read is written its alert may not exist yet (the hotlist raises it
concurrently, on another topic, and may match it through a confusable or partial entry that no
mirror of the lists would reproduce). A hit keeps its plate in clear through its alert instead
(`alerts.plate`, the alert protobuf), which the search service uses to find hit reads whose key was
shredded. A read whose period key was already destroyed (a late or replayed read past the non-hit
retention) is not stored. Plates of pseudonymized reads are never logged."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from clickhouse_connect.driver.client import Client

from services.common.health import HealthState
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import MESSAGES_CONSUMED, STAGE_LATENCY, observe_consumer_lag
from services.common.pb.platewatch.v1 import alerts_pb2, hotlist_pb2, reads_pb2
from services.common.service import collect_garbage_less_often
from services.common.topics import ALERTS, HOTLIST_CHANGES, READS, Topic
from services.governance.policy import Policy
from services.governance.pseudonymize import KeyDestroyed, Pseudonymizer
from services.retention.policy_source import configured_key_store, load_configured_policy, pseudonymizes
from services.storage.client import open_storage
from services.writer.metrics import (
    BATCH_MESSAGES,
    DUPLICATES_SKIPPED,
    INSERT_FAILURES,
    INSERT_SECONDS,
    READS_PSEUDONYMIZED,
    READS_SHREDDED,
    ROWS_INSERTED,
)
from services.writer.rows import (
    ALERTS_COLUMNS,
    HOTLIST_ENTRIES_COLUMNS,
    READ_IMAGES_COLUMNS,
    READS_COLUMNS,
    PlateTokenizer,
    ReadRows,
    alert_row,
    hotlist_entry_row,
    read_rows,
)
from services.writer.settings import WriterSettings

log = logging.getLogger(__name__)

SERVICE = "writer"
CONSUMER_GROUP = "writer"
CRASH_EXIT_CODE = 137
_RETRY_INITIAL_SECONDS = 0.2

T = TypeVar("T")


class StorageUnavailable(Exception):
    """ClickHouse kept failing and the service was asked to stop; the batch stays uncommitted."""


@dataclass
class Batch:
    """Messages fetched but not yet committed: their rows and the highest offset per partition."""

    reads: dict[TopicPartition, list[tuple[int, ReadRows]]] = field(default_factory=lambda: defaultdict(list))
    alerts: dict[TopicPartition, list[tuple[int, list[Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    hotlist_entries: dict[TopicPartition, list[tuple[int, list[Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    last_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    messages: int = 0
    value_bytes: int = 0
    started: float | None = None

    def note(self, tp: TopicPartition, offset: int, size: int = 0) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.messages += 1
        self.value_bytes += size
        self.last_offsets[tp] = max(offset, self.last_offsets.get(tp, -1))

    @property
    def empty(self) -> bool:
        return self.messages == 0

    def due(self, max_messages: int, max_bytes: int, max_seconds: float, now: float) -> bool:
        """Whether to store the batch now (`now` on the time.monotonic clock): it holds `max_messages`
        messages or `max_bytes` of message values, or its first message came `max_seconds` ago."""
        if self.started is None:
            return False
        return (
            self.messages >= max_messages
            or self.value_bytes >= max_bytes
            or now - self.started >= max_seconds
        )


class PseudonymizingTokenizer:
    """The writer's PlateTokenizer: the token of the plate for agencies the policy pseudonymizes,
    the plate itself otherwise. KeyDestroyed passes through (the read must not be stored)."""

    def __init__(self, policy: Policy, pseudonymizer: Pseudonymizer) -> None:
        self.policy = policy
        self.pseudonymizer = pseudonymizer
        # Per agency, decided once: the policy does not change while the writer runs, and resolving
        # an agency's rules on every read would put that work on the insert path.
        self._pseudonymizes: dict[str, bool] = {}

    def __call__(self, agency_id: str, plate: str, captured_at: datetime) -> str:
        decided = self._pseudonymizes.get(agency_id)
        if decided is None:
            decided = self._pseudonymizes[agency_id] = pseudonymizes(self.policy, agency_id)
        if not decided:
            return plate
        token = self.pseudonymizer.tokenize(agency_id, plate, captured_at)
        READS_PSEUDONYMIZED.inc()
        return token


def insert_token(ranges: dict[TopicPartition, tuple[int, int]]) -> str:
    """The deduplication token of an insert holding, for each partition, the rows of its offsets
    first..last (`ranges`: partition -> (first, last)). The same ranges give the same token whatever
    the order in which the partitions were fetched."""
    return ",".join(
        f"{tp.topic}/{tp.partition}/{first}-{last}"
        for tp, (first, last) in sorted(ranges.items(), key=lambda item: (item[0].topic, item[0].partition))
    )


def _offset_ranges(
    items: dict[TopicPartition, list[tuple[int, Any]]],
) -> dict[TopicPartition, tuple[int, int]]:
    """partition -> (first, last) offset of the rows held for it (partitions with none left out)."""
    return {tp: (rows[0][0], rows[-1][0]) for tp, rows in items.items() if rows}


def stored_read_ids(client: Client, ids: list[str], lowest: datetime, highest: datetime) -> set[str]:
    """Which of `ids` are stored already, among reads captured between `lowest` and `highest`."""
    # The captured_at bounds prune monthly partitions; the bloom filter skips granules.
    result = client.query(
        "SELECT DISTINCT read_id FROM reads "
        "WHERE captured_at >= fromUnixTimestamp64Milli({lowest:Int64}, 'UTC') "
        "AND captured_at <= fromUnixTimestamp64Milli({highest:Int64}, 'UTC') "
        "AND read_id IN {ids:Array(String)}",
        parameters={
            "lowest": int(lowest.timestamp() * 1000),
            "highest": int(highest.timestamp() * 1000) + 1,
            "ids": ids,
        },
    )
    return {str(row[0]) for row in result.result_rows}


def insert_settings(token: str) -> dict[str, Any]:
    """ClickHouse settings of an insert deduplicated by `token`."""
    # The token also deduplicates what the materialized views on `reads` derive from a retried
    # block (migration 0005), not only the block itself.
    return {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}


class Writer:
    def __init__(
        self,
        settings: WriterSettings,
        client: Client,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        stop: asyncio.Event,
        tokenize: PlateTokenizer | None = None,
    ) -> None:
        self.settings = settings
        # None: plates stored as read. See the module docstring.
        self.tokenize = tokenize
        self.client = client
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.batch = Batch()
        self.clickhouse_ok = True
        # Held while a batch is being filled or flushed, so a rebalance flushes a consistent batch.
        self.lock = asyncio.Lock()
        self._reads_topic = READS.name(settings.topic_prefix)
        self._alerts_topic = ALERTS.name(settings.topic_prefix)
        self._hotlist_topic = HOTLIST_CHANGES.name(settings.topic_prefix)
        # hotlist_id -> name, learnt from list records, for the entries' mirror rows.
        self._hotlist_names: dict[str, str] = {}

    def ready(self) -> bool:
        return self.clickhouse_ok and bool(self.consumer.assignment())

    async def run(self) -> None:
        """Consume and store until `stop`, then flush and commit what is left."""
        try:
            while not self.stop.is_set():
                fetched = await self.consumer.getmany(
                    timeout_ms=self._fetch_timeout_ms(),
                    max_records=max(1, self.settings.batch_max_rows - self.batch.messages),
                )
                await observe_consumer_lag(self.consumer, SERVICE, self.settings.topic_prefix)
                async with self.lock:
                    for tp, records in fetched.items():
                        for record in records:
                            await self._add(tp, record)
                    if self._batch_due():
                        await self.flush()
            async with self.lock:
                await self.flush()
        except StorageUnavailable:
            log.error("stopping with an unstored batch; it will be re-read on restart")

    def _fetch_timeout_ms(self) -> int:
        if self.batch.started is None:
            return 500
        remaining = self.batch.started + self.settings.batch_max_seconds - time.monotonic()
        return max(0, min(500, int(remaining * 1000)))

    def _batch_due(self) -> bool:
        return self.batch.due(
            self.settings.batch_max_rows,
            self.settings.batch_max_bytes,
            self.settings.batch_max_seconds,
            time.monotonic(),
        )

    async def _add(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        """Put one message's rows in the batch, or send it to its dead-letter topic."""
        if record.topic == self._hotlist_topic:
            self._add_hotlist_change(tp, record)
            return
        topic: Topic = READS if record.topic == self._reads_topic else ALERTS
        MESSAGES_CONSUMED.labels(SERVICE, topic.logical).inc()
        now = datetime.now(UTC)
        try:
            if topic is READS:
                read = decode(READS, record.value)
                assert isinstance(read, reads_pb2.Read)
                try:
                    rows = read_rows(read, now, self.tokenize)
                except KeyDestroyed:
                    READS_SHREDDED.inc()
                    log.warning(
                        "read not stored: its period's pseudonym key was destroyed",
                        extra={"read_id": read.read_id, "agency_id": read.camera.agency_id},
                    )
                else:
                    self.batch.reads[tp].append((record.offset, rows))
            else:
                alert = decode(ALERTS, record.value)
                assert isinstance(alert, alerts_pb2.Alert)
                self.batch.alerts[tp].append((record.offset, alert_row(alert, now, record.timestamp)))
        except DeadLetterError as error:
            await send_dead_letter(
                self.producer, topic, record, error, service=SERVICE, prefix=self.settings.topic_prefix
            )
        self.batch.note(tp, record.offset, len(record.value or b""))

    def _add_hotlist_change(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        """Mirror one hotlist change into hotlist_entries. The compacted topic stays the source of
        truth (it has no dead-letter topic), so a record that cannot be mirrored is logged and
        skipped; compaction tombstones carry nothing to mirror."""
        MESSAGES_CONSUMED.labels(SERVICE, HOTLIST_CHANGES.logical).inc()
        if record.value is not None:
            try:
                change = decode(HOTLIST_CHANGES, record.value)
                assert isinstance(change, hotlist_pb2.HotlistChange)
                row = hotlist_entry_row(change, self._hotlist_names)
            except DeadLetterError as error:
                log.warning(
                    "hotlist change not mirrored",
                    extra={"offset": record.offset, "reason": error.reason, "detail": error.detail},
                )
                row = None
            if row is not None:
                self.batch.hotlist_entries[tp].append((record.offset, row))
        self.batch.note(tp, record.offset, len(record.value or b""))

    async def flush(self) -> None:
        """Insert the batch, then commit its offsets. Call with `self.lock` held."""
        batch = self.batch
        if batch.empty:
            return
        started = time.monotonic()
        inserted = {
            "reads": await self._store_reads(batch.reads),
            "alerts": await self._store_rows("alerts", batch.alerts, ALERTS_COLUMNS),
        }
        await self._store_rows("hotlist_entries", batch.hotlist_entries, HOTLIST_ENTRIES_COLUMNS)
        if self.settings.test_crash_after_insert and (inserted["reads"] or inserted["alerts"]):
            log.warning("test hook: exiting after insert, before commit", extra={"rows": inserted})
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)
        offsets = {tp: offset + 1 for tp, offset in batch.last_offsets.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us; the rows are stored, the new owner re-reads and
            # deduplicates them.
            log.warning("offset commit failed after insert", extra={"error": str(exc)})
        BATCH_MESSAGES.observe(batch.messages)
        log.info(
            "batch stored",
            extra={
                "messages": batch.messages,
                "reads": inserted["reads"],
                "alerts": inserted["alerts"],
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        self.batch = Batch()

    async def _store_reads(self, by_partition: dict[TopicPartition, list[tuple[int, ReadRows]]]) -> int:
        """Insert the batch's reads (all partitions in one insert per table); the number inserted."""
        if self.settings.deduplicate:
            by_partition = await self._drop_stored(by_partition)
        items = [item for partition_items in by_partition.values() for item in partition_items]
        if not items:
            return 0
        token = self._token(_offset_ranges(by_partition))
        await self._insert("read_images", [rows.image_row for _, rows in items], READ_IMAGES_COLUMNS, token)
        await self._insert("reads", [rows.read_row for _, rows in items], READS_COLUMNS, token)
        # Capture -> stored, for the pipeline dashboard (from the pass's capture time).
        now = time.time()
        stored = STAGE_LATENCY.labels("stored")
        for _, rows in items:
            stored.observe(max(0.0, now - rows.captured_at.timestamp()))
        return len(items)

    async def _store_rows(
        self,
        table: str,
        by_partition: dict[TopicPartition, list[tuple[int, list[Any]]]],
        columns: tuple[str, ...],
    ) -> int:
        """Insert the batch's rows of `table` (all partitions in one insert); the number inserted."""
        rows = [row for partition_items in by_partition.values() for _, row in partition_items]
        if rows:
            await self._insert(table, rows, columns, self._token(_offset_ranges(by_partition)))
        return len(rows)

    def _token(self, ranges: dict[TopicPartition, tuple[int, int]]) -> str:
        if self.settings.deduplicate:
            return insert_token(ranges)
        # Not "no token": with a deduplication window ClickHouse would still drop a block whose
        # content hash it has seen; a unique token turns deduplication off for this insert.
        return uuid.uuid4().hex

    async def _drop_stored(
        self, by_partition: dict[TopicPartition, list[tuple[int, ReadRows]]]
    ) -> dict[TopicPartition, list[tuple[int, ReadRows]]]:
        """The items, per partition, whose read_id is neither stored already nor earlier in the
        batch (one query for the whole batch)."""
        items = [rows for partition_items in by_partition.values() for _, rows in partition_items]
        if not items:
            return {}
        ids = sorted({rows.read_id for rows in items})
        lowest = min(rows.captured_at for rows in items)
        highest = max(rows.captured_at for rows in items)
        stored = await self._with_retry("dedup_check", lambda: self._stored_read_ids(ids, lowest, highest))
        kept: dict[TopicPartition, list[tuple[int, ReadRows]]] = {}
        seen = set(stored)
        for tp, partition_items in by_partition.items():
            for offset, rows in partition_items:
                if rows.read_id in seen:
                    continue
                seen.add(rows.read_id)
                kept.setdefault(tp, []).append((offset, rows))
        skipped = len(items) - sum(len(partition_items) for partition_items in kept.values())
        if skipped:
            DUPLICATES_SKIPPED.labels("reads").inc(skipped)
            log.info("skipped reads already stored", extra={"skipped": skipped})
        return kept

    def _stored_read_ids(self, ids: list[str], lowest: datetime, highest: datetime) -> set[str]:
        return stored_read_ids(self.client, ids, lowest, highest)

    async def _insert(self, table: str, rows: list[list[Any]], columns: tuple[str, ...], token: str) -> None:
        def insert() -> None:
            with INSERT_SECONDS.labels(table).time():
                self.client.insert(table, rows, column_names=list(columns), settings=insert_settings(token))

        await self._with_retry(f"insert_{table}", insert)
        ROWS_INSERTED.labels(table).inc(len(rows))

    async def _with_retry(self, operation: str, call: Callable[[], T]) -> T:
        """Run a blocking ClickHouse call off the event loop until it succeeds. While it fails,
        fetching is paused; once `stop` is set a failure ends the attempt with StorageUnavailable."""
        delay = _RETRY_INITIAL_SECONDS
        paused: set[TopicPartition] = set()
        try:
            while True:
                try:
                    result = await asyncio.to_thread(call)
                    self.clickhouse_ok = True
                    return result
                except Exception as exc:
                    INSERT_FAILURES.labels(operation).inc()
                    self.clickhouse_ok = False
                    if self.stop.is_set():
                        raise StorageUnavailable(operation) from exc
                    if not paused:
                        paused = set(self.consumer.assignment())
                        self.consumer.pause(*paused)
                    log.warning(
                        "ClickHouse call failed; retrying",
                        extra={"operation": operation, "error": str(exc)[:500], "retry_in": delay},
                    )
                    try:
                        await asyncio.wait_for(self.stop.wait(), timeout=delay)
                    except TimeoutError:
                        pass
                    delay = min(delay * 2, self.settings.retry_max_seconds)
        finally:
            if paused:
                self.consumer.resume(*(paused & set(self.consumer.assignment())))


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Store and commit the batch before partitions move to another writer."""

    def __init__(self) -> None:
        self.writer: Writer | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self.writer is None or not revoked:
            return
        async with self.writer.lock:
            try:
                await self.writer.flush()
            except StorageUnavailable:
                # Uncommitted: the next owner re-reads the batch.
                self.writer.batch = Batch()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned", extra={"partitions": [f"{tp.topic}/{tp.partition}" for tp in assigned]}
        )


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Run the writer until `stop`; then store and commit the current batch and close."""
    settings = WriterSettings()
    health.set_ready(SERVICE, False)
    # Loaded (and validated) at start like the API's: a bad policy stops the component.
    policy = load_configured_policy(settings)
    tokenize: PlateTokenizer | None = None
    if policy.pseudonymizes_any():
        tokenize = PseudonymizingTokenizer(policy, Pseudonymizer(configured_key_store(settings, policy)))
    client = await open_storage(settings, stop, "writer", settings.retry_max_seconds)
    if client is None:
        return
    producer = make_producer(settings.kafka_bootstrap)
    # The group is prefixed like the topics, so stacks sharing a broker never rebalance each other.
    consumer = make_consumer(settings.kafka_bootstrap, settings.topic_prefix + CONSUMER_GROUP)
    listener = _FlushOnRevoke()
    consumer.subscribe(
        [
            READS.name(settings.topic_prefix),
            ALERTS.name(settings.topic_prefix),
            HOTLIST_CHANGES.name(settings.topic_prefix),
        ],
        listener=listener,
    )
    await producer.start()
    try:
        await consumer.start()
        writer = Writer(settings, client, consumer, producer, stop, tokenize)
        listener.writer = writer
        collect_garbage_less_often(settings.writer_gc_gen0_threshold)
        health.set_ready(SERVICE, True)
        health.add_check(f"{SERVICE}_storage_and_assignment", writer.ready)
        log.info(
            "writer started",
            extra={
                "batch_max_rows": settings.batch_max_rows,
                "batch_max_bytes": settings.batch_max_bytes,
                "batch_max_seconds": settings.batch_max_seconds,
                "deduplicate": settings.deduplicate,
                "pseudonymize": tokenize is not None,
                "policy": policy.profile,
            },
        )
        await writer.run()
    finally:
        listener.writer = None
        await consumer.stop()
        await producer.stop()
        log.info("writer stopped")
