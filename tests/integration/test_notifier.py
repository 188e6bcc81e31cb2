"""The notifier (`services.notifier.main.serve`) against a real Kafka broker and real HTTP receivers
in this process: a flaky receiver (503 twice, then OK) gets the alert exactly once with a valid
signature; a broken one (always 500) makes the alert land on the dead-letter topic with reason
webhook_failed; a subscriber of new alerts only does not get workflow updates; offsets are committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.api.alert_workflow import apply_action
from services.common.health import HealthState
from services.common.kafka import make_consumer, make_producer
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.common.topics import ALERTS
from services.notifier.main import CONSUMER_GROUP, serve
from services.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.waiting import until

WAIT = 60.0
SECRET = "integration-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receivers:
    """One HTTP server; the path picks the behaviour. /flaky: 503 on its first two requests."""

    url: str
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str, status: int | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path and (status is None or r.status == status)]


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    state = Receivers(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                earlier = sum(1 for r in state.requests if r.path == self.path)
                if self.path == "/flaky":
                    status = 503 if earlier < 2 else 200
                elif self.path == "/broken":
                    status = 500
                else:
                    status = 204
                state.requests.append(Received(self.path, dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _alert(alert_id: str) -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id=f"read-{alert_id}",
        plate="7XY2AB",
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="pd-test"),
        crop_jpeg=b"\xff\xd8crop\xff\xd9",
    )
    read.captured_at.GetCurrentTime()
    alert = alerts_pb2.Alert(
        alert_id=alert_id,
        read=read,
        entry=hotlist_pb2.HotlistEntry(entry_id="e1", hotlist_id="h1", plate="7XY2AB"),
        hotlist_name="Stolen",
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.GetCurrentTime()
    return alert


async def _until(condition: Callable[[], Any], what: str, within_s: float = WAIT) -> Any:
    return await until(condition, what, within_s)


@pytest.fixture
async def notifier(
    kafka_bootstrap: str,
    topic_prefix: str,
    receivers: Receivers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[asyncio.Task[None]]:
    webhooks = tmp_path / "webhooks.yaml"
    webhooks.write_text(
        "subscribers:\n"
        f"  - {{name: flaky, url: '{receivers.url}/flaky', secret_env: TEST_HOOK_SECRET,"
        " events: [alert_raised, alert_updated]}\n"
        f"  - {{name: broken, url: '{receivers.url}/broken', secret_env: TEST_HOOK_SECRET}}\n"
        f"  - {{name: other-agency, url: '{receivers.url}/other', secret_env: TEST_HOOK_SECRET,"
        " agencies: [pd-elsewhere]}\n"
    )
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_WEBHOOKS_FILE": str(webhooks),
        "PLATEWATCH_MAX_ATTEMPTS": "3",
        "PLATEWATCH_INITIAL_BACKOFF_S": "0.05",
        "PLATEWATCH_MAX_BACKOFF_S": "0.2",
        "PLATEWATCH_TIMEOUT_S": "5",
        "TEST_HOOK_SECRET": SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stop = asyncio.Event()
    health = HealthState()
    task = asyncio.create_task(serve(stop, health))
    await _until(lambda: task.done() or ((c := health.readiness()) and all(c.values())), "notifier assigned")
    if task.done():
        task.result()
    yield task
    stop.set()
    await asyncio.wait_for(task, 30)


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = make_consumer(bootstrap, group)
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(TopicPartition(topic, 0))
        return committed
    finally:
        await consumer.stop()


async def _dead_letters(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = make_consumer(bootstrap, f"test-dlq-{time.monotonic_ns()}", topic)
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + WAIT
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(r for batch in batches.values() for r in batch)
        return records
    finally:
        await consumer.stop()


async def test_retries_until_delivered_once_and_dead_letters_a_broken_receiver(
    kafka_bootstrap: str, topic_prefix: str, receivers: Receivers, notifier: asyncio.Task[None]
) -> None:
    topic = ALERTS.name(topic_prefix)
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        raised = _alert("alert-1")
        await producer.send_and_wait(topic, raised.SerializeToString(), key=b"alert-1")

        delivered = await _until(lambda: receivers.on("/flaky", 200), "delivery to the flaky receiver")
        assert [r.status for r in receivers.on("/flaky")] == [503, 503, 200]
        (accepted,) = delivered
        assert accepted.headers[DELIVERY_HEADER] == "alert-1:unconfirmed"
        assert verify_signature(
            SECRET, accepted.headers[TIMESTAMP_HEADER], accepted.headers[SIGNATURE_HEADER], accepted.body
        )
        assert not verify_signature(
            "wrong", accepted.headers[TIMESTAMP_HEADER], accepted.headers[SIGNATURE_HEADER], accepted.body
        )
        assert b'"alert_id":"alert-1"' in accepted.body and b'"event":"alert_raised"' in accepted.body

        dlq_topic = ALERTS.dead_letter.name(topic_prefix)  # type: ignore[union-attr]
        (dead,) = await _dead_letters(kafka_bootstrap, dlq_topic, 1)
        headers = {k: v.decode() for k, v in dead.headers}
        assert headers["reason"] == "webhook_failed" and headers["service"] == "notifier"
        assert "subscriber=broken" in headers["detail"] and "attempts=3" in headers["detail"]
        assert "HTTP 500" in headers["detail"]
        assert dead.key == b"alert-1" and alerts_pb2.Alert.FromString(dead.value) == raised
        assert len(receivers.on("/broken")) == 3

        # The offset is committed once both subscribers settled.
        group = topic_prefix + CONSUMER_GROUP
        await _until(
            lambda: _is(_committed(kafka_bootstrap, group, topic), 1), "offset committed after the alert"
        )

        # A workflow update goes to the subscriber of updates only; the agency filter holds.
        confirmed = apply_action(raised, "confirm_visual", "op-1", datetime.now(UTC))
        await producer.send_and_wait(topic, confirmed.SerializeToString(), key=b"alert-1")
        await _until(lambda: _is(_committed(kafka_bootstrap, group, topic), 2), "update processed")
        update = receivers.on("/flaky", 200)[-1]
        assert update.headers[DELIVERY_HEADER] == "alert-1:confirmed_visual"
        assert b'"event":"alert_updated"' in update.body and b'"confirmed_by":"op-1"' in update.body
        assert len(receivers.on("/broken")) == 3
        assert receivers.on("/other") == []
        # Exactly once: the first delivery was not repeated.
        assert [r.headers[DELIVERY_HEADER] for r in receivers.on("/flaky", 200)] == [
            "alert-1:unconfirmed",
            "alert-1:confirmed_visual",
        ]
    finally:
        await producer.stop()


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
