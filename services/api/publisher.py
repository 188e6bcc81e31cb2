"""Publishing alert workflow steps to the ALERTS topic.

The API answers an operator's action only after the broker has acknowledged the new version of the
alert (acks=all, idempotent producer, `send_and_wait`), so a confirmed action is never lost. The
producer connects on first use: the API starts and serves search while Kafka is down.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from services.common.kafka import make_producer
from services.common.metrics import MESSAGES_PRODUCED
from services.common.pb.platewatch.v1 import alerts_pb2
from services.common.topics import ALERTS

log = logging.getLogger(__name__)

SERVICE = "api"


class PublishError(Exception):
    """The alert could not be written to Kafka in time (HTTP 503); nothing was changed."""


class AlertPublisher:
    """Writes alerts to ALERTS keyed by alert_id. `close()` when done."""

    def __init__(self, bootstrap: str, topic_prefix: str = "", timeout_seconds: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = ALERTS.name(topic_prefix)
        self.timeout_seconds = timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.bootstrap, request_timeout_ms=int(self.timeout_seconds * 1000))
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_seconds)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, alert: alerts_pb2.Alert) -> None:
        """Write `alert` and wait for the acknowledgement of all in-sync replicas; PublishError when
        Kafka is unreachable or does not acknowledge within the timeout."""
        try:
            producer = await self._started()
            await asyncio.wait_for(
                producer.send_and_wait(self.topic, alert.SerializeToString(), key=alert.alert_id.encode()),
                self.timeout_seconds,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "could not publish alert update", extra={"alert_id": alert.alert_id, "error": repr(exc)}
            )
            # A producer in an unknown state is replaced on the next attempt.
            await self._reset()
            raise PublishError(f"alert {alert.alert_id} could not be published to Kafka: {exc!r}") from exc
        MESSAGES_PRODUCED.labels(SERVICE, ALERTS.logical).inc()

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception:
                log.debug("closing a failed producer failed", exc_info=True)

    async def close(self) -> None:
        await self._reset()
