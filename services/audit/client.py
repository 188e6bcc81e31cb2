"""Recording audit events: what every service calls to put an action on the audit log.

    recorder = AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="api")
    await recorder.start()
    await recorder.record(AuditEvent(kind="search", actor=p.subject, agency_id=p.agency_id, ...))
    await recorder.stop()

`record` returns once the broker has the event on all in-sync replicas (acks=all, idempotent
producer): an action that must be audited should be recorded before its result is handed out, and
should fail if recording fails. The audit component (services/audit/main.py) gives each event its
place in the hash chain; recorders never coordinate with each other.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import make_producer
from services.common.metrics import MESSAGES_PRODUCED
from services.common.pb.platewatch.v1 import audit_pb2
from services.common.topics import AUDIT

log = logging.getLogger(__name__)

# Kinds used across the platform; other strings are accepted (the log is append-only, not an enum).
KNOWN_KINDS = frozenset(
    {
        "login",
        "search",
        "image_view",
        "export",
        "hotlist_change",
        "alert_action",
        "policy_change",
        "retention_delete",
        "refusal",
        "legal_hold",
        "sharing",
    }
)
Outcome = Literal["allowed", "refused"]


@dataclass(frozen=True)
class AuditEvent:
    """One auditable action. `details` must be JSON-serializable (it is stored as JSON text).

    For refusals set outcome="refused" and put the rule in details["rule"]; for searches put the
    parameters in details and the number of results in result_count; for cross-agency queries list
    the agencies actually queried in details["agency_ids"] (the transparency report counts partners
    from it)."""

    kind: str
    actor: str
    agency_id: str
    action: str
    outcome: Outcome = "allowed"
    purpose_code: str = ""
    case_number: str = ""
    result_count: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    event_id: str = ""

    def to_proto(self, source: str = "") -> audit_pb2.AuditEvent:
        """The wire form; fills event_id and occurred_at when they are unset."""
        occurred = self.occurred_at or datetime.now(UTC)
        ts = Timestamp()
        ts.FromDatetime(occurred.astimezone(UTC))
        return audit_pb2.AuditEvent(
            event_id=self.event_id or uuid.uuid4().hex,
            kind=self.kind,
            actor=self.actor,
            agency_id=self.agency_id,
            action=self.action,
            outcome=self.outcome,
            purpose_code=self.purpose_code,
            case_number=self.case_number,
            result_count=self.result_count,
            details_json=json.dumps(self.details, sort_keys=True, separators=(",", ":"), default=str),
            occurred_at=ts,
            source=source,
        )


class AuditRecorder:
    """Appends audit events to the AUDIT topic. One per process is enough; safe to share between
    tasks. `record` before `start` (or after `stop`) raises RuntimeError."""

    def __init__(self, bootstrap: str, topic_prefix: str = "", *, source: str = "") -> None:
        self._bootstrap = bootstrap
        self._topic = AUDIT.name(topic_prefix)
        self._source = source
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = make_producer(self._bootstrap, linger_ms=0)
        await producer.start()
        self._producer = producer

    async def record(self, event: AuditEvent) -> audit_pb2.AuditEvent:
        """Send `event` and wait until the broker has it durably; returns what was sent (with its
        event_id). Raises whatever the producer raises when the broker does not take it."""
        if self._producer is None:
            raise RuntimeError("AuditRecorder.record called before start()")
        message = event.to_proto(self._source)
        await self._producer.send_and_wait(
            self._topic, value=message.SerializeToString(), key=message.agency_id.encode()
        )
        MESSAGES_PRODUCED.labels(self._source or "audit-recorder", AUDIT.logical).inc()
        log.debug("audit event recorded", extra={"event_id": message.event_id, "kind": message.kind})
        return message

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> AuditRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
