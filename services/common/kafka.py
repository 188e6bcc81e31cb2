"""Kafka plumbing: producers with acks=all and idempotence, consumers with manual commits,
protobuf decoding that routes anything undecodable to the topic's dead-letter topic."""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from google.protobuf.message import DecodeError, Message

from services.common.metrics import DEAD_LETTERS, MESSAGES_PRODUCED
from services.common.topics import Topic

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

# Headers `platewatch dlq replay` sets on re-sent messages; dead-lettering again carries them over.
REPLAY_COUNT_HEADER = "replay_count"
REPLAYED_FROM_HEADER = "replayed_from"
REPLAY_HEADERS = (REPLAY_COUNT_HEADER, REPLAYED_FROM_HEADER)

# Producer batches and requests must hold the largest frame a topic accepts.
MAX_REQUEST_BYTES = 16_777_216


def make_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that never loses or duplicates on retry: acks=all plus idempotence."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_request_size": MAX_REQUEST_BYTES,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(bootstrap: str, group_id: str | None, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer with manual commits (commit only after the work is durable) that only sees
    committed transactional writes. `group_id=None` gives a plain reader for assigned partitions."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_partition_fetch_bytes": MAX_REQUEST_BYTES,
        "fetch_max_bytes": 4 * MAX_REQUEST_BYTES,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


class DeadLetterError(Exception):
    """Raised by processing code for a message that can never succeed; the reason goes in the header."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def decode(topic: Topic, value: bytes | None) -> Message:
    """Parse a message value with the topic's schema; DeadLetterError when it does not parse."""
    if topic.schema is None:
        raise TypeError(f"topic {topic.logical} has no schema")
    if value is None:
        raise DeadLetterError("empty_value")
    message = topic.schema()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:
        raise DeadLetterError("undecodable", str(exc)) from exc
    return message


async def send_dead_letter(
    producer: AIOKafkaProducer,
    topic: Topic,
    record: ConsumerRecord,
    error: DeadLetterError,
    *,
    service: str,
    prefix: str = "",
) -> None:
    """Copy the original message to the dead-letter topic with why, where from and when, and wait
    until the broker has it (the caller commits the source offset afterwards)."""
    if topic.dead_letter is None:
        raise ValueError(f"topic {topic.logical} has no dead-letter topic")
    headers = [
        ("reason", error.reason.encode()),
        ("detail", error.detail[:1000].encode()),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("service", service.encode()),
        ("failed_at_ms", str(int(time.time() * 1000)).encode()),
    ]
    # A replayed message that fails again keeps its replay lineage, so the replay loop guard holds.
    headers += [(name, value) for name, value in (record.headers or ()) if name in REPLAY_HEADERS]
    await producer.send_and_wait(
        topic.dead_letter.name(prefix), value=record.value, key=record.key, headers=headers
    )
    DEAD_LETTERS.labels(service, topic.logical, error.reason).inc()
    MESSAGES_PRODUCED.labels(service, topic.dead_letter.logical).inc()
    log.warning(
        "message sent to dead-letter topic",
        extra={
            "reason": error.reason,
            "detail": error.detail,
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        },
    )
