"""Audit, retention and transparency routes over AuditService (`/api/v1/audit/...`).

Who sees what:
* `audit.entries` (auditor only): the individual entries of the caller's OWN agency.
* `audit.read` (auditor, oversight): the chain verification status, the latest signed checkpoint,
  the agency's retention report and its transparency data. Oversight sees aggregate statistics
  only: individual entries (who searched what, for which case) are refused to it.
* supervisor and admin: place, list and release legal holds for their own agency.
Reading the audit log is itself audited (kind "audit_read").

The API never opens ClickHouse: everything goes through AuditService (PLATEWATCH_AUDIT_GRPC_TARGET).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field

from services.api.models import ErrorOut
from services.api.security import GovernanceDep, Principal, PrincipalDep, audit_action, refuse_rule, require
from services.audit.chain import from_micros
from services.audit.client import AuditEvent
from services.audit.grpc_service import checkpoint_from_proto, entry_from_proto
from services.audit.settings import AuditSettings
from services.common.pb.platewatch.v1 import audit_pb2, audit_pb2_grpc

API_PREFIX = "/api/v1"
router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated"},
    403: {"model": ErrorOut, "description": "Refused by a role rule"},
    503: {"model": ErrorOut, "description": "The audit service is unavailable"},
}
HOLD_ROLES = frozenset({"supervisor", "admin"})
MAX_ENTRIES = 1000
TIMEOUT_S = 30.0

AuditReader = Annotated[Principal, Depends(require("audit.read"))]
EntryReader = Annotated[Principal, Depends(require("audit.entries"))]


class AuditEntryOut(BaseModel):
    sequence: int
    prev_hash: str
    entry_hash: str
    event_id: str
    kind: str
    actor: str
    agency_id: str
    action: str
    outcome: str
    purpose_code: str
    case_number: str
    result_count: int
    details: dict[str, Any]
    occurred_at: datetime
    chained_at: datetime
    source: str


class AuditEntriesOut(BaseModel):
    entries: list[AuditEntryOut]


class CheckpointOut(BaseModel):
    sequence: int
    entry_hash: str
    created_at: datetime
    key_id: str
    signature: str = Field(description="Ed25519 signature, hex")
    public_key: str = Field(description="raw Ed25519 public key, hex")


class FindingOut(BaseModel):
    sequence: int
    kind: str
    detail: str


class VerificationOut(BaseModel):
    ok: bool
    entries: int
    first_sequence: int
    last_sequence: int
    head_hash: str
    checkpoints_checked: int
    findings: list[FindingOut]
    verified_at: str


class LegalHoldIn(BaseModel):
    case_number: str = Field(min_length=1, max_length=64)
    read_ids: list[str] = Field(min_length=1, max_length=10_000)
    reason: str = Field(default="", max_length=500)


class LegalHoldOut(BaseModel):
    hold_id: str
    agency_id: str
    case_number: str
    read_ids: list[str]
    reason: str
    placed_by: str
    placed_at: datetime | None
    released: bool
    released_by: str
    released_at: datetime | None


class LegalHoldsOut(BaseModel):
    holds: list[LegalHoldOut]


def _stub(request: Request) -> audit_pb2_grpc.AuditServiceStub:
    """The app's AuditService stub, created on first use (the channel connects lazily)."""
    stub: audit_pb2_grpc.AuditServiceStub | None = getattr(request.app.state, "audit_stub", None)
    if stub is None:
        target = AuditSettings().audit_grpc_target
        stub = audit_pb2_grpc.AuditServiceStub(grpc.aio.insecure_channel(target))
        request.app.state.audit_stub = stub
    return stub


