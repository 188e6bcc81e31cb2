"""`platewatch serve notifier`: alerts from Kafka to the webhook subscribers of deploy/webhooks.yaml.

Loop: fetch alerts (group `<prefix>notifier`, read_committed), and for each alert version in
partition order deliver it to every subscriber that wants it, concurrently; a subscriber that still
fails after its retries (or refuses with a 4xx) gets the alert copied to the alerts dead-letter topic
with reason `webhook_failed`, and the notifier goes on. The offset is committed only once every
subscriber has the alert delivered or dead-lettered, so a crash redelivers (at least once; receivers
dedupe on X-Platewatch-Delivery). A stop in the middle of retries leaves that alert uncommitted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord

from services.common.health import HealthState
from services.common.kafka import DeadLetterError, decode, make_consumer, make_producer, send_dead_letter
from services.common.metrics import MESSAGES_CONSUMED, observe_consumer_lag
from services.common.pb.platewatch.v1 import alerts_pb2
from services.common.topics import ALERTS
from services.notifier.delivery import DeliveryResult, RetryPolicy, Stopped, build_payload, deliver
from services.notifier.metrics import ALERT_TO_DELIVERY_SECONDS
from services.notifier.settings import NotifierSettings
from services.notifier.subscribers import Subscriber, load_subscribers

log = logging.getLogger(__name__)

SERVICE = "notifier"
CONSUMER_GROUP = "notifier"
WEBHOOK_FAILED = "webhook_failed"


def _version_time(alert: alerts_pb2.Alert) -> datetime | None:
    stamp = alert.updated_at if alert.HasField("updated_at") else alert.raised_at
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


class Notifier:
    """Consumes ALERTS and fans each alert version out to the subscribers; see the module docstring."""

    def __init__(
        self,
        settings: NotifierSettings,
        subscribers: list[Subscriber],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        client: httpx.AsyncClient,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.subscribers = subscribers
        self.consumer = consumer
        self.producer = producer
        self.client = client
        self.stop = stop
        self.policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            initial_backoff_s=settings.initial_backoff_s,
            max_backoff_s=settings.max_backoff_s,
            max_retry_after_s=settings.max_retry_after_s,
        )
        self._positioned: set[TopicPartition] = set()

    def ready(self) -> bool:
        """Partitions assigned and their start positions known: an alert produced now is delivered."""
        return bool(self._positioned) and self._positioned == self.consumer.assignment()

    async def _resolve_positions(self) -> None:
        assignment = set(self.consumer.assignment())
        if assignment and assignment != self._positioned:
            for tp in assignment:
                await self.consumer.position(tp)
            self._positioned = assignment

    async def run(self) -> None:
        """Until `stop`: fetch, deliver, commit."""
        while not self.stop.is_set():
            await self._resolve_positions()
            batches = await self.consumer.getmany(timeout_ms=500, max_records=50)
            await observe_consumer_lag(self.consumer, SERVICE, self.settings.topic_prefix)
            for tp, records in batches.items():
                for record in records:
                    try:
                        await self._handle(record)
                    except Stopped:
                        log.info("stopping in the middle of a delivery; it will be redone after restart")
                        return
                    # Commit per alert: a slow subscriber must not make a crash redo many alerts.
                    try:
                        await self.consumer.commit({tp: record.offset + 1})
                    except CommitFailedError:
                        # Rebalanced away meanwhile: the new owner redelivers (receivers dedupe).
                        log.warning("commit refused after a rebalance", extra={"partition": tp.partition})
                        break

    async def _handle(self, record: ConsumerRecord) -> None:
        MESSAGES_CONSUMED.labels(SERVICE, ALERTS.logical).inc()
        try:
            alert = decode(ALERTS, record.value)
        except DeadLetterError as error:
            await send_dead_letter(
                self.producer, ALERTS, record, error, service=SERVICE, prefix=self.settings.topic_prefix
            )
            return
        assert isinstance(alert, alerts_pb2.Alert)
        wanted = [s for s in self.subscribers if s.wants(alert)]
        if not wanted:
            return
        body = build_payload(alert, self.settings.include_crop)
        results = await asyncio.gather(
            *(deliver(self.client, s, alert, body, self.policy, self.stop) for s in wanted),
            return_exceptions=True,
        )
        stopped = False
        for result in results:
            if isinstance(result, Stopped):
                stopped = True
            elif isinstance(result, BaseException):
                raise result
        # Failures are dead-lettered even when stopping: they are final.
        for result in results:
            if isinstance(result, DeliveryResult):
                await self._settle(record, alert, result)
        if stopped:
            raise Stopped()

    async def _settle(self, record: ConsumerRecord, alert: alerts_pb2.Alert, result: DeliveryResult) -> None:
        if result.delivered:
            version_time = _version_time(alert)
            if version_time is not None:
                age = (datetime.now(UTC) - version_time).total_seconds()
                ALERT_TO_DELIVERY_SECONDS.labels(result.subscriber).observe(max(0.0, age))
            return
        detail = (
            f"subscriber={result.subscriber} delivery_id={result.delivery_id} "
            f"attempts={result.attempts} outcome={result.verdict.value} last_error={result.last_error}"
        )
        await send_dead_letter(
            self.producer,
            ALERTS,
            record,
            DeadLetterError(WEBHOOK_FAILED, detail),
            service=SERVICE,
            prefix=self.settings.topic_prefix,
        )


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Deliver alerts to the webhook subscribers until `stop`; then finish or abandon the current
    alert (uncommitted), and close. Raises WebhooksFileError at start for an invalid webhooks file or
    a missing secret. With no subscribers it still consumes and commits (so enabling one later starts
    from new alerts, not from the topic's retention)."""
    settings = NotifierSettings()
    subscribers = load_subscribers(settings.webhooks_file)
    health.set_ready(SERVICE, False)
    log.info(
        "notifier starting",
        extra={
            "webhooks_file": str(settings.webhooks_file),
            "subscribers": [s.name for s in subscribers],
            "max_attempts": settings.max_attempts,
        },
    )
    consumer = make_consumer(
        settings.kafka_bootstrap,
        settings.topic_prefix + CONSUMER_GROUP,
        ALERTS.name(settings.topic_prefix),
        auto_offset_reset="latest",
    )
    producer = make_producer(settings.kafka_bootstrap)
    client = httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False)
    started = time.monotonic()
    try:
        await producer.start()
        await consumer.start()
        notifier = Notifier(settings, subscribers, consumer, producer, client, stop)
        health.add_check(f"{SERVICE}_assignment", notifier.ready)
        health.set_ready(SERVICE, True)
        log.info("notifier started", extra={"start_s": round(time.monotonic() - started, 3)})
        await notifier.run()
    finally:
        health.set_ready(SERVICE, False)
        await consumer.stop()
        await producer.stop()
        await client.aclose()
        log.info("notifier stopped")
