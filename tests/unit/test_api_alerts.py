"""Alert ring buffer, fan-out and the HTTP alert endpoints (SSE included), without Kafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.api.app import create_app
from services.api.broker import AlertBroker
from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from tests.governance.helpers import auth_headers, make_governance

CROP = b"\xff\xd8\xff\xe0alert-crop\xff\xd9"
WAIT = 5.0


def make_alert(alert_id: str, plate: str = "ABC123", crop: bytes = CROP, **fields: Any) -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id=f"read-{alert_id}",
        plate=plate,
        region="US-CA",
        confidence=0.91,
        camera=common_pb2.CameraInfo(camera_id="cam-7", agency_id="agency-a", name="Main St"),
        crop_jpeg=crop,
    )
    read.captured_at.FromDatetime(datetime(2024, 5, 1, 12, 30, tzinfo=UTC))
    entry = hotlist_pb2.HotlistEntry(
        entry_id="e1",
        hotlist_id="h1",
        plate=plate,
        reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE,
        priority=1,
        notes="silver sedan",
    )
    alert = alerts_pb2.Alert(
        alert_id=alert_id,
        read=read,
        entry=entry,
        hotlist_name="Stolen vehicles",
        match_kind=alerts_pb2.MATCH_KIND_CONFUSABLE,
        **fields,
    )
    alert.raised_at.FromDatetime(datetime(2024, 5, 1, 12, 30, 1, tzinfo=UTC))
    return alert


# Broker -------------------------------------------------------------------------------------------


def test_recent_is_newest_first_and_bounded() -> None:
    broker = AlertBroker(capacity=3)
    for i in range(5):
        assert broker.publish(make_alert(f"a{i}"))
    assert [a.alert_id for a in broker.recent()] == ["a4", "a3", "a2"]
    assert [a.alert_id for a in broker.recent(2)] == ["a4", "a3"]
    assert broker.get("a1") is None and broker.get("a2") is not None
    assert len(broker) == 3


def test_duplicates_are_dropped_and_updates_replace_in_place() -> None:
    broker = AlertBroker(capacity=10)
    broker.publish(make_alert("a1"))
    broker.publish(make_alert("a2"))
    with broker.subscribe() as subscription:
        assert not broker.publish(make_alert("a1"))
        assert subscription.pending() == 0
        confirmed = make_alert("a1", status=alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL)
        assert broker.publish(confirmed)
        assert subscription.pending() == 1
    assert [a.alert_id for a in broker.recent()] == ["a2", "a1"]
    assert broker.get("a1") == confirmed


async def test_fan_out_reaches_every_subscriber_in_order() -> None:
    broker = AlertBroker()
    first, second = broker.subscribe(), broker.subscribe()
    broker.publish(make_alert("a1"))
    broker.publish(make_alert("a2"))
    for subscription in (first, second):
        got = [await asyncio.wait_for(subscription.get(), WAIT) for _ in range(2)]
        assert [a.alert_id for a in got if a is not None] == ["a1", "a2"]
    first.close()
    assert broker.subscriber_count == 1
    broker.publish(make_alert("a3"))
    assert await asyncio.wait_for(first.get(), WAIT) is None  # ended, a3 not delivered
    second.close()


async def test_slow_subscriber_drops_its_oldest_without_blocking() -> None:
    broker = AlertBroker(capacity=100, subscriber_queue_size=3)
    slow, fast = broker.subscribe(), broker.subscribe()
    received_fast = []
    for i in range(10):
        broker.publish(make_alert(f"a{i}"))  # returns at once however full `slow` is
        alert = await asyncio.wait_for(fast.get(), WAIT)
        assert alert is not None
        received_fast.append(alert.alert_id)
    assert received_fast == [f"a{i}" for i in range(10)]
    assert slow.dropped == 7
    kept = [await asyncio.wait_for(slow.get(), WAIT) for _ in range(3)]
    assert [a.alert_id for a in kept if a is not None] == ["a7", "a8", "a9"]
    slow.close()
    fast.close()


async def test_close_ends_subscriptions_and_later_subscribers() -> None:
    broker = AlertBroker()
    subscription = broker.subscribe()
    received: list[str] = []

    async def drain() -> None:
        async for alert in subscription:
            received.append(alert.alert_id)

    task = asyncio.create_task(drain())
    broker.publish(make_alert("a1"))
    broker.close()
    await asyncio.wait_for(task, WAIT)
    assert received == ["a1"]
    assert broker.subscriber_count == 0
    late = broker.subscribe()
    assert await asyncio.wait_for(late.get(), WAIT) is None


def test_since_returns_alerts_after_a_known_id() -> None:
    broker = AlertBroker()
    for i in range(4):
        broker.publish(make_alert(f"a{i}"))
    assert [a.alert_id for a in broker.since("a1")] == ["a2", "a3"]
    assert broker.since("a3") == []
    assert broker.since("unknown") == []


# HTTP ---------------------------------------------------------------------------------------------


@pytest.fixture
def broker() -> AlertBroker:
    return AlertBroker(capacity=50, subscriber_queue_size=10)


@pytest.fixture
def app(broker: AlertBroker) -> FastAPI:
    settings = ApiSettings(sse_heartbeat_seconds=0.2)
    governance = make_governance(settings)
    return create_app(settings, broker=broker, alert_consumer_ready=lambda: True, governance=governance)


def officer_headers(app: FastAPI) -> dict[str, str]:
    """An officer of agency-a (the agency of the alerts' camera) with a purpose for image views."""
    return auth_headers(app.state.governance, "officer", "agency-a")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers=officer_headers(app)
    ) as client:
        yield client


