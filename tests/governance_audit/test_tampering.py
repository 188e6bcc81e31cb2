"""Tampering with the stored audit log (embedded ClickHouse) or with an export is detected and named
by sequence number and kind, through `verify_stored` and `platewatch audit verify --file`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from services.audit import store
from services.audit.chain import (
    GENESIS_HASH,
    Entry,
    chain_entry,
    public_key_pem,
    raw_public_key,
    sign_checkpoint,
)
from services.audit.verify import read_export, verify_stored, write_export
from services.cli import app

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000_000
KEY = Ed25519PrivateKey.generate()
PUBLIC = raw_public_key(KEY.public_key())


def build_log(client: Client, count: int = 12) -> list[Entry]:
    entries: list[Entry] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        entries.append(
            chain_entry(
                seq,
                prev,
                T0 + seq,
                {
                    "event_id": f"event-{seq}",
                    "kind": "search" if seq % 4 else "image_view",
                    "actor": "officer-1",
                    "agency_id": "agency-a",
                    "action": "POST /reads/search",
                    "outcome": "allowed",
                    "purpose_code": "stolen-vehicle",
                    "case_number": "C-1",
                    "result_count": seq,
                    "details_json": "{}",
                    "occurred_at_us": T0,
                    "source": "api",
                },
            )
        )
        prev = entries[-1].entry_hash
    store.insert_entries(client, entries)
    store.insert_checkpoint(client, sign_checkpoint(KEY, 6, entries[5].entry_hash, T0 + 6))
    store.insert_checkpoint(client, sign_checkpoint(KEY, count, entries[-1].entry_hash, T0 + count))
    return entries


def mutate(client: Client, sql: str) -> None:
    client.command(sql, settings={"mutations_sync": 2})


def findings(client: Client) -> set[tuple[int, str]]:
    return {(f.sequence, f.kind) for f in verify_stored(client, PUBLIC).findings}


def test_clean_stored_log_verifies(clickhouse_client: Client) -> None:
    build_log(clickhouse_client)
    result = verify_stored(clickhouse_client, PUBLIC)
    assert result.ok and result.last_sequence == 12 and result.checkpoints_checked == 2


def test_edited_entry_is_named(clickhouse_client: Client) -> None:
    build_log(clickhouse_client)
    mutate(clickhouse_client, "ALTER TABLE audit_log UPDATE result_count = 0 WHERE sequence = 5")
    assert findings(clickhouse_client) == {(5, "edited")}


def test_deleted_entry_is_named(clickhouse_client: Client) -> None:
    build_log(clickhouse_client)
    mutate(clickhouse_client, "ALTER TABLE audit_log DELETE WHERE sequence = 7")
    assert findings(clickhouse_client) == {(7, "deleted")}


def test_cut_tail_is_named_by_the_checkpoint(clickhouse_client: Client) -> None:
    build_log(clickhouse_client)
    mutate(clickhouse_client, "ALTER TABLE audit_log DELETE WHERE sequence >= 11")
    assert findings(clickhouse_client) == {(11, "deleted"), (12, "deleted")}


def test_inserted_entry_is_named(clickhouse_client: Client) -> None:
    entries = build_log(clickhouse_client)
    forged = chain_entry(8, entries[6].entry_hash, T0, {**entries[7].to_json(), "actor": "ghost"})
    store.insert_entries(clickhouse_client, [forged])
    assert findings(clickhouse_client) == {(8, "inserted")}


def test_reordered_entries_are_named(clickhouse_client: Client) -> None:
    entries = build_log(clickhouse_client)
    # The sequence is the sort key (not updatable): the attacker deletes and re-inserts swapped.
    mutate(clickhouse_client, "ALTER TABLE audit_log DELETE WHERE sequence IN (3, 4)")
    store.insert_entries(
        clickhouse_client, [replace(entries[3], sequence=3), replace(entries[2], sequence=4)]
    )
    assert findings(clickhouse_client) == {(3, "reordered"), (4, "reordered")}


def test_rewritten_log_is_caught_by_the_signed_checkpoint(clickhouse_client: Client) -> None:
    entries = build_log(clickhouse_client)
    mutate(clickhouse_client, "ALTER TABLE audit_log DELETE WHERE sequence >= 2")
    prev, rewritten = entries[0].entry_hash, []
    for entry in entries[1:]:
        fields = entry.to_json() | ({"actor": "ghost"} if entry.sequence == 2 else {})
        rewritten.append(chain_entry(entry.sequence, prev, entry.chained_at_us, fields))
        prev = rewritten[-1].entry_hash
    store.insert_entries(clickhouse_client, rewritten)
    assert findings(clickhouse_client) == {(6, "checkpoint"), (12, "checkpoint")}


def test_cli_verifies_an_export_and_names_tampering(clickhouse_client: Client, tmp_path: Path) -> None:
    build_log(clickhouse_client)
    export = tmp_path / "audit.jsonl"
    write_export(export, store.iter_entries(clickhouse_client), store.list_checkpoints(clickhouse_client))
    key_file = tmp_path / "public.pem"
    key_file.write_text(public_key_pem(KEY))
    runner = CliRunner()

    clean = runner.invoke(app, ["audit", "verify", "--file", str(export), "--public-key", str(key_file)])
    assert clean.exit_code == 0, clean.output
    assert "OK: the audit log verifies" in clean.output and "key pinned" in clean.output

    # Swap two lines of the export and edit a third.
    lines = export.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    lines[9] = lines[9].replace('"officer-1"', '"officer-2"')
    export.write_text("\n".join(lines) + "\n")
    entries, _ = read_export(export)
    assert [e.sequence for e in entries][3:7] == [4, 6, 5, 7]
    tampered = runner.invoke(app, ["audit", "verify", "--file", str(export), "--public-key", str(key_file)])
    assert tampered.exit_code == 1
    assert "sequence 5: reordered" in tampered.output
    assert "sequence 9: edited" in tampered.output


async def test_periodic_verification_exports_the_chain_state(clickhouse_client: Client) -> None:
    """The audit component's verifier sets the gauges Prometheus alerts on: 1 for a clean chain, 0 once
    an entry is edited."""
    import asyncio

    from services.audit.main import verify_periodically
    from services.common.metrics import AUDIT_CHAIN_LAST_VERIFIED, AUDIT_CHAIN_VERIFIED

    build_log(clickhouse_client)

    async def one_run() -> float:
        stop = asyncio.Event()
        stop.set()  # run once, then return instead of waiting for the next period
        await verify_periodically(clickhouse_client, 3600, stop)
        return float(AUDIT_CHAIN_VERIFIED._value.get())

    AUDIT_CHAIN_LAST_VERIFIED.set(0)
    assert await one_run() == 1.0
    assert AUDIT_CHAIN_LAST_VERIFIED._value.get() > 0
    mutate(clickhouse_client, "ALTER TABLE audit_log UPDATE actor = 'someone-else' WHERE sequence = 3")
    assert await one_run() == 0.0
