"""Governance state shared by every API replica: the compacted `GOVERNANCE_STATE` topic.

Approvals (`ApprovalStore`), failed-login lockouts (`LoginGuard`) and idle sessions (`IdleSessions`)
change in memory and hand each change to a `StateJournal` as `(key, value)`: the key names one
approval, username or session (`approval/<id>`, `login/<digest>`, `session/<digest>`;
`policy/in-force` holds the policy last audited as in force), the value is that item's whole latest
state (JSON) or None for a tombstone, so compaction keeps exactly the latest state of each item.

`KafkaStateJournal` is the shared implementation, modelled on the hotlist change log
(services/hotlist/changelog.py): every replica reads the whole topic from the beginning (no
consumer group, all partitions assigned) and keeps following it, routing each record by its key
prefix to the store that owns it. Its own records come back too; the stores' merge rules make
applying a record twice, or after a newer local change, harmless. `ready` turns true once the
replay reached the end offsets seen at start. Writes are sent in the order they were appended
(one sender task) and `flush()` waits until every write appended so far is acknowledged by the
in-sync replicas: the API calls it before answering a request that changed state.

Without a journal (None) the stores keep their state in this process only (unit tests, tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from services.common.kafka import make_producer
from services.common.metrics import MESSAGES_CONSUMED, MESSAGES_PRODUCED
from services.common.topics import GOVERNANCE_STATE

log = logging.getLogger(__name__)

SERVICE = "api"
# Applies one record (key without its prefix, value or None for a tombstone).
Applier = Callable[[str, bytes | None], None]
# The writes appended in the current context (one API request's task) that `flush` still owes.
_OWED: ContextVar[list[asyncio.Future[None]] | None] = ContextVar("governance_state_owed", default=None)


class StateJournal(Protocol):
    """Where a store's changes go. `append` must keep the order of appends per key."""

    def append(self, key: str, value: bytes | None) -> None: ...


class JournalUnavailable(Exception):
    """A state change could not be made durable (Kafka down, timeout): the request must fail."""


@dataclass
class RecordingJournal:
    """Keeps appended records in a list (unit tests)."""

    records: list[tuple[str, bytes | None]] = field(default_factory=list)

    def append(self, key: str, value: bytes | None) -> None:
        self.records.append((key, value))


def split_key(key: str) -> tuple[str, str]:
    """`"approval/abc"` -> `("approval", "abc")`; a key without '/' has an empty prefix."""
    prefix, sep, rest = key.partition("/")
    return (prefix, rest) if sep else ("", key)


@dataclass
class _PendingWrite:
    key: str
    value: bytes | None
    done: asyncio.Future[None]


