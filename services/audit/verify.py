"""Verification of a stored or exported audit log (shared by the CLI, AuditService and the API)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from services.audit import store
from services.audit.chain import Checkpoint, Entry, VerifyResult, verify_chain

EXPORT_FORMAT = "platewatch.audit.export.v1"


def pruned_through(entries: Iterable[Entry]) -> int:
    """The highest sequence that audit retention declared removed (0 when none): it records
    `{"data_class": "audit", "through_sequence": N}` in a retention_delete entry before deleting."""
    through = 0
    for entry in entries:
        if entry.kind != "retention_delete":
            continue
        try:
            details = json.loads(entry.details_json)
        except ValueError:
            continue
        if isinstance(details, dict) and details.get("data_class") == "audit":
            through = max(through, int(details.get("through_sequence", 0)))
    return through


def verify_entries(
    entries: Sequence[Entry], checkpoints: Sequence[Checkpoint], trusted_key: bytes | None = None
) -> VerifyResult:
    return verify_chain(entries, checkpoints, trusted_key, start_sequence=pruned_through(entries) + 1)


def verify_stored(client: Client, trusted_key: bytes | None = None) -> VerifyResult:
    """Verify the whole log in ClickHouse (loads it into memory)."""
    entries = list(store.iter_entries(client))
    return verify_entries(entries, store.list_checkpoints(client), trusted_key)


def write_export(path: Path, entries: Iterable[Entry], checkpoints: Iterable[Checkpoint]) -> int:
    """JSON lines: a header, then one {"entry": ...} per entry in delivered order, then one
    {"checkpoint": ...} per checkpoint. Returns the number of entries written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": EXPORT_FORMAT}) + "\n")
        for entry in entries:
            out.write(json.dumps({"entry": entry.to_json()}, ensure_ascii=False) + "\n")
            count += 1
        for checkpoint in checkpoints:
            out.write(json.dumps({"checkpoint": checkpoint.to_json()}) + "\n")
    return count


def read_export(path: Path) -> tuple[list[Entry], list[Checkpoint]]:
    entries: list[Entry] = []
    checkpoints: list[Checkpoint] = []
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            record: dict[str, Any] = json.loads(line)
            if number == 1:
                if record.get("format") != EXPORT_FORMAT:
                    raise ValueError(f"{path} is not a platewatch audit export")
            elif "entry" in record:
                entries.append(Entry.from_json(record["entry"]))
            elif "checkpoint" in record:
                checkpoints.append(Checkpoint.from_json(record["checkpoint"]))
    return entries, checkpoints
