"""In-memory alert hub: a ring buffer of recent alerts and fan-out to live (SSE) subscribers.

Everything runs on one event loop: the Kafka consumer calls `publish`, each SSE response iterates
its own `Subscription`. Publishing never waits: a subscriber whose queue is full loses its oldest
queued alert, so one slow browser cannot hold back the consumer or the other subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

from services.api.alert_workflow import supersedes
from services.common.pb.platewatch.v1 import alerts_pb2

log = logging.getLogger(__name__)

SSE_SUBSCRIBERS = Gauge("platewatch_api_sse_subscribers", "Open live alert streams")
SSE_DROPPED = Counter(
    "platewatch_api_sse_dropped_total", "Alerts dropped from a slow live-stream subscriber's queue"
)


class Subscription:
    """One subscriber's bounded queue. Iterate it for new alerts; iteration ends when the broker
    closes or the subscription is closed."""

    def __init__(self, broker: AlertBroker, queue_size: int) -> None:
        self._broker = broker
        # None is the end-of-stream marker.
        self._queue: asyncio.Queue[alerts_pb2.Alert | None] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self.closed = False

    def offer(self, alert: alerts_pb2.Alert | None) -> None:
        """Enqueue without waiting, dropping the oldest queued alert when full."""
        while True:
            try:
                self._queue.put_nowait(alert)
                return
            except asyncio.QueueFull:
                try:
                    self._queue.get_nowait()
                except asyncio.QueueEmpty:  # pragma: no cover - only if maxsize is 0
                    continue
                self.dropped += 1
                SSE_DROPPED.inc()

    async def get(self) -> alerts_pb2.Alert | None:
        """Next alert, or None once the stream has ended."""
        if self.closed:
            return None
        alert = await self._queue.get()
        if alert is None:
            self.closed = True
        return alert

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        """Detach from the broker and end iteration."""
        if not self.closed:
            self._broker._unsubscribe(self)
            self.offer(None)

    async def __aiter__(self) -> AsyncIterator[alerts_pb2.Alert]:
        while True:
            alert = await self.get()
            if alert is None:
                return
            yield alert

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AlertBroker:
    """Keeps the newest `capacity` alerts (one per alert_id) and pushes each new or changed alert to
    every subscriber."""

    def __init__(self, capacity: int = 500, subscriber_queue_size: int = 100) -> None:
        if capacity < 1 or subscriber_queue_size < 1:
            raise ValueError("capacity and subscriber_queue_size must be at least 1")
        self.capacity = capacity
        self.subscriber_queue_size = subscriber_queue_size
        # Oldest first; re-delivery of a known alert keeps its place.
        self._alerts: OrderedDict[str, alerts_pb2.Alert] = OrderedDict()
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def publish(self, alert: alerts_pb2.Alert) -> bool:
        """Record an alert (a new one or a newer version of a buffered one) and fan it out. Returns
        False (and does nothing) for an exact duplicate of a buffered alert, as Kafka re-delivery and
        the start-up preload produce, and for an older version than the buffered one, as the hotlist
        re-raising an alert on replay produces after an operator confirmed it."""
        known = self._alerts.get(alert.alert_id)
        if known is not None and not supersedes(alert, known):
            return False
        self._alerts[alert.alert_id] = alert
        while len(self._alerts) > self.capacity:
            self._alerts.popitem(last=False)
        for subscription in list(self._subscribers):
            subscription.offer(alert)
        return True

    def recent(self, limit: int | None = None) -> list[alerts_pb2.Alert]:
        """Buffered alerts, newest first."""
        alerts = list(reversed(self._alerts.values()))
        return alerts if limit is None else alerts[:limit]

    def since(self, alert_id: str) -> list[alerts_pb2.Alert]:
        """Alerts buffered after `alert_id`, oldest first (for an SSE client resuming with
        Last-Event-ID); empty when the id is unknown, as replaying everything would repeat old news."""
        ids = list(self._alerts)
        try:
            index = ids.index(alert_id)
        except ValueError:
            return []
        return [self._alerts[i] for i in ids[index + 1 :]]

    def get(self, alert_id: str) -> alerts_pb2.Alert | None:
        return self._alerts.get(alert_id)

    def __len__(self) -> int:
        return len(self._alerts)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription that receives alerts published from now on (use as a context manager
        so it is always released). On a closed broker it is already at its end."""
        subscription = Subscription(self, self.subscriber_queue_size)
        if self._closed:
            subscription.offer(None)
            return subscription
        self._subscribers.add(subscription)
        SSE_SUBSCRIBERS.inc()
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            SSE_SUBSCRIBERS.dec()

    def close(self) -> None:
        """End every subscription (server shutdown): open streams finish instead of holding the
        server up."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()