async def _call(request: Request, method: str, message: Any) -> Any:
    try:
        return await getattr(_stub(request), method)(message, timeout=TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND:
            raise HTTPException(status.HTTP_404_NOT_FOUND, exc.details() or "not found") from exc
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, exc.details() or "invalid") from exc
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"audit service {method}: {code.name}: {exc.details()}"
        ) from exc


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def _hold_out(hold: audit_pb2.LegalHold) -> LegalHoldOut:
    return LegalHoldOut(
        hold_id=hold.hold_id,
        agency_id=hold.agency_id,
        case_number=hold.case_number,
        read_ids=list(hold.read_ids),
        reason=hold.reason,
        placed_by=hold.placed_by,
        placed_at=hold.placed_at.ToDatetime(UTC) if hold.HasField("placed_at") else None,
        released=hold.released,
        released_by=hold.released_by,
        released_at=hold.released_at.ToDatetime(UTC) if hold.HasField("released_at") else None,
    )


async def _audit_read(governance: Any, principal: Principal, action: str, count: int = 0) -> None:
    await audit_action(
        governance,
        AuditEvent(
            kind="audit_read",
            actor=principal.subject,
            agency_id=principal.agency_id,
            action=action,
            result_count=count,
        ),
    )


@router.get("/entries", response_model=AuditEntriesOut, responses=ERRORS)
async def list_entries(
    request: Request,
    principal: EntryReader,
    governance: GovernanceDep,
    from_sequence: Annotated[int, Query(ge=0)] = 0,
    to_sequence: Annotated[int, Query(ge=0)] = 0,
    kind: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=256)] = "",
    occurred_from: Annotated[datetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
) -> AuditEntriesOut:
    """Audit entries of the caller's agency, in chain order, filtered (auditor role only)."""
    message = audit_pb2.ListAuditEntriesRequest(
        from_sequence=from_sequence,
        to_sequence=to_sequence,
        agency_id=principal.agency_id,
        kind=kind,
        actor=actor,
        limit=limit,
    )
    if occurred_from is not None:
        getattr(message, "from").CopyFrom(_ts(occurred_from))
    if occurred_to is not None:
        message.to.CopyFrom(_ts(occurred_to))
    entries: list[AuditEntryOut] = []
    try:
        async for item in _stub(request).ListEntries(message, timeout=TIMEOUT_S):
            entry = entry_from_proto(item)
            try:
                details = json.loads(entry.details_json)
            except ValueError:
                details = {"raw": entry.details_json}
            entries.append(
                AuditEntryOut(
                    sequence=entry.sequence,
                    prev_hash=entry.prev_hash,
                    entry_hash=entry.entry_hash,
                    event_id=entry.event_id,
                    kind=entry.kind,
                    actor=entry.actor,
                    agency_id=entry.agency_id,
                    action=entry.action,
                    outcome=entry.outcome,
                    purpose_code=entry.purpose_code,
                    case_number=entry.case_number,
                    result_count=entry.result_count,
                    details=details,
                    occurred_at=from_micros(entry.occurred_at_us),
                    chained_at=from_micros(entry.chained_at_us),
                    source=entry.source,
                )
            )
    except grpc.aio.AioRpcError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"audit service ListEntries: {exc.code().name}"
        ) from exc
    await _audit_read(governance, principal, "GET /api/v1/audit/entries", len(entries))
    return AuditEntriesOut(entries=entries)


@router.get("/verification", response_model=VerificationOut, responses=ERRORS)
async def verification(
    request: Request, principal: AuditReader, governance: GovernanceDep
) -> VerificationOut:
    """Verify the whole chain and its signed checkpoints now (server-side; outsiders should run
    `platewatch audit verify` on an export with a pinned public key)."""
    response = await _call(request, "VerifyChain", audit_pb2.VerifyChainRequest())
    await _audit_read(governance, principal, "GET /api/v1/audit/verification")
    return VerificationOut.model_validate(json.loads(response.json))


