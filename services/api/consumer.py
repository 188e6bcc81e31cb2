"""Background task feeding the alert broker from the ALERTS topic.

Every API process is a viewer of the whole stream: it uses its own consumer group (so each process
sees every alert), starts at the end of the topic, but first re-reads the last `preload` alerts of
each partition so a freshly opened page is not empty. Offsets are never committed: a restart
preloads again instead of resuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from services.api.broker import AlertBroker
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import MESSAGES_CONSUMED, observe_consumer_lag
from services.common.pb.platewatch.v1 import alerts_pb2
from services.common.topics import ALERTS

log = logging.getLogger(__name__)

SERVICE = "api"
ALERTS_SKIPPED = Counter(
    "platewatch_api_alerts_skipped_total", "Undecodable alerts the API skipped", ["reason"]
)
RETRY_SECONDS = 5.0


def consumer_group_id() -> str:
    """A group of its own for this process (host, pid and a random part, as tests run several)."""
    return f"{SERVICE}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _PreloadOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """On the first assignment of each partition, step back `preload` messages from its end."""

    def __init__(self, owner: AlertConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._owner._assigned = False

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner._on_assigned(assigned)


class AlertConsumer:
    """Consumes ALERTS into `broker` until `run` is cancelled or `stop` is set.

    `assigned` (readiness) is true once the group has given this process its partitions and the
    preload position is set. Undecodable alerts go to the alerts dead-letter topic, except those
    re-read by the preload, which an earlier run has already dead-lettered.
    """

    def __init__(
        self,
        broker: AlertBroker,
        bootstrap: str,
        topic_prefix: str = "",
        preload: int = 500,
        group_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.bootstrap = bootstrap
        self.topic_prefix = prefix = topic_prefix
        self.topic = ALERTS.name(prefix)
        self.preload = preload
        self.group_id = group_id or consumer_group_id()
        self._assigned = False
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # Per partition: offsets below this were preloaded (already seen by an earlier run).
        self._live_from: dict[TopicPartition, int] = {}

    def assigned(self) -> bool:
        return self._assigned

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        fresh = [tp for tp in assigned if tp not in self._live_from]
        if fresh:
            ends = await consumer.end_offsets(fresh)
            starts = await consumer.beginning_offsets(fresh)
            for tp in fresh:
                self._live_from[tp] = ends[tp]
                consumer.seek(tp, max(starts[tp], ends[tp] - self.preload))
            log.info(
                "alert consumer assigned",
                extra={"group_id": self.group_id, "partitions": sorted(tp.partition for tp in fresh)},
            )
        self._assigned = bool(assigned)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; Kafka being down is retried, never fatal (the API still serves search)."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                # Expected while the broker is down or restarting: one line per attempt, no traceback.
                log.warning(
                    "alert consumer cannot reach Kafka; retrying",
                    extra={"error": repr(exc), "retry_seconds": RETRY_SECONDS},
                )
            except Exception:
                log.exception("alert consumer failed; retrying", extra={"retry_seconds": RETRY_SECONDS})
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        await self._close_producer()

    async def _consume(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(self.bootstrap, self.group_id, auto_offset_reset="latest")
        self._consumer = consumer
        self._live_from.clear()
        try:
            await consumer.start()
            consumer.subscribe([self.topic], listener=_PreloadOnAssign(self))
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                await observe_consumer_lag(consumer, SERVICE, self.topic_prefix)
                for records in batches.values():
                    for record in records:
                        await self._handle(record)
        finally:
            self._assigned = False
            self._consumer = None
            await consumer.stop()

    async def _handle(self, record: ConsumerRecord) -> None:
        MESSAGES_CONSUMED.labels(SERVICE, ALERTS.logical).inc()
        try:
            alert = decode(ALERTS, record.value)
        except DeadLetterError as error:
            await self._dead_letter(record, error)
            return
        assert isinstance(alert, alerts_pb2.Alert)
        self.broker.publish(alert)

    async def _dead_letter(self, record: ConsumerRecord, error: DeadLetterError) -> None:
        tp = TopicPartition(record.topic, record.partition)
        if record.offset < self._live_from.get(tp, 0):
            ALERTS_SKIPPED.labels(error.reason).inc()
            log.warning(
                "skipping undecodable preloaded alert",
                extra={"reason": error.reason, "partition": record.partition, "offset": record.offset},
            )
            return
        try:
            if self._producer is None:
                producer = make_producer(self.bootstrap)
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self._producer = producer
            await send_dead_letter(
                self._producer, ALERTS, record, error, service=SERVICE, prefix=self.topic_prefix
            )
        except Exception:
            # A viewer must not stall on its dead-letter path: count it and move on.
            ALERTS_SKIPPED.labels(error.reason).inc()
            log.exception(
                "could not dead-letter undecodable alert; skipped",
                extra={"partition": record.partition, "offset": record.offset},
            )

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
