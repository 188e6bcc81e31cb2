"""Legal holds: a case keeps exactly the listed reads (with their images and alerts) past retention.

A hold is placed by an agency for a case number on explicit read_ids; retention skips those rows
until the hold is released. Placing and releasing are audited (kind "legal_hold").
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from google.protobuf.timestamp_pb2 import Timestamp

from services.audit.client import AuditEvent, AuditRecorder
from services.common.pb.platewatch.v1 import audit_pb2

COLUMNS = [
    "hold_id",
    "agency_id",
    "case_number",
    "read_ids",
    "reason",
    "placed_by",
    "placed_at",
    "released",
    "released_by",
    "released_at",
    "updated_at",
]


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


@dataclass(frozen=True)
class Hold:
    hold_id: str
    agency_id: str
    case_number: str
    read_ids: tuple[str, ...]
    reason: str
    placed_by: str
    placed_at: datetime
    released: bool = False
    released_by: str = ""
    released_at: datetime | None = None

    def to_proto(self) -> audit_pb2.LegalHold:
        return audit_pb2.LegalHold(
            hold_id=self.hold_id,
            agency_id=self.agency_id,
            case_number=self.case_number,
            read_ids=list(self.read_ids),
            reason=self.reason,
            placed_by=self.placed_by,
            placed_at=_ts(self.placed_at),
            released=self.released,
            released_by=self.released_by,
            released_at=_ts(self.released_at),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_id": self.hold_id,
            "agency_id": self.agency_id,
            "case_number": self.case_number,
            "read_ids": list(self.read_ids),
            "reason": self.reason,
            "placed_by": self.placed_by,
            "placed_at": self.placed_at.isoformat(),
            "released": self.released,
            "released_by": self.released_by,
            "released_at": self.released_at.isoformat() if self.released_at else None,
        }


def _write(client: Client, hold: Hold) -> None:
    # The version is wall-clock time (not the injectable clock), so later changes always win.
    version = datetime.now(UTC)
    client.insert(
        "legal_holds",
        [
            [
                hold.hold_id,
                hold.agency_id,
                hold.case_number,
                list(hold.read_ids),
                hold.reason,
                hold.placed_by,
                hold.placed_at,
                hold.released,
                hold.released_by,
                hold.released_at,
                version,
            ]
        ],
        column_names=COLUMNS,
    )


def list_holds(client: Client, agency_id: str = "", include_released: bool = False) -> list[Hold]:
    conditions = ["1"]
    if agency_id:
        conditions.append("agency_id = {agency:String}")
    if not include_released:
        conditions.append("NOT released")
    rows = client.query(
        f"SELECT {', '.join(COLUMNS[:-1])} FROM legal_holds FINAL WHERE {' AND '.join(conditions)} "
        "ORDER BY placed_at",
        parameters={"agency": agency_id},
    ).result_rows
    return [
        Hold(
            hold_id=row[0],
            agency_id=row[1],
            case_number=row[2],
            read_ids=tuple(row[3]),
            reason=row[4],
            placed_by=row[5],
            placed_at=row[6],
            released=bool(row[7]),
            released_by=row[8],
            released_at=row[9],
        )
        for row in rows
    ]


def held_reads_sql(agency_param: str = "agency") -> str:
    """A subquery of the read_ids under an active hold of the agency bound to `agency_param`."""
    return (
        "(SELECT arrayJoin(read_ids) FROM legal_holds FINAL "
        f"WHERE agency_id = {{{agency_param}:String}} AND NOT released)"
    )


async def place_hold(
    client: Client,
    recorder: AuditRecorder | None,
    *,
    agency_id: str,
    case_number: str,
    read_ids: list[str],
    reason: str,
    actor: str,
    now: datetime,
) -> Hold:
    """Store a new hold (audited before it takes effect)."""
    hold = Hold(
        hold_id=uuid.uuid4().hex,
        agency_id=agency_id,
        case_number=case_number,
        read_ids=tuple(sorted(set(read_ids))),
        reason=reason,
        placed_by=actor,
        placed_at=now,
    )
    if recorder is not None:
        await recorder.record(
            AuditEvent(
                kind="legal_hold",
                actor=actor,
                agency_id=agency_id,
                action="legal_hold.place",
                case_number=case_number,
                result_count=len(hold.read_ids),
                details={"hold_id": hold.hold_id, "read_ids": list(hold.read_ids), "reason": reason},
            )
        )
    await asyncio.to_thread(_write, client, hold)
    return hold


async def release_hold(
    client: Client, recorder: AuditRecorder | None, hold_id: str, *, actor: str, now: datetime
) -> Hold | None:
    """Release an active hold; None when there is no such active hold."""
    active = [h for h in await asyncio.to_thread(list_holds, client) if h.hold_id == hold_id]
    if not active:
        return None
    hold = active[0]
    released = Hold(**{**hold.__dict__, "released": True, "released_by": actor, "released_at": now})
    if recorder is not None:
        await recorder.record(
            AuditEvent(
                kind="legal_hold",
                actor=actor,
                agency_id=hold.agency_id,
                action="legal_hold.release",
                case_number=hold.case_number,
                result_count=len(hold.read_ids),
                details={"hold_id": hold_id},
            )
        )
    await asyncio.to_thread(_write, client, released)
    return released
