"""The alert workflow through the API process (`services.api.main.serve`: HTTP + the real alert
consumer) against a real Kafka broker: dispatch before a visual confirmation is refused, each
accepted step is on the ALERTS topic, in GET /alerts and on the live stream as `alert_update`, the
hotlist re-raising the alert does not undo the confirmation, and the outcome is recorded once."""

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


def _alert(alert_id: str) -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id=f"read-{alert_id}",
        plate="7XY2AB",
        confidence=0.9,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="pd-test", name="Gate"),
        crop_jpeg=b"\xff\xd8crop\xff\xd9",
    )
    read.captured_at.GetCurrentTime()
    alert = alerts_pb2.Alert(
        alert_id=alert_id,
        read=read,
        entry=hotlist_pb2.HotlistEntry(entry_id="e1", hotlist_id="h1", plate="7XY2AB"),
        hotlist_name="Stolen",
        match_kind=alerts_pb2.MATCH_KIND_EXACT,
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.GetCurrentTime()
    return alert


async def _until(condition: Callable[[], Any], what: str, within_s: float = WAIT) -> Any:
    return await until(condition, what, within_s)


@pytest.fixture
async def api(
    kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_API_HOST": "127.0.0.1",
        "PLATEWATCH_API_PORT": str(port),
        # No search service: alerts outside the buffer cannot be looked up (503), the rest works.
        "PLATEWATCH_SEARCH_GRPC_TARGET": f"127.0.0.1:{free_port()}",
        "PLATEWATCH_HOTLIST_GRPC_TARGET": f"127.0.0.1:{free_port()}",
        "PLATEWATCH_GRPC_TIMEOUT_SECONDS": "3",
        **ISSUER_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = asyncio.Event()
    health = HealthState()
    server = asyncio.create_task(serve(stop, health))
    try:
        await _until(
            lambda: server.done() or ((c := health.readiness()) and all(c.values())), "API up and assigned"
        )
        if server.done():
            server.result()
        # Steps are recorded under the authenticated officer (op-1 unless a request says otherwise).
        headers = process_headers("officer", "pd-test", subject="op-1")
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=20, headers=headers) as client:
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


async def _statuses(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/alerts")
    return {a["alert_id"]: a for a in response.json()["alerts"]}


async def _events(lines: AsyncIterator[str], into: list[tuple[str, dict[str, Any]]]) -> None:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            into.append((event, json.loads(line.removeprefix("data: "))))


async def test_confirm_dispatch_outcome_through_kafka(
    kafka_bootstrap: str, topic_prefix: str, api: httpx.AsyncClient
) -> None:
    topic = ALERTS.name(topic_prefix)
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    watcher = make_consumer(kafka_bootstrap, None, topic)
    await watcher.start()
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        async with api.stream("GET", "/api/v1/alerts/stream") as stream:
            reader = asyncio.create_task(_events(stream.aiter_lines(), events))
            raised = _alert("alert-1")
            await producer.send_and_wait(topic, raised.SerializeToString(), key=b"alert-1")
            await _until(
                lambda: _has(_statuses(api), "alert-1", "unconfirmed"), "raised alert on GET /alerts"
            )

            refused = await api.post(
                "/api/v1/alerts/alert-1/actions", json={"action": "confirm_dispatch", "actor": "op-1"}
            )
            assert refused.status_code == 409, refused.text
            assert "status is unconfirmed" in refused.json()["detail"]
            assert "confirm_visual" in refused.json()["detail"]

            missing_actor = await api.post(
                "/api/v1/alerts/alert-1/actions", json={"action": "confirm_visual", "actor": ""}
            )
            assert missing_actor.status_code == 422

            confirmed = await api.post(
                "/api/v1/alerts/alert-1/actions",
                json={"action": "confirm_visual", "actor": "op-1", "note": "crop matches"},
            )
            assert confirmed.status_code == 200, confirmed.text
            assert confirmed.json()["status"] == "confirmed_visual"
            assert confirmed.json()["confirmed_by"] == "op-1"

            # On the topic: the raised alert, then its confirmed version (acknowledged before the reply).
            on_topic = await _read(watcher, 2)
            assert [a.status for a in on_topic] == [
                alerts_pb2.ALERT_STATUS_UNCONFIRMED,
                alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL,
            ]
            assert on_topic[1].alert_id == "alert-1" and on_topic[1].confirmed_by == "op-1"
            assert on_topic[1].note == "crop matches" and on_topic[1].HasField("updated_at")
            assert on_topic[1].read.crop_jpeg == raised.read.crop_jpeg

            # The hotlist re-raising the alert (replay) does not reset it; a later alert shows the
            # consumer has read past the re-raise.
            await producer.send_and_wait(topic, _alert("alert-1").SerializeToString(), key=b"alert-1")
            await producer.send_and_wait(topic, _alert("alert-2").SerializeToString(), key=b"alert-2")
            await _until(lambda: _has(_statuses(api), "alert-2", "unconfirmed"), "sentinel alert")
            assert (await _statuses(api))["alert-1"]["status"] == "confirmed_visual"

            outcome = await api.post(
                "/api/v1/alerts/alert-1/actions",
                json={"action": "record_outcome", "actor": "op-2", "outcome": "stop"},
                headers=process_headers("officer", "pd-test", subject="op-2"),
            )
            assert outcome.status_code == 200, outcome.text
            listed = (await _statuses(api))["alert-1"]
            assert (listed["status"], listed["outcome"], listed["outcome_recorded_by"]) == (
                "confirmed_visual",
                "stop",
                "op-2",
            )
            assert listed["allowed_actions"] == []
            again = await api.post(
                "/api/v1/alerts/alert-1/actions",
                json={"action": "record_outcome", "actor": "op-2", "outcome": "arrest"},
                headers=process_headers("officer", "pd-test", subject="op-2"),
            )
            assert again.status_code == 409 and "outcome already recorded" in again.json()["detail"]
            (last,) = [a for a in await _read(watcher, 3) if a.alert_id == "alert-1"][-1:]
            assert last.outcome == alerts_pb2.ALERT_OUTCOME_STOP

            # Unknown alert with the search service down: the API says so instead of guessing.
            unknown = await api.post(
                "/api/v1/alerts/nope/actions", json={"action": "confirm_visual", "actor": "op-1"}
            )
            assert unknown.status_code == 503

            await _until(
                lambda: sum(1 for kind, _ in events if kind == "alert_update") >= 2, "alert_update events"
            )
            reader.cancel()
        updates = [data for kind, data in events if kind == "alert_update"]
        assert [(u["alert_id"], u["status"], u["outcome"]) for u in updates] == [
            ("alert-1", "confirmed_visual", ""),
            ("alert-1", "confirmed_visual", "stop"),
        ]
        raised_events = [data["alert_id"] for kind, data in events if kind == "alert"]
        # The re-raise of alert-1 was not pushed as news.
        assert raised_events == ["alert-1", "alert-2"]
    finally:
        await watcher.stop()
        await producer.stop()


async def _has(statuses: Any, alert_id: str, status: str) -> bool:
    found = (await statuses).get(alert_id)
    return bool(found and found["status"] == status)


async def _read(consumer: Any, count: int) -> list[alerts_pb2.Alert]:
    """The next `count` alerts on the topic (bounded wait)."""
    alerts: list[alerts_pb2.Alert] = []
    deadline = time.monotonic() + WAIT
    while len(alerts) < count and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        alerts.extend(alerts_pb2.Alert.FromString(r.value) for b in batches.values() for r in b)
    assert len(alerts) >= count, f"expected {count} alerts on the topic, got {len(alerts)}"
    return alerts