@router.get("/checkpoint", response_model=CheckpointOut, responses={404: {"model": ErrorOut}, **ERRORS})
async def latest_checkpoint(request: Request, principal: AuditReader) -> CheckpointOut:
    """The latest signed checkpoint (hand it to an oversight board)."""
    checkpoint = checkpoint_from_proto(
        await _call(request, "GetCheckpoint", audit_pb2.GetAuditCheckpointRequest())
    )
    return CheckpointOut(
        sequence=checkpoint.sequence,
        entry_hash=checkpoint.entry_hash,
        created_at=from_micros(checkpoint.created_at_us),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature.hex(),
        public_key=checkpoint.public_key.hex(),
    )


@router.get("/retention", responses=ERRORS)
async def retention_report(request: Request, principal: AuditReader) -> dict[str, Any]:
    """The retention report of the caller's agency (rows past their limit must be 0)."""
    response = await _call(
        request, "RetentionReport", audit_pb2.RetentionReportRequest(agency_id=principal.agency_id)
    )
    report: dict[str, Any] = json.loads(response.json)
    return report


@router.get("/transparency", responses=ERRORS)
async def transparency(
    request: Request,
    principal: AuditReader,
    period_from: Annotated[datetime, Query(alias="from")],
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Transparency report data of the caller's agency for a period (aggregates only)."""
    message = audit_pb2.TransparencyDataRequest(agency_id=principal.agency_id)
    getattr(message, "from").CopyFrom(_ts(period_from))
    if period_to is not None:
        message.to.CopyFrom(_ts(period_to))
    response = await _call(request, "TransparencyData", message)
    data: dict[str, Any] = json.loads(response.json)
    return data


async def _hold_manager(request: Request, principal: PrincipalDep, governance: GovernanceDep) -> Principal:
    if not principal.has_any(HOLD_ROLES):
        raise await refuse_rule(
            governance,
            "role.holds.manage",
            f"roles {sorted(principal.roles)} do not allow managing legal holds",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=f"{request.method} {request.url.path}",
        )
    return principal


HoldManager = Annotated[Principal, Depends(_hold_manager)]


@router.get("/legal-holds", response_model=LegalHoldsOut, responses=ERRORS)
async def list_legal_holds(
    request: Request, principal: HoldManager, include_released: bool = False
) -> LegalHoldsOut:
    response = await _call(
        request,
        "ListLegalHolds",
        audit_pb2.ListLegalHoldsRequest(agency_id=principal.agency_id, include_released=include_released),
    )
    return LegalHoldsOut(holds=[_hold_out(hold) for hold in response.holds])


@router.post("/legal-holds", response_model=LegalHoldOut, status_code=201, responses=ERRORS)
async def place_legal_hold(request: Request, principal: HoldManager, body: LegalHoldIn) -> LegalHoldOut:
    """Keep exactly these reads of the caller's agency (and their images and alerts) past retention
    until released. Audited by the audit service."""
    hold = await _call(
        request,
        "PlaceLegalHold",
        audit_pb2.PlaceLegalHoldRequest(
            agency_id=principal.agency_id,
            case_number=body.case_number,
            read_ids=body.read_ids,
            reason=body.reason,
            actor=principal.subject,
        ),
    )
    return _hold_out(hold)


@router.post(
    "/legal-holds/{hold_id}/release",
    response_model=LegalHoldOut,
    responses={404: {"model": ErrorOut, "description": "No such active hold"}, **ERRORS},
)
async def release_legal_hold(request: Request, principal: HoldManager, hold_id: str) -> LegalHoldOut:
    listed = await _call(
        request, "ListLegalHolds", audit_pb2.ListLegalHoldsRequest(agency_id=principal.agency_id)
    )
    if hold_id not in {hold.hold_id for hold in listed.holds}:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no active hold {hold_id!r} of agency {principal.agency_id}"
        )
    hold = await _call(
        request,
        "ReleaseLegalHold",
        audit_pb2.ReleaseLegalHoldRequest(hold_id=hold_id, actor=principal.subject),
    )
    return _hold_out(hold)
