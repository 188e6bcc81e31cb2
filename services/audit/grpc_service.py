"""AuditService: the one way other processes read the audit log, holds and governance reports.

The audit component (storage process) owns ClickHouse with the embedded engine, so the CLI
(`platewatch audit verify/export`, `platewatch retention ...`, `platewatch transparency-report`)
and the API reach the stored log through this service.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NoReturn, TypeVar

import grpc
from clickhouse_connect.driver.client import Client
from google.protobuf.timestamp_pb2 import Timestamp

from services.audit import store
from services.audit.chain import Checkpoint, Entry, from_micros
from services.audit.client import AuditRecorder
from services.audit.settings import AuditSettings
from services.audit.verify import verify_stored
from services.common.pb.platewatch.v1 import audit_pb2, audit_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")
_CHUNK = 1000


def _ts(micros: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(from_micros(micros))
    return ts


def _micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def entry_to_proto(entry: Entry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        sequence=entry.sequence,
        prev_hash=entry.prev_hash,
        entry_hash=entry.entry_hash,
        chained_at=_ts(entry.chained_at_us),
        event=audit_pb2.AuditEvent(
            event_id=entry.event_id,
            kind=entry.kind,
            actor=entry.actor,
            agency_id=entry.agency_id,
            action=entry.action,
            outcome=entry.outcome,
            purpose_code=entry.purpose_code,
            case_number=entry.case_number,
            result_count=entry.result_count,
            details_json=entry.details_json,
            occurred_at=_ts(entry.occurred_at_us),
            source=entry.source,
        ),
    )


def entry_from_proto(message: audit_pb2.AuditEntry) -> Entry:
    event = message.event
    return Entry(
        sequence=message.sequence,
        prev_hash=message.prev_hash,
        entry_hash=message.entry_hash,
        event_id=event.event_id,
        kind=event.kind,
        actor=event.actor,
        agency_id=event.agency_id,
        action=event.action,
        outcome=event.outcome,
        purpose_code=event.purpose_code,
        case_number=event.case_number,
        result_count=event.result_count,
        details_json=event.details_json,
        occurred_at_us=_micros(event.occurred_at),
        source=event.source,
        chained_at_us=_micros(message.chained_at),
    )


def checkpoint_to_proto(checkpoint: Checkpoint) -> audit_pb2.AuditCheckpoint:
    return audit_pb2.AuditCheckpoint(
        sequence=checkpoint.sequence,
        entry_hash=checkpoint.entry_hash,
        created_at=_ts(checkpoint.created_at_us),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
        public_key=checkpoint.public_key,
    )


def checkpoint_from_proto(message: audit_pb2.AuditCheckpoint) -> Checkpoint:
    return Checkpoint(
        sequence=message.sequence,
        entry_hash=message.entry_hash,
        created_at_us=_micros(message.created_at),
        key_id=message.key_id,
        signature=message.signature,
        public_key=message.public_key,
    )


def _take(iterator: Iterator[T]) -> list[T]:
    return list(islice(iterator, _CHUNK))


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Serves once `attach` gave it the process's ClickHouse client; UNAVAILABLE before."""

    def __init__(
        self, settings: AuditSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._client: Client | None = None
        self.recorder = AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="audit")

    async def attach(self, client: Client) -> None:
        await self.recorder.start()
        self._client = client

    async def close(self) -> None:
        await self.recorder.stop()

    async def _require_client(self, context: grpc.aio.ServicerContext) -> Client:
        if self._client is None:
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "audit storage not open yet")
        assert self._client is not None
        return self._client

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, detail: str) -> NoReturn:
        await context.abort(code, detail)
        raise AssertionError("context.abort returned")

    async def ListEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[audit_pb2.AuditEntry]:
        client = await self._require_client(context)
        entries = store.iter_entries(
            client,
            request.from_sequence,
            request.to_sequence,
            agency_id=request.agency_id,
            kind=request.kind,
            actor=request.actor,
            from_us=_micros(getattr(request, "from")) if request.HasField("from") else 0,
            to_us=_micros(request.to) if request.HasField("to") else 0,
            limit=request.limit,
        )
        while True:
            chunk = await asyncio.to_thread(_take, entries)
            for entry in chunk:
                yield entry_to_proto(entry)
            if len(chunk) < _CHUNK:
                return

    async def GetCheckpoint(
        self, request: audit_pb2.GetAuditCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.AuditCheckpoint:
        client = await self._require_client(context)
        checkpoint = await asyncio.to_thread(store.get_checkpoint, client, request.sequence)
        if checkpoint is None:
            await self._abort(context, grpc.StatusCode.NOT_FOUND, "no such checkpoint")
        return checkpoint_to_proto(checkpoint)

    async def ListCheckpoints(
        self, request: audit_pb2.ListAuditCheckpointsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[audit_pb2.AuditCheckpoint]:
        client = await self._require_client(context)
        for checkpoint in await asyncio.to_thread(store.list_checkpoints, client):
            yield checkpoint_to_proto(checkpoint)

    async def VerifyChain(
        self, request: audit_pb2.VerifyChainRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.JsonReport:
        client = await self._require_client(context)
        result = await asyncio.to_thread(verify_stored, client)
        payload = result.to_json() | {"verified_at": self.clock().isoformat()}
        return audit_pb2.JsonReport(json=json.dumps(payload))

    # --- legal holds and retention (services/retention) -------------------------------------------

    async def PlaceLegalHold(
        self, request: audit_pb2.PlaceLegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.LegalHold:
        from services.retention import holds

        client = await self._require_client(context)
        if not request.agency_id or not request.case_number or not request.read_ids:
            await self._abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "agency_id, case_number and read_ids are required"
            )
        hold = await holds.place_hold(
            client,
            self.recorder,
            agency_id=request.agency_id,
            case_number=request.case_number,
            read_ids=list(request.read_ids),
            reason=request.reason,
            actor=request.actor or "unknown",
            now=self.clock(),
        )
        return hold.to_proto()

    async def ReleaseLegalHold(
        self, request: audit_pb2.ReleaseLegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.LegalHold:
        from services.retention import holds

        client = await self._require_client(context)
        hold = await holds.release_hold(
            client, self.recorder, request.hold_id, actor=request.actor or "unknown", now=self.clock()
        )
        if hold is None:
            await self._abort(context, grpc.StatusCode.NOT_FOUND, f"no active hold {request.hold_id!r}")
        return hold.to_proto()

    async def ListLegalHolds(
        self, request: audit_pb2.ListLegalHoldsRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListLegalHoldsResponse:
        from services.retention import holds

        client = await self._require_client(context)
        found = await asyncio.to_thread(holds.list_holds, client, request.agency_id, request.include_released)
        return audit_pb2.ListLegalHoldsResponse(holds=[hold.to_proto() for hold in found])

    async def RetentionReport(
        self, request: audit_pb2.RetentionReportRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.JsonReport:
        from services.retention.job import RetentionSettings, retention_report
        from services.retention.policy_source import load_configured_policy

        client = await self._require_client(context)
        policy = load_configured_policy(RetentionSettings())
        report = await asyncio.to_thread(
            retention_report, client, policy, self.clock(), request.agency_id or None
        )
        return audit_pb2.JsonReport(json=json.dumps(report))

    async def RunRetention(
        self, request: audit_pb2.RunRetentionRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.JsonReport:
        from services.retention.job import RetentionSettings, run_retention
        from services.retention.policy_source import load_configured_policy

        client = await self._require_client(context)
        policy = load_configured_policy(RetentionSettings())
        summary = await run_retention(client, policy, self.clock(), self.recorder)
        return audit_pb2.JsonReport(json=json.dumps(summary))

    async def TransparencyData(
        self, request: audit_pb2.TransparencyDataRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.JsonReport:
        from services.retention.job import RetentionSettings
        from services.retention.policy_source import load_configured_policy
        from services.transparency.data import gather

        client = await self._require_client(context)
        if not request.agency_id:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, "agency_id is required")
        start = from_micros(_micros(getattr(request, "from")))
        end = from_micros(_micros(request.to)) if request.HasField("to") else self.clock()
        policy = load_configured_policy(RetentionSettings())
        data: dict[str, Any] = await asyncio.to_thread(
            gather, client, policy, request.agency_id, start, end, self.clock()
        )
        return audit_pb2.JsonReport(json=json.dumps(data, default=str))