class KafkaStateJournal:
    """Follows GOVERNANCE_STATE into the registered appliers and writes appended changes.

    Lifecycle: `await start()`, `await wait_ready()`, ..., `await stop()`. `appliers` maps a key
    prefix ("approval", "login") to the function applying that prefix's records.
    """

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str,
        appliers: Mapping[str, Applier],
        *,
        write_timeout_s: float = 10.0,
        poll_timeout_ms: int = 200,
        topic_wait_s: float = 60.0,
    ) -> None:
        self.topic = GOVERNANCE_STATE.name(topic_prefix)
        self._bootstrap = bootstrap
        self._appliers = dict(appliers)
        self._write_timeout_s = write_timeout_s
        self._poll_timeout_ms = poll_timeout_ms
        self._topic_wait_s = topic_wait_s
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._start_end_offsets: dict[TopicPartition, int] = {}
        self._ready = asyncio.Event()
        self._queue: asyncio.Queue[_PendingWrite] = asyncio.Queue()
        self._unsent: list[asyncio.Future[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once the topic has been replayed up to the end offsets seen at start."""
        return self._ready.is_set()

    @property
    def healthy(self) -> bool:
        """Replayed and still following (the follower task has not died)."""
        return self.ready and bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def start(self) -> None:
        """Connect, assign every partition from the beginning and start following and sending."""
        producer = make_producer(self._bootstrap)
        await producer.start()
        self._producer = producer
        try:
            partitions = await self._wait_for_partitions(producer)
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            await consumer.start()
            self._consumer = consumer
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
            self._start_end_offsets = await consumer.end_offsets(self._partitions)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "replaying governance state",
            extra={
                "topic": self.topic,
                "end_offsets": {tp.partition: o for tp, o in self._start_end_offsets.items()},
            },
        )
        await self._check_ready()
        self._tasks = [
            asyncio.create_task(self._follow(), name="governance-state-follow"),
            asyncio.create_task(self._send(), name="governance-state-send"),
        ]

    async def _wait_for_partitions(self, producer: AIOKafkaProducer) -> set[int]:
        deadline = time.monotonic() + self._topic_wait_s
        while True:
            try:
                partitions = await producer.partitions_for(self.topic)
                if partitions:
                    return set(partitions)
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"governance state topic {self.topic} not found") from exc
                log.warning(
                    "waiting for the governance state topic", extra={"topic": self.topic, "error": str(exc)}
                )
            await asyncio.sleep(1.0)

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Return once the replay has caught up; TimeoutError after `timeout_s`; re-raises if the
        follower died first."""
        ready = asyncio.create_task(self._ready.wait())
        watched = [ready, *self._tasks]
        try:
            done, _ = await asyncio.wait(watched, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        for task in done:
            if task is not ready and task.exception() is not None:
                raise RuntimeError("governance state follower failed") from task.exception()
        raise TimeoutError(f"governance state not replayed within {timeout_s} s")

    async def _follow(self) -> None:
        consumer = self._require_consumer()
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
            for records in batches.values():
                for record in records:
                    self._apply(record)
            await self._check_ready()

    async def _check_ready(self) -> None:
        if self._ready.is_set():
            return
        consumer = self._require_consumer()
        for tp, end in self._start_end_offsets.items():
            if await consumer.position(tp) < end:
                return
        self._ready.set()
        log.info("governance state replayed", extra={"topic": self.topic})

    def _apply(self, record: ConsumerRecord) -> None:
        MESSAGES_CONSUMED.labels(SERVICE, GOVERNANCE_STATE.logical).inc()
        key = record.key.decode("utf-8", errors="replace") if record.key is not None else ""
        prefix, rest = split_key(key)
        applier = self._appliers.get(prefix)
        if applier is None:
            # A kind this version does not know (a newer replica wrote it): leave it alone.
            log.warning("governance state record of unknown kind skipped", extra={"kind": prefix})
            return
        try:
            applier(rest, record.value)
        except Exception as exc:
            # No dead-letter topic for state: skip loudly; the key's next write supersedes it.
            log.error(
                "governance state record skipped",
                extra={"kind": prefix, "offset": record.offset, "error": str(exc)},
            )

    def append(self, key: str, value: bytes | None) -> None:
        """Queue a write (sent in append order); `flush()` waits for it and raises if it failed.
        Called from the event loop's thread (the API's routes)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Marks a failure as seen even when no request flushes this write (it is logged anyway).
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._unsent.append(done)
        owed = _OWED.get()
        if owed is None:
            owed = []
            _OWED.set(owed)
        owed.append(done)
        if self._producer is None or self._stopping.is_set():
            done.set_exception(JournalUnavailable("governance state journal is not running"))
            return
        self._queue.put_nowait(_PendingWrite(key, value, done))

    async def _send(self) -> None:
        producer = self._require_producer()
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # Sent one after another (ordered), acknowledged together.
            deliveries: list[tuple[_PendingWrite, asyncio.Future[object] | BaseException]] = []
            for write in batch:
                try:
                    delivery = await producer.send(self.topic, key=write.key.encode(), value=write.value)
                    deliveries.append((write, delivery))
                except Exception as exc:
                    deliveries.append((write, exc))
            for write, delivery in deliveries:
                try:
                    if isinstance(delivery, BaseException):
                        raise delivery
                    await delivery
                    MESSAGES_PRODUCED.labels(SERVICE, GOVERNANCE_STATE.logical).inc()
                    if not write.done.done():
                        write.done.set_result(None)
                except Exception as exc:
                    log.error("governance state write failed", extra={"key": write.key, "error": str(exc)})
                    if not write.done.done():
                        write.done.set_exception(JournalUnavailable(str(exc)))
            self._unsent = [f for f in self._unsent if not f.done()]

    async def flush(self) -> None:
        """Wait until every write appended in the current context (this request, this task) is
        acknowledged; JournalUnavailable when one failed or took longer than the write timeout."""
        owed = _OWED.get()
        if not owed:
            return
        _OWED.set(None)
        await self._wait_for(list(owed))

    async def flush_all(self) -> None:
        """Wait for every write appended so far, whoever appended it."""
        pending, self._unsent = self._unsent, []
        await self._wait_for(pending)

    async def _wait_for(self, pending: list[asyncio.Future[None]]) -> None:
        self._unsent = [f for f in self._unsent if not f.done()]
        try:
            async with asyncio.timeout(self._write_timeout_s):
                results = await asyncio.gather(*(asyncio.shield(f) for f in pending), return_exceptions=True)
        except TimeoutError as exc:
            raise JournalUnavailable(f"not written within {self._write_timeout_s} s") from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise JournalUnavailable(str(failures[0]))

    async def stop(self) -> None:
        """Send what is queued (best effort), then stop following and close the clients."""
        if self._tasks and self._producer is not None:
            with contextlib.suppress(Exception):
                await self.flush_all()
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("KafkaStateJournal.start() has not been called")
        return self._consumer

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaStateJournal.start() has not been called")
        return self._producer