async def test_recent_alerts_endpoint(client: httpx.AsyncClient, broker: AlertBroker) -> None:
    broker.publish(make_alert("a1", stale=True, list_age_seconds=90000))
    broker.publish(make_alert("a2", plate="XYZ999", crop=b"", region_mismatch=True))
    broker.publish(make_alert("a1", stale=True, list_age_seconds=90000))
    response = await client.get("/api/v1/alerts")
    assert response.status_code == 200
    alerts = response.json()["alerts"]
    assert [a["alert_id"] for a in alerts] == ["a2", "a1"]
    newest, oldest = alerts
    assert newest["plate"] == "XYZ999" and newest["region_mismatch"] is True and newest["crop_url"] is None
    assert oldest["stale"] is True and oldest["list_age_seconds"] == 90000
    assert oldest["hotlist_name"] == "Stolen vehicles"
    assert oldest["reason"] == "stolen_vehicle" and oldest["priority"] == 1
    assert oldest["camera_id"] == "cam-7" and oldest["camera_name"] == "Main St"
    assert oldest["match_kind"] == "confusable"
    assert oldest["captured_at"].startswith("2024-05-01T12:30:00")
    assert oldest["crop_url"] == "/api/v1/alerts/a1/crop.jpg"
    limited = await client.get("/api/v1/alerts", params={"limit": 1})
    assert [a["alert_id"] for a in limited.json()["alerts"]] == ["a2"]


async def test_alert_crop(client: httpx.AsyncClient, broker: AlertBroker) -> None:
    broker.publish(make_alert("a1"))
    broker.publish(make_alert("a2", crop=b""))
    crop = await client.get("/api/v1/alerts/a1/crop.jpg")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg" and crop.content == CROP
    assert (await client.get("/api/v1/alerts/a2/crop.jpg")).status_code == 404
    assert (await client.get("/api/v1/alerts/nope/crop.jpg")).status_code == 404


@dataclass
class OpenStream:
    """A streaming GET driven straight through ASGI (httpx's ASGITransport buffers whole bodies)."""

    task: asyncio.Task[None]
    chunks: asyncio.Queue[bytes]
    disconnect: asyncio.Event
    start: dict[str, Any] = field(default_factory=dict)
    buffer: str = ""

    async def next_block(self) -> str:
        """The next SSE block (an event or a comment), without the blank line ending it."""
        while "\r\n\r\n" not in self.buffer:
            chunk = await asyncio.wait_for(self.chunks.get(), WAIT)
            self.buffer += chunk.decode()
        block, self.buffer = self.buffer.split("\r\n\r\n", 1)
        return block

    async def next_event(self) -> tuple[str, str, dict[str, Any]]:
        """(event, id, data) of the next event, skipping heartbeat comments."""
        while True:
            block = await self.next_block()
            lines = [line for line in block.split("\r\n") if not line.startswith(":")]
            if not lines:
                continue
            fields = dict(line.split(": ", 1) for line in lines)
            return fields["event"], fields["id"], json.loads(fields["data"])

    async def close(self) -> None:
        self.disconnect.set()
        await asyncio.wait_for(self.task, WAIT)


async def open_stream(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> OpenStream:
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    disconnect = asyncio.Event()
    started = asyncio.Event()
    start: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            started.set()
        elif message["type"] == "http.response.body" and message.get("body"):
            await chunks.put(message["body"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in {**officer_headers(app), **(headers or {})}.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("api", 80),
        "state": {},
    }
    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), WAIT)
    return OpenStream(task, chunks, disconnect, start)


async def test_sse_delivers_pushed_alerts(app: FastAPI, broker: AlertBroker) -> None:
    stream = await open_stream(app, "/api/v1/alerts/stream")
    try:
        assert stream.start["status"] == 200
        headers = {k.decode(): v.decode() for k, v in stream.start["headers"]}
        assert headers["content-type"].startswith("text/event-stream")
        assert broker.subscriber_count == 1
        broker.publish(make_alert("a1"))
        broker.publish(make_alert("a1"))  # duplicate: not sent again
        broker.publish(make_alert("a2", plate="XYZ999"))
        event, event_id, data = await stream.next_event()
        assert (event, event_id, data["alert_id"], data["plate"]) == ("alert", "a1", "a1", "ABC123")
        assert data["hotlist_name"] == "Stolen vehicles" and data["crop_url"] == "/api/v1/alerts/a1/crop.jpg"
        event, event_id, data = await stream.next_event()
        assert (event_id, data["plate"]) == ("a2", "XYZ999")
    finally:
        await stream.close()
    assert broker.subscriber_count == 0


async def test_sse_sends_heartbeat_comments(app: FastAPI) -> None:
    stream = await open_stream(app, "/api/v1/alerts/stream")
    try:
        block = await stream.next_block()
        assert block.startswith(":")
    finally:
        await stream.close()


async def test_sse_resumes_after_last_event_id(app: FastAPI, broker: AlertBroker) -> None:
    for i in range(3):
        broker.publish(make_alert(f"a{i}"))
    stream = await open_stream(app, "/api/v1/alerts/stream", {"Last-Event-ID": "a0"})
    try:
        assert [(await stream.next_event())[1] for _ in range(2)] == ["a1", "a2"]
        broker.publish(make_alert("a3"))
        assert (await stream.next_event())[1] == "a3"
    finally:
        await stream.close()


async def test_broker_close_ends_open_streams(app: FastAPI, broker: AlertBroker) -> None:
    stream = await open_stream(app, "/api/v1/alerts/stream")
    broker.close()
    await asyncio.wait_for(stream.task, WAIT)
    assert broker.subscriber_count == 0
