"""ClickHouse access for the audit log and its checkpoints (tables from migration 0020).

Blocking functions: callers in async code run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from services.audit.chain import GENESIS_HASH, Checkpoint, Entry

ENTRY_COLUMNS = list(Entry.__dataclass_fields__)
CHECKPOINT_COLUMNS = [
    "sequence",
    "entry_hash",
    "created_at_us",
    "key_id",
    "signature_hex",
    "public_key_hex",
]
_PAGE = 5000


@dataclass(frozen=True)
class Head:
    """The last entry of the chain (sequence 0 and GENESIS_HASH when the log is empty)."""

    sequence: int
    entry_hash: str


def read_head(client: Client) -> Head:
    rows = client.query(
        "SELECT sequence, entry_hash FROM audit_log ORDER BY sequence DESC LIMIT 1"
    ).result_rows
    if not rows:
        return Head(0, GENESIS_HASH)
    return Head(int(rows[0][0]), str(rows[0][1]))


def recent_event_ids(client: Client, after_sequence: int) -> set[str]:
    """event_ids chained after `after_sequence` (the window a redelivery can repeat)."""
    rows = client.query(
        "SELECT event_id FROM audit_log WHERE sequence > {after:UInt64}", parameters={"after": after_sequence}
    ).result_rows
    return {str(row[0]) for row in rows}


def insert_entries(client: Client, entries: list[Entry]) -> None:
    """Insert chained entries; the dedup token makes a retried insert of the same range a no-op."""
    if not entries:
        return
    token = f"audit/{entries[0].sequence}-{entries[-1].sequence}/{entries[-1].entry_hash}"
    client.insert(
        "audit_log",
        [[getattr(entry, name) for name in ENTRY_COLUMNS] for entry in entries],
        column_names=ENTRY_COLUMNS,
        settings={"insert_deduplication_token": token},
    )


def _entry(row: Sequence[Any]) -> Entry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    for name in ("sequence", "result_count", "occurred_at_us", "chained_at_us"):
        values[name] = int(values[name])
    return Entry(**values)


def iter_entries(
    client: Client,
    from_sequence: int = 0,
    to_sequence: int = 0,
    *,
    agency_id: str = "",
    kind: str = "",
    actor: str = "",
    from_us: int = 0,
    to_us: int = 0,
    limit: int = 0,
) -> Iterator[Entry]:
    """Entries in sequence order, paged by sequence (rows as stored, duplicates included).
    `agency_id`: that agency's entries and the platform-wide ones (stored with an empty agency)."""
    conditions = ["sequence >= {lo:UInt64}"]
    params: dict[str, Any] = {}
    if to_sequence:
        conditions.append("sequence <= {hi:UInt64}")
        params["hi"] = to_sequence
    if agency_id:
        # Platform-wide entries (empty agency, e.g. the policy in force) concern every agency.
        conditions.append("agency_id IN ({agency_id:String}, '')")
        params["agency_id"] = agency_id
    for column, value in (("kind", kind), ("actor", actor)):
        if value:
            conditions.append(f"{column} = {{{column}:String}}")
            params[column] = value
    if from_us:
        conditions.append("occurred_at_us >= {from_us:Int64}")
        params["from_us"] = from_us
    if to_us:
        conditions.append("occurred_at_us < {to_us:Int64}")
        params["to_us"] = to_us
    where = " AND ".join(conditions)
    sql = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM audit_log WHERE {where} ORDER BY sequence, entry_hash"
    sent = 0
    low = max(from_sequence, 0)
    while True:
        rows = client.query(f"{sql} LIMIT {_PAGE}", parameters={**params, "lo": low}).result_rows
        full = len(rows) == _PAGE
        if full:
            # The next page starts at the last sequence of this one again, so every row of a run
            # of equal sequence numbers (forged duplicates) arrives together.
            last = int(rows[-1][0])
            kept = [row for row in rows if int(row[0]) != last]
            rows, low = (kept, last) if kept else (rows, last + 1)
        for row in rows:
            if limit and sent >= limit:
                return
            yield _entry(row)
            sent += 1
        if not full:
            return


def insert_checkpoint(client: Client, checkpoint: Checkpoint) -> None:
    client.insert(
        "audit_checkpoints",
        [
            [
                checkpoint.sequence,
                checkpoint.entry_hash,
                checkpoint.created_at_us,
                checkpoint.key_id,
                checkpoint.signature.hex(),
                checkpoint.public_key.hex(),
            ]
        ],
        column_names=CHECKPOINT_COLUMNS,
    )


def _checkpoint(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(
        sequence=int(row[0]),
        entry_hash=str(row[1]),
        created_at_us=int(row[2]),
        key_id=str(row[3]),
        signature=bytes.fromhex(str(row[4])),
        public_key=bytes.fromhex(str(row[5])),
    )


def list_checkpoints(client: Client) -> list[Checkpoint]:
    rows = client.query(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM audit_checkpoints FINAL ORDER BY sequence"
    ).result_rows
    return [_checkpoint(row) for row in rows]


def get_checkpoint(client: Client, sequence: int = 0) -> Checkpoint | None:
    """The checkpoint at `sequence`, or the latest when 0."""
    where = "WHERE sequence = {seq:UInt64}" if sequence else ""
    rows = client.query(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM audit_checkpoints FINAL {where} "
        "ORDER BY sequence DESC LIMIT 1",
        parameters={"seq": sequence},
    ).result_rows
    return _checkpoint(rows[0]) if rows else None
