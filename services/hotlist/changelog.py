"""The hotlist change log: the compacted `HOTLIST_CHANGES` topic is the source of truth.

Every replica reads the whole topic from the beginning (no consumer group: all partitions assigned,
read_committed) into a `HotlistIndex` and keeps following it. Writes publish a change and then
wait until this replica's own follower has applied it, so a client reads its own writes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import MAX_REQUEST_BYTES
from services.common.metrics import MESSAGES_CONSUMED, MESSAGES_PRODUCED
from services.common.pb.platewatch.v1 import hotlist_pb2
from services.common.topics import HOTLIST_CHANGES
from services.hotlist.matcher import HotlistIndex
from services.hotlist.metrics import CHANGES_APPLIED

log = logging.getLogger(__name__)

SERVICE = "hotlist"
# How long to wait for the change-log topic to appear before giving up at start.
TOPIC_WAIT_S = 60.0


def list_key(hotlist_id: str) -> str:
    return f"list/{hotlist_id}"


def entry_key(entry_id: str) -> str:
    return f"entry/{entry_id}"


def now_timestamp() -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromNanoseconds(time.time_ns())
    return timestamp


class ChangeLog:
    """Follows the change log into `index` and publishes changes with read-your-writes.

    Lifecycle: `await start()`, run `follow(stop)` as a task, `await stop()` at the end.
    `ready` turns true once the follower has caught up with the end offsets seen at start.
    """

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str,
        producer: AIOKafkaProducer,
        index: HotlistIndex | None = None,
        transactional_producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.index = index if index is not None else HotlistIndex()
        self.topic = HOTLIST_CHANGES.name(topic_prefix)
        self._bootstrap = bootstrap
        self._producer = producer
        # For `publish_atomic`; one transaction at a time per producer.
        self._transactional_producer = transactional_producer
        self._transaction_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._start_end_offsets: dict[TopicPartition, int] = {}
        # Next offset to apply, per partition: everything below has been applied to the index.
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._ready = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        partitions = await self._wait_for_partitions()
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=MAX_REQUEST_BYTES,
            fetch_max_bytes=4 * MAX_REQUEST_BYTES,
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        self._start_end_offsets = await consumer.end_offsets(self._partitions)
        self._positions = {tp: 0 for tp in self._partitions}
        log.info(
            "replaying hotlist change log",
            extra={
                "topic": self.topic,
                "end_offsets": {tp.partition: o for tp, o in self._start_end_offsets.items()},
            },
        )
        await self._update_positions()

    async def _wait_for_partitions(self) -> set[int]:
        deadline = time.monotonic() + TOPIC_WAIT_S
        while True:
            try:
                partitions = await self._producer.partitions_for(self.topic)
                if partitions:
                    return set(partitions)
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"change-log topic {self.topic} not found") from exc
                log.warning(
                    "waiting for the change-log topic", extra={"topic": self.topic, "error": str(exc)}
                )
            await asyncio.sleep(1.0)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply every record as it arrives, until `stop` is set."""
        consumer = self._require_consumer()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self._apply(record)
            await self._update_positions()

    async def _update_positions(self) -> None:
        consumer = self._require_consumer()
        for tp in self._partitions:
            self._positions[tp] = await consumer.position(tp)
        if not self._ready.is_set() and all(
            self._positions[tp] >= end for tp, end in self._start_end_offsets.items()
        ):
            self._ready.set()
            log.info(
                "hotlist change log replayed",
                extra={"lists": len(self.index.lists), "entries": len(self.index.entries)},
            )
        async with self._progress:
            self._progress.notify_all()

    def _apply(self, record: ConsumerRecord) -> None:
        MESSAGES_CONSUMED.labels(SERVICE, HOTLIST_CHANGES.logical).inc()
        key = record.key.decode() if record.key is not None else ""
        if record.value is None:
            self.index.apply_key_deletion(key)
        else:
            change = hotlist_pb2.HotlistChange()
            try:
                change.ParseFromString(record.value)
            except DecodeError:
                # No dead-letter topic for the source of truth: skip it loudly, keep the replica up.
                log.error(
                    "undecodable hotlist change skipped",
                    extra={"key": key, "partition": record.partition, "offset": record.offset},
                )
                return
            if change.WhichOneof("change") is None:
                self.index.apply_key_deletion(key)
            else:
                self.index.apply(change)
        CHANGES_APPLIED.inc()

    async def wait_ready(self) -> None:
        """Return once the change log has been replayed up to the end offsets seen at start."""
        await self._ready.wait()

    async def publish(
        self, changes: list[tuple[str, hotlist_pb2.HotlistChange | None]], apply_wait_s: float
    ) -> None:
        """Publish `(key, change)` pairs in order (None = null tombstone), each acknowledged by all
        in-sync replicas, then wait until this replica has applied them all. TimeoutError when the
        follower does not catch up within `apply_wait_s` (the changes are durable regardless)."""
        targets: dict[TopicPartition, int] = {}
        for key, change in changes:
            value = change.SerializeToString() if change is not None else None
            metadata = await self._producer.send_and_wait(self.topic, key=key.encode(), value=value)
            MESSAGES_PRODUCED.labels(SERVICE, HOTLIST_CHANGES.logical).inc()
            tp = TopicPartition(self.topic, metadata.partition)
            targets[tp] = max(targets.get(tp, 0), metadata.offset + 1)
        await self._wait_applied(targets, apply_wait_s)

    async def publish_atomic(
        self, changes: list[tuple[str, hotlist_pb2.HotlistChange | None]], apply_wait_s: float
    ) -> None:
        """Like `publish`, but all `changes` go out in one Kafka transaction: replicas (which read
        committed records only) see all of them or, if this process dies half-way, none. Needs the
        transactional producer; without one it falls back to `publish` (not atomic)."""
        producer = self._transactional_producer
        if producer is None:
            await self.publish(changes, apply_wait_s)
            return
        async with self._transaction_lock:
            async with producer.transaction():
                sent = []
                for key, change in changes:
                    value = change.SerializeToString() if change is not None else None
                    sent.append(await producer.send(self.topic, key=key.encode(), value=value))
            # The transaction committed, so every send has its metadata.
            targets: dict[TopicPartition, int] = {}
            for future in sent:
                metadata = future.result()
                tp = TopicPartition(self.topic, metadata.partition)
                targets[tp] = max(targets.get(tp, 0), metadata.offset + 1)
        MESSAGES_PRODUCED.labels(SERVICE, HOTLIST_CHANGES.logical).inc(len(changes))
        await self._wait_applied(targets, apply_wait_s)

    async def _wait_applied(self, targets: dict[TopicPartition, int], apply_wait_s: float) -> None:
        async with asyncio.timeout(apply_wait_s), self._progress:
            await self._progress.wait_for(
                lambda: all(self._positions.get(tp, 0) >= offset for tp, offset in targets.items())
            )

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("ChangeLog.start() has not been called")
        return self._consumer
