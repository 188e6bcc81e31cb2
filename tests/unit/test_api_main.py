"""API process wiring without Kafka: start-up failure surfaces, record handling feeds the broker."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from services.api.broker import AlertBroker
from services.api.consumer import AlertConsumer, consumer_group_id
from services.api.main import serve
from services.common.health import HealthState
from services.common.pb.platewatch.v1 import alerts_pb2
from services.common.topics import ALERTS

# Nothing listens on port 1: Kafka connections are refused at once, never reach a real broker.
NO_KAFKA = "127.0.0.1:1"


def _record(topic: str, offset: int, value: bytes) -> ConsumerRecord:  # type: ignore[type-arg]
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=(),
    )


async def test_serve_raises_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("PLATEWATCH_API_HOST", "127.0.0.1")
        monkeypatch.setenv("PLATEWATCH_API_PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("PLATEWATCH_KAFKA_BOOTSTRAP", NO_KAFKA)
        with pytest.raises(RuntimeError, match="could not start"):
            await asyncio.wait_for(serve(asyncio.Event(), HealthState()), 20)


async def test_serve_is_live_without_kafka_and_stops_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATEWATCH_API_HOST", "127.0.0.1")
    monkeypatch.setenv("PLATEWATCH_API_PORT", "0")
    monkeypatch.setenv("PLATEWATCH_KAFKA_BOOTSTRAP", NO_KAFKA)
    stop, health = asyncio.Event(), HealthState()
    task = asyncio.create_task(serve(stop, health))
    for _ in range(400):  # up to 20 s
        if health.readiness().get("api_http"):
            break
        await asyncio.sleep(0.05)
    assert health.readiness() == {
        "api_http": True,
        "api_alert_consumer": False,
        "api_governance_state": False,
    }
    stop.set()
    await asyncio.wait_for(task, 20)


def test_group_ids_are_unique_per_consumer() -> None:
    first, second = consumer_group_id(), consumer_group_id()
    assert first.startswith("api-") and first != second


async def test_records_feed_the_broker_and_preloaded_garbage_is_skipped() -> None:
    broker = AlertBroker()
    consumer = AlertConsumer(broker, NO_KAFKA, topic_prefix="p.")
    topic = ALERTS.name("p.")
    # As after assignment: offsets below 10 were preloaded history.
    consumer._live_from[TopicPartition(topic, 0)] = 10
    alert = alerts_pb2.Alert(alert_id="a1", hotlist_name="list")
    await consumer._handle(_record(topic, 3, alert.SerializeToString()))
    await consumer._handle(_record(topic, 4, b"\x0a\x05ab"))  # truncated: undecodable, preloaded
    assert [a.alert_id for a in broker.recent()] == ["a1"]
    assert consumer._producer is None  # no dead-letter attempt for history
