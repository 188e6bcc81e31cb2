"""The API process (`services.api.main.serve`) against a real Kafka broker: preloaded history, live
alerts on GET /alerts and the SSE stream, undecodable alerts dead-lettered, clean shutdown with a
stream still open. The gRPC backends are absent, which the API must tolerate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.api.main import serve
from services.common.health import HealthState
from services.common.kafka import make_consumer, make_producer
from services.common.net import free_port
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.topics import ALERTS
from tests.governance.helpers import ISSUER_ENV, process_headers
from tests.waiting import until

WAIT = 60.0
CROP = b"\xff\xd8\xff\xe0integration-crop\xff\xd9"


def _alert(alert_id: str, plate: str) -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id=f"read-{alert_id}",
        plate=plate,
        confidence=0.9,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="agency-a", name="Gate"),
        crop_jpeg=CROP,
    )
    read.captured_at.GetCurrentTime()
    entry = hotlist_pb2.HotlistEntry(
        entry_id="e1", hotlist_id="h1", plate=plate, reason=hotlist_pb2.REASON_CODE_STOLEN_PLATE, priority=2
    )
    alert = alerts_pb2.Alert(
        alert_id=alert_id,
        read=read,
        entry=entry,
        hotlist_name="Integration list",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
    )
    alert.raised_at.GetCurrentTime()
    return alert


async def _until(condition: Callable[[], Any], what: str, within_s: float = WAIT) -> Any:
    return await until(condition, what, within_s)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[Any]:
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def test_alerts_flow_from_kafka_to_http_and_sse(
    kafka_bootstrap: str, topic_prefix: str, producer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = ALERTS.name(topic_prefix)
    # History written before the API starts must be preloaded.
    await producer.send_and_wait(topic, _alert("old-1", "OLD111").SerializeToString(), key=b"old-1")

    port = free_port()
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_API_HOST": "127.0.0.1",
        "PLATEWATCH_API_PORT": str(port),
        # Nothing listens here: search/hotlist endpoints answer 503, alerts still work.
        "PLATEWATCH_SEARCH_GRPC_TARGET": f"127.0.0.1:{free_port()}",
        "PLATEWATCH_HOTLIST_GRPC_TARGET": f"127.0.0.1:{free_port()}",
        "PLATEWATCH_GRPC_TIMEOUT_SECONDS": "5",
        **ISSUER_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    stop = asyncio.Event()
    health = HealthState()
    server = asyncio.create_task(serve(stop, health))
    base = f"http://127.0.0.1:{port}"
    try:
        checks = await _until(
            lambda: (c := health.readiness()) and all(c.values()) and c,
            "API HTTP up, consumer assigned, governance state replayed",
        )
        assert set(checks) == {"api_http", "api_alert_consumer", "api_governance_state"}
        headers = process_headers("officer", "agency-a")
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=headers) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {
                "search": False,
                "hotlist": False,
                "alert_consumer": True,
                "governance_state": True,
            }
            search = await client.get("/api/v1/reads", params={"plate": "OLD111"})
            assert search.status_code == 503 and "search service unavailable" in search.json()["detail"]

            async def alert_ids() -> list[str]:
                response = await client.get("/api/v1/alerts")
                return [a["alert_id"] for a in response.json()["alerts"]]

            await _until(lambda: _contains(alert_ids(), "old-1"), "preloaded alert on GET /alerts")

            async with client.stream("GET", "/api/v1/alerts/stream") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = asyncio.create_task(_first_alert_event(stream.aiter_lines()))

                await producer.send_and_wait(topic, b"\x0a\x05ab", key=b"garbage")
                await producer.send_and_wait(
                    topic, _alert("new-1", "NEW111").SerializeToString(), key=b"new-1"
                )

                event = await asyncio.wait_for(events, WAIT)
                assert event["alert_id"] == "new-1"
                assert event["plate"] == "NEW111" and event["hotlist_name"] == "Integration list"
                assert event["reason"] == "stolen_plate" and event["match_kind"] == "exact"
                assert event["crop_url"] == "/api/v1/alerts/new-1/crop.jpg"

                ids = await alert_ids()
                assert ids[:2] == ["new-1", "old-1"]
                crop = await client.get(event["crop_url"])
                assert crop.status_code == 200 and crop.content == CROP

                # Shutting down with the stream open: the stream ends and serve() returns.
                stop.set()
                await asyncio.wait_for(server, 30)
        dead = await _dead_letters(kafka_bootstrap, ALERTS.dead_letter.name(topic_prefix))  # type: ignore[union-attr]
        assert [(r.key, dict(r.headers)["reason"]) for r in dead] == [(b"garbage", b"undecodable")]
    finally:
        stop.set()
        if not server.done():
            await asyncio.wait_for(server, 30)


async def _contains(ids: Any, wanted: str) -> bool:
    return wanted in await ids


async def _first_alert_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    """Data of the first `alert` event on an SSE stream."""
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "alert":
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("stream ended without an alert event")


async def _dead_letters(bootstrap: str, topic: str) -> list[Any]:
    """Everything on the dead-letter topic, waiting (bounded) for the first record to arrive."""
    consumer = make_consumer(bootstrap, f"test-dlq-{time.monotonic_ns()}", topic)
    await consumer.start()
    try:
        deadline = time.monotonic() + WAIT
        records: list[Any] = []
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            got = [r for batch in batches.values() for r in batch]
            records.extend(got)
            if records and not got:
                break
        return records
    finally:
        await consumer.stop()
