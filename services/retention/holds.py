"""Legal holds: a case keeps exactly the listed reads (with their images and alerts) past retention.

A hold is placed by an agency for a case number on explicit read_ids; retention skips those rows
until the hold is released. Placing and releasing are audited (kind "legal_hold").

The legal_holds table is the truth the retention job and report read. For the TTL backstop
(services/retention/ttl.py), whose expressions can only read a row's own columns, the held rows
are also marked `legal_hold = 1` (migration 0021): the agency's held reads, their images and
alerts, and their copies in reads_by_camera (same agency, camera, plate and second) and plates
(same agency and plate). `sync_hold_marks` makes the marks match the active holds:
* placing a hold marks its rows before it returns (set only);
* a release clears nothing itself: the retention job's next pass first deletes, audited, the
  released rows past their limit, then clears the marks of the rest. Clearing earlier would let
  ClickHouse drop released rows past the backstop unaudited (any mutation applies the TTL to the
  parts it rewrites); while the job is stopped released rows stay kept, which errs on keeping.
A hold keeps only its own agency's rows, as in the job.
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


@dataclass(frozen=True)
class _Marked:
    table: str
    # The row's key and its ClickHouse type, matched against the held reads' keys.
    key: str
    key_type: str


MARKED_TABLES = (
    _Marked("reads", "(agency_id, read_id)", "Array(Tuple(String, String))"),
    _Marked("read_images", "read_id", "Array(String)"),
    _Marked("alerts", "(agency_id, read_id)", "Array(Tuple(String, String))"),
    _Marked(
        "reads_by_camera",
        "(agency_id, camera_id, plate, captured_at)",
        "Array(Tuple(String, String, String, DateTime('UTC')))",
    ),
    _Marked("plates", "(agency_id, plate)", "Array(Tuple(String, String))"),
)


def _held_keys(client: Client) -> dict[str, list[Any]]:
    """Per marked table, the keys of the rows under an active hold of their own agency."""
    rows = client.query(
        "SELECT agency_id, read_id, camera_id, plate, toDateTime(captured_at, 'UTC') FROM reads "
        "WHERE (agency_id, read_id) IN "
        "(SELECT agency_id, arrayJoin(read_ids) FROM legal_holds FINAL WHERE NOT released)"
    ).result_rows
    return {
        "reads": sorted({(a, r) for a, r, _, _, _ in rows}),
        "read_images": sorted({r for _, r, _, _, _ in rows}),
        "alerts": sorted({(a, r) for a, r, _, _, _ in rows}),
        "reads_by_camera": sorted({(a, c, p, t) for a, _, c, p, t in rows}),
        "plates": sorted({(a, p) for a, _, _, p, _ in rows}),
    }


def sync_hold_marks(client: Client, clear: bool = True) -> dict[str, int]:
    """Set `legal_hold` on the rows under an active hold and, with `clear`, clear it on the rest.
    Returns {table: rows changed} for the tables changed. A mutation runs only where a mark is
    wrong (counted first), and waits until it is applied."""
    keys = _held_keys(client)
    changed: dict[str, int] = {}
    for spec in MARKED_TABLES:
        params = {"keys": keys[spec.table]}
        held = f"toUInt8(has({{keys:{spec.key_type}}}, {spec.key}))"
        wrong = [f"(legal_hold = 0 AND {held} = 1)"] if params["keys"] else []
        if clear:
            wrong.append(f"(legal_hold = 1 AND {held} = 0)")
        if not wrong:
            continue
        where = " OR ".join(wrong)
        query = f"SELECT count() FROM {spec.table} WHERE {where}"
        count = int(client.query(query, parameters=params).result_rows[0][0])
        if count == 0:
            continue
        client.command(
            f"ALTER TABLE {spec.table} UPDATE legal_hold = {held} WHERE {where}",
            parameters=params,
            settings={"mutations_sync": 2},
        )
        changed[spec.table] = count
    return changed


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
    # Marked before returning, so the TTL backstop keeps the rows from now on.
    await asyncio.to_thread(sync_hold_marks, client, False)
    return hold


async def release_hold(
    client: Client, recorder: AuditRecorder | None, hold_id: str, *, actor: str, now: datetime
) -> Hold | None:
    """Release an active hold; None when there is no such active hold. The rows' `legal_hold`
    marks are cleared by the retention job's next pass (see the module docstring)."""
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
