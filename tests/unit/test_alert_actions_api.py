"""POST /api/v1/alerts/{alert_id}/actions over the in-memory broker, a recording publisher and an
in-process fake search service (for alerts no longer in the buffer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import httpx
import pytest

from services.api.app import create_app
from services.api.backends import Backends
from services.api.broker import AlertBroker
from services.api.publisher import AlertPublisher, PublishError
from services.api.security import Governance
from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, reads_pb2, search_pb2_grpc
from tests.governance.helpers import audit_events, auth_headers, make_governance

ACTIONS = "/api/v1/alerts/{}/actions"


class RecordingPublisher(AlertPublisher):
    """Keeps what would have gone to Kafka; fails while `failing` is set."""

    def __init__(self) -> None:
        super().__init__("unused:9092")
        self.published: list[alerts_pb2.Alert] = []
        self.failing = False

    async def publish(self, alert: alerts_pb2.Alert) -> None:
        await asyncio.sleep(0)  # let concurrent requests interleave here
        if self.failing:
            raise PublishError("Kafka is down")
        self.published.append(alert)


class StoredAlerts(search_pb2_grpc.SearchServiceServicer):
    def __init__(self) -> None:
        self.alerts: dict[str, alerts_pb2.Alert] = {}

    async def GetAlert(self, request, context):  # type: ignore[no-untyped-def]
        if request.alert_id not in self.alerts:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"alert {request.alert_id} not found")
        return self.alerts[request.alert_id]


@dataclass
class Api:
    client: httpx.AsyncClient
    broker: AlertBroker
    publisher: RecordingPublisher
    stored: StoredAlerts
    governance: Governance


def _alert(alert_id: str) -> alerts_pb2.Alert:
    alert = alerts_pb2.Alert(
        alert_id=alert_id,
        read=reads_pb2.Read(
            read_id=f"r-{alert_id}",
            plate="7XY2AB",
            camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="agency-a"),
        ),
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.GetCurrentTime()
    return alert


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    stored = StoredAlerts()
    server = grpc.aio.server()
    search_pb2_grpc.add_SearchServiceServicer_to_server(stored, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    settings = ApiSettings(search_grpc_target=f"127.0.0.1:{port}", grpc_timeout_seconds=5)
    backends = Backends.connect(settings)
    broker = AlertBroker()
    publisher = RecordingPublisher()
    governance = make_governance(settings)
    app = create_app(settings, backends=backends, broker=broker, publisher=publisher, governance=governance)
    transport = httpx.ASGITransport(app=app)
    # Steps are recorded under the authenticated caller (the body's actor is ignored).
    headers = auth_headers(governance, "officer", "agency-a", subject="op-1")
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
        yield Api(client, broker, publisher, stored, governance)
    await backends.close()
    await server.stop(None)


async def test_workflow_steps_publish_new_versions_and_refuse_dispatch_first(api: Api) -> None:
    api.broker.publish(_alert("a1"))
    refused = await api.client.post(ACTIONS.format("a1"), json={"action": "confirm_dispatch", "actor": "op"})
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "status is unconfirmed" in detail and "allowed actions: confirm_visual, dismiss_misread" in detail
    assert api.publisher.published == []

    confirmed = await api.client.post(
        ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op-1", "note": "crop matches"}
    )
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "confirmed_visual" and body["confirmed_by"] == "op-1"
    assert body["note"] == "crop matches" and body["updated_at"] is not None
    assert body["allowed_actions"] == ["confirm_dispatch", "dismiss_misread", "record_outcome"]
    (published,) = api.publisher.published
    assert published.alert_id == "a1" and published.status == alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL
    # The buffer has the new state at once (GET /alerts reflects it).
    listed = (await api.client.get("/api/v1/alerts")).json()["alerts"]
    assert [(a["alert_id"], a["status"]) for a in listed] == [("a1", "confirmed_visual")]

    dispatched = await api.client.post(
        ACTIONS.format("a1"), json={"action": "confirm_dispatch", "actor": "d"}
    )
    assert dispatched.status_code == 200 and dispatched.json()["status"] == "confirmed_dispatch"
    outcome = await api.client.post(
        ACTIONS.format("a1"), json={"action": "record_outcome", "actor": "op-1", "outcome": "arrest"}
    )
    assert outcome.status_code == 200 and outcome.json()["outcome"] == "arrest"
    assert outcome.json()["allowed_actions"] == []
    again = await api.client.post(
        ACTIONS.format("a1"), json={"action": "record_outcome", "actor": "op-1", "outcome": "stop"}
    )
    assert again.status_code == 409 and "outcome already recorded (arrest)" in again.json()["detail"]
    assert [a.status for a in api.publisher.published] == [
        alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL,
        alerts_pb2.ALERT_STATUS_CONFIRMED_DISPATCH,
        alerts_pb2.ALERT_STATUS_CONFIRMED_DISPATCH,
    ]
    audited = audit_events(api.governance).of_kind("alert_action")
    assert [(e.actor, e.action) for e in audited] == [
        ("op-1", "confirm_visual"),
        ("op-1", "confirm_dispatch"),
        ("op-1", "record_outcome"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "confirm_visual"},
        {"action": "confirm_visual", "actor": ""},
        {"action": "confirm_visual", "actor": "   "},
        {"action": "approve", "actor": "op"},
        {"action": "record_outcome", "actor": "op", "outcome": "released"},
    ],
)
async def test_malformed_actions_are_422(api: Api, body: dict[str, str]) -> None:
    api.broker.publish(_alert("a1"))
    response = await api.client.post(ACTIONS.format("a1"), json=body)
    assert response.status_code == 422, response.text
    assert api.publisher.published == []


async def test_outcome_missing_or_misplaced_is_422(api: Api) -> None:
    api.broker.publish(_alert("a1"))
    await api.client.post(ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op"})
    missing = await api.client.post(ACTIONS.format("a1"), json={"action": "record_outcome", "actor": "op"})
    assert missing.status_code == 422 and "needs an outcome" in missing.json()["detail"]
    misplaced = await api.client.post(
        ACTIONS.format("a1"), json={"action": "confirm_dispatch", "actor": "op", "outcome": "stop"}
    )
    assert misplaced.status_code == 422


async def test_alert_outside_the_buffer_comes_from_search_and_unknown_is_404(api: Api) -> None:
    api.stored.alerts["old"] = _alert("old")
    response = await api.client.post(ACTIONS.format("old"), json={"action": "dismiss_misread", "actor": "op"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dismissed_misread"
    unknown = await api.client.post(ACTIONS.format("nope"), json={"action": "confirm_visual", "actor": "op"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]


async def test_kafka_down_is_503_and_changes_nothing(api: Api) -> None:
    api.broker.publish(_alert("a1"))
    api.publisher.failing = True
    response = await api.client.post(ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op"})
    assert response.status_code == 503 and "Kafka is down" in response.json()["detail"]
    assert api.broker.get("a1").status == alerts_pb2.ALERT_STATUS_UNCONFIRMED  # type: ignore[union-attr]


async def test_concurrent_confirmations_one_wins_the_other_is_409(api: Api) -> None:
    api.broker.publish(_alert("a1"))
    first, second = await asyncio.gather(
        api.client.post(ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op-1"}),
        api.client.post(ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op-2"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert len(api.publisher.published) == 1


async def test_a_re_raised_alert_does_not_reset_the_buffer(api: Api) -> None:
    raised = _alert("a1")
    api.broker.publish(raised)
    await api.client.post(ACTIONS.format("a1"), json={"action": "confirm_visual", "actor": "op"})
    re_raised = _alert("a1")  # the hotlist replaying the read: a later raised_at, UNCONFIRMED
    assert not api.broker.publish(re_raised)
    assert api.broker.get("a1").status == alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL  # type: ignore[union-attr]


def test_live_stream_names_workflow_versions_alert_update() -> None:
    from services.api.alert_workflow import apply_action
    from services.api.app import _alert_event

    raised = _alert("a1")
    assert _alert_event(raised).event == "alert"
    confirmed = apply_action(raised, "confirm_visual", "op", datetime.now(UTC))
    event = _alert_event(confirmed)
    assert event.event == "alert_update" and event.id == "a1"
    assert '"status":"confirmed_visual"' in str(event.data)
