"""The notifier's subscriber file, routing, payload and delivery loop (HTTP faked with
httpx.MockTransport; the Kafka side is covered by tests/integration/test_notifier.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.api.alert_workflow import apply_action
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.settings import REPO_ROOT
from services.notifier.delivery import RetryPolicy, Stopped, build_payload, deliver
from services.notifier.retry import Verdict
from services.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from services.notifier.subscribers import (
    Event,
    Subscriber,
    WebhooksFileError,
    delivery_id,
    load_subscribers,
    parse_subscribers,
)

CROP = b"\xff\xd8crop\xff\xd9"
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002, max_retry_after_s=0.01)


def _alert(agency: str = "pd-north") -> alerts_pb2.Alert:
    alert = alerts_pb2.Alert(
        alert_id="a1",
        read=reads_pb2.Read(
            read_id="r1", plate="7XY2AB", crop_jpeg=CROP, camera=common_pb2.CameraInfo(agency_id=agency)
        ),
        entry=hotlist_pb2.HotlistEntry(entry_id="e1", agency_id="state-police"),
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.FromDatetime(datetime(2025, 6, 1, tzinfo=UTC))
    return alert


def _subscriber(**overrides: object) -> Subscriber:
    fields: dict[str, object] = {
        "name": "cad",
        "url": "http://receiver.test/hook",
        "secret": "s3cret",
        "events": frozenset({Event.alert_raised, Event.alert_updated}),
    }
    fields.update(overrides)
    return Subscriber(**fields)  # type: ignore[arg-type]


# Subscribers file --------------------------------------------------------------------------------


def test_shipped_webhooks_file_has_no_subscribers() -> None:
    assert load_subscribers(REPO_ROOT / "deploy" / "webhooks.yaml", environ={}) == []


def test_subscribers_are_parsed_with_secrets_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        "subscribers:\n"
        "  - {name: cad, url: 'https://cad.example/h', secret_env: CAD_SECRET,"
        " events: [alert_raised, alert_updated], agencies: [pd-north]}\n"
        "  - {name: log, url: 'http://log.local:8000/x', secret_env: LOG_SECRET}\n"
    )
    cad, log = load_subscribers(path, environ={"CAD_SECRET": "a", "LOG_SECRET": "b"})
    assert cad == Subscriber("cad", "https://cad.example/h", "a", frozenset(Event), frozenset({"pd-north"}))
    assert (log.secret, log.events, log.agencies) == ("b", frozenset({Event.alert_raised}), frozenset())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "must be a mapping"),
        ({"subscribers": {}}, "must be a list"),
        ({"subscribers": [{"url": "http://x/", "secret_env": "S"}]}, "'name' is required"),
        ({"subscribers": [{"name": "a", "url": "ftp://x/", "secret_env": "S"}]}, "http\\(s\\) URL"),
        ({"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "UNSET"}]}, "UNSET .* not set"),
        (
            {"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "S", "events": ["x"]}]},
            "events are",
        ),
        (
            {"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "S", "events": []}]},
            "not be empty",
        ),
        ({"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "S", "agencies": "pd"}]}, "list"),
        (
            {"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "S", "retries": 3}]},
            "unknown keys",
        ),
        (
            {"subscribers": [{"name": "a", "url": "http://x/", "secret_env": "S"}] * 2},
            "duplicate name",
        ),
    ],
)
def test_invalid_subscribers_are_refused(document: object, message: str) -> None:
    with pytest.raises(WebhooksFileError, match=message):
        parse_subscribers(document, {"S": "secret"})


def test_missing_or_broken_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WebhooksFileError, match="cannot read"):
        load_subscribers(tmp_path / "nope.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("subscribers: [\n")
    with pytest.raises(WebhooksFileError, match="not valid YAML"):
        load_subscribers(broken, environ={})


# Routing and payload -----------------------------------------------------------------------------


def test_routing_by_event_and_agency() -> None:
    raised = _alert()
    confirmed = apply_action(raised, "confirm_visual", "op", datetime.now(UTC))
    only_new = _subscriber(events=frozenset({Event.alert_raised}))
    assert only_new.wants(raised) and not only_new.wants(confirmed)
    assert _subscriber().wants(confirmed)
    assert _subscriber(agencies=frozenset({"pd-north"})).wants(raised)
    # The hotlist entry's agency counts too.
    assert _subscriber(agencies=frozenset({"state-police"})).wants(raised)
    assert not _subscriber(agencies=frozenset({"pd-south"})).wants(raised)


def test_delivery_ids_differ_per_version_and_repeat_per_version() -> None:
    raised = _alert()
    visual = apply_action(raised, "confirm_visual", "op", datetime.now(UTC))
    outcome = apply_action(visual, "record_outcome", "op", datetime.now(UTC), outcome="stop")
    assert [delivery_id(a) for a in (raised, visual, outcome)] == [
        "a1:unconfirmed",
        "a1:confirmed_visual",
        "a1:confirmed_visual:stop",
    ]
    assert delivery_id(alerts_pb2.Alert(alert_id="x")) == "x:unconfirmed"


def test_payload_is_the_api_json_plus_event_and_crop() -> None:
    document = json.loads(build_payload(_alert(), include_crop=True))
    assert document["event"] == "alert_raised" and document["delivery_id"] == "a1:unconfirmed"
    assert document["alert"]["alert_id"] == "a1" and document["alert"]["plate"] == "7XY2AB"
    assert document["alert"]["status"] == "unconfirmed"
    assert base64.b64decode(document["crop_jpeg_base64"]) == CROP
    assert "crop_jpeg_base64" not in json.loads(build_payload(_alert(), include_crop=False))


# Delivery loop -----------------------------------------------------------------------------------


class Receiver:
    """Answers with the given statuses in turn (then 200), recording each request."""

    def __init__(self, *answers: int | Exception, headers: dict[str, str] | None = None) -> None:
        self.answers = list(answers)
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers=self.headers)


async def _deliver(receiver: Receiver, policy: RetryPolicy = FAST, stop: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    alert = _alert()
    body = build_payload(alert, include_crop=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        return await deliver(client, _subscriber(), alert, body, policy, stop or asyncio.Event())


async def test_retries_5xx_and_connection_errors_then_delivers_signed() -> None:
    receiver = Receiver(503, httpx.ConnectError("refused"), 500)
    result = await _deliver(receiver)
    # Three attempts allowed, three failures: given up, with the last error.
    assert result.verdict is Verdict.RETRY and result.attempts == 3 and result.last_error == "HTTP 500"
    receiver = Receiver(503, httpx.ConnectError("refused"))
    result = await _deliver(receiver)
    assert result.delivered and result.attempts == 3 and result.last_error == ""
    for request in receiver.requests:
        assert request.headers[DELIVERY_HEADER] == "a1:unconfirmed"
        assert verify_signature(
            "s3cret", request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER], request.content
        )


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_other_4xx_is_not_retried(status: int) -> None:
    receiver = Receiver(status)
    result = await _deliver(receiver)
    assert result.verdict is Verdict.REJECTED and result.attempts == 1
    assert result.last_error == f"HTTP {status}" and len(receiver.requests) == 1


async def test_429_is_retried_after_retry_after_capped_by_policy() -> None:
    receiver = Receiver(429, headers={"Retry-After": "3600"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await _deliver(receiver)
    assert result.delivered and result.attempts == 2
    # Waited the policy's ceiling (0.01 s), not an hour.
    assert loop.time() - started < 5


async def test_stop_during_backoff_abandons_the_delivery() -> None:
    stop = asyncio.Event()
    slow = RetryPolicy(max_attempts=5, initial_backoff_s=30, max_backoff_s=30)
    task = asyncio.create_task(_deliver(Receiver(503, 503), policy=slow, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    with pytest.raises(Stopped):
        await asyncio.wait_for(task, 5)
