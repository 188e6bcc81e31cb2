"""Delivering one alert version to one subscriber: signed POST, retried with capped exponential
backoff on connection errors, 5xx, 408 and 429 (honouring Retry-After), never on other 4xx."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from services.api.models import AlertOut
from services.common.pb.platewatch.v1 import alerts_pb2
from services.notifier.metrics import DELIVERIES, DELIVERY_SECONDS, RETRIES
from services.notifier.retry import Verdict, classify, retry_delay_s
from services.notifier.signing import signed_headers
from services.notifier.subscribers import Subscriber, delivery_id, event_of

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The service is stopping in the middle of a delivery: it is neither done nor failed."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


@dataclass(frozen=True)
class DeliveryResult:
    subscriber: str
    delivery_id: str
    verdict: Verdict
    attempts: int
    # "HTTP 503", "ConnectError: ..."; "" once delivered.
    last_error: str

    @property
    def delivered(self) -> bool:
        return self.verdict == Verdict.DELIVERED


def build_payload(alert: alerts_pb2.Alert, include_crop: bool) -> bytes:
    """The JSON body: `event`, `delivery_id`, `alert` (the same JSON as the API's GET /alerts) and,
    when asked for and present, `crop_jpeg_base64`."""
    document: dict[str, object] = {
        "event": str(event_of(alert)),
        "delivery_id": delivery_id(alert),
        "alert": AlertOut.from_proto(alert).model_dump(mode="json"),
    }
    if include_crop and alert.read.crop_jpeg:
        document["crop_jpeg_base64"] = base64.b64encode(alert.read.crop_jpeg).decode()
    return json.dumps(document, separators=(",", ":")).encode()


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    if stop.is_set():
        raise Stopped()


async def deliver(
    client: httpx.AsyncClient,
    subscriber: Subscriber,
    alert: alerts_pb2.Alert,
    body: bytes,
    policy: RetryPolicy,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
) -> DeliveryResult:
    """POST `body` to the subscriber until it is accepted (2xx), refused (other 4xx, 3xx) or
    `policy.max_attempts` attempts failed. Raises Stopped when `stop` is set while waiting to retry.
    Each attempt is signed with its own timestamp; the delivery id is the same on every attempt."""
    ident = delivery_id(alert)
    event = str(event_of(alert))
    started = time.monotonic()
    last_error = ""
    verdict = Verdict.RETRY
    attempt = 0
    while attempt < policy.max_attempts:
        attempt += 1
        headers = signed_headers(subscriber.secret, body, ident, event, clock())
        retry_after: str | None = None
        try:
            response = await client.post(subscriber.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            verdict, last_error, reason = Verdict.RETRY, f"{type(exc).__name__}: {exc}", "connection_error"
        else:
            verdict = classify(response.status_code)
            last_error = "" if verdict == Verdict.DELIVERED else f"HTTP {response.status_code}"
            reason = str(response.status_code)
            retry_after = response.headers.get("Retry-After")
        if verdict != Verdict.RETRY:
            break
        if attempt >= policy.max_attempts:
            break
        RETRIES.labels(subscriber.name, reason).inc()
        delay = retry_delay_s(
            attempt,
            retry_after,
            initial_s=policy.initial_backoff_s,
            max_s=policy.max_backoff_s,
            max_retry_after_s=policy.max_retry_after_s,
        )
        log.info(
            "webhook delivery will be retried",
            extra={
                "subscriber": subscriber.name,
                "delivery_id": ident,
                "attempt": attempt,
                "error": last_error,
                "retry_in_s": delay,
            },
        )
        await _wait_or_stop(stop, delay)
    outcome = {Verdict.DELIVERED: "delivered", Verdict.REJECTED: "rejected", Verdict.RETRY: "failed"}[verdict]
    DELIVERIES.labels(subscriber.name, outcome).inc()
    DELIVERY_SECONDS.labels(subscriber.name).observe(time.monotonic() - started)
    if verdict != Verdict.DELIVERED:
        log.warning(
            "webhook delivery failed",
            extra={
                "subscriber": subscriber.name,
                "delivery_id": ident,
                "attempts": attempt,
                "outcome": outcome,
                "error": last_error,
            },
        )
    return DeliveryResult(subscriber.name, ident, verdict, attempt, last_error)
