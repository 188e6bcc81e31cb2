"""Hash chain and checkpoint verification on in-memory entries (no servers)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.chain import (
    GENESIS_HASH,
    Entry,
    chain_entry,
    checkpoint_signature_ok,
    raw_public_key,
    sign_checkpoint,
    verify_chain,
)

T0 = 1_767_225_600_000_000


def make_log(count: int) -> list[Entry]:
    entries: list[Entry] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        entry = chain_entry(
            seq,
            prev,
            T0 + seq * 1000,
            {
                "event_id": f"e{seq}",
                "kind": "search",
                "actor": f"officer{seq % 3}",
                "agency_id": "agency-a",
                "action": "POST /reads/search",
                "outcome": "allowed",
                "purpose_code": "stolen-vehicle",
                "case_number": f"C-{seq}",
                "result_count": seq,
                "details_json": '{"plate":"ABC123"}',
                "occurred_at_us": T0 + seq * 999,
                "source": "api",
            },
        )
        entries.append(entry)
        prev = entry.entry_hash
    return entries


def kinds(entries: list[Entry], **kwargs: object) -> set[tuple[int, str]]:
    return {(f.sequence, f.kind) for f in verify_chain(entries, **kwargs).findings}  # type: ignore[arg-type]


def test_clean_log_verifies() -> None:
    result = verify_chain(make_log(20))
    assert result.ok, result.findings
    assert (result.first_sequence, result.last_sequence, result.entries) == (1, 20, 20)


def test_edit_is_named() -> None:
    log = make_log(10)
    log[4] = replace(log[4], actor="someone-else")
    assert kinds(log) == {(5, "edited")}


def test_edit_with_recomputed_hash_is_named() -> None:
    log = make_log(10)
    forged = replace(log[4], result_count=0)
    log[4] = replace(forged, entry_hash=forged.computed_hash())
    assert kinds(log) == {(5, "edited")}


def test_delete_is_named() -> None:
    log = make_log(10)
    del log[6]
    assert kinds(log) == {(7, "deleted")}


def test_delete_with_renumbered_tail_is_named() -> None:
    log = make_log(8)
    del log[3]
    log = log[:3] + [replace(e, sequence=e.sequence - 1) for e in log[3:]]
    found = kinds(log)
    assert (4, "reordered") in found
    assert all(kind == "reordered" for _, kind in found)


def test_insert_with_duplicate_sequence_is_named() -> None:
    log = make_log(10)
    forged = chain_entry(6, log[4].entry_hash, T0, {**log[5].to_json(), "actor": "ghost"})
    log.insert(5, forged)
    assert kinds(log) == {(6, "inserted")}


def test_insert_spliced_between_links_is_named() -> None:
    log = make_log(6)
    # A forged entry at 4 linking to 3, with the genuine tail renumbered 5..7 and left unhashed.
    forged = chain_entry(4, log[2].entry_hash, T0, {**log[3].to_json(), "actor": "ghost"})
    log = log[:3] + [forged] + [replace(e, sequence=e.sequence + 1) for e in log[3:]]
    found = kinds(log)
    assert (5, "reordered") in found and (6, "reordered") in found


def test_swapped_sequence_numbers_are_named() -> None:
    log = make_log(10)
    log[3], log[4] = replace(log[4], sequence=4), replace(log[3], sequence=5)
    assert kinds(log) == {(4, "reordered"), (5, "reordered")}


def test_swapped_delivery_order_is_named() -> None:
    log = make_log(10)
    log[3], log[4] = log[4], log[3]
    assert kinds(log) == {(4, "reordered")}


def test_checkpoints_sign_and_pin_the_log() -> None:
    key = Ed25519PrivateKey.generate()
    log = make_log(10)
    checkpoint = sign_checkpoint(key, 10, log[-1].entry_hash, T0)
    assert checkpoint_signature_ok(checkpoint)
    assert checkpoint_signature_ok(checkpoint, raw_public_key(key.public_key()))
    assert verify_chain(log, [checkpoint], trusted_key=raw_public_key(key.public_key())).ok

    # A wholly rewritten log (every hash recomputed) is only caught by the checkpoint.
    rewritten: list[Entry] = []
    prev = GENESIS_HASH
    for entry in log:
        fields = entry.to_json()
        if entry.sequence == 3:
            fields["actor"] = "ghost"
        rewritten.append(chain_entry(entry.sequence, prev, entry.chained_at_us, fields))
        prev = rewritten[-1].entry_hash
    assert kinds(rewritten, checkpoints=[checkpoint]) == {(10, "checkpoint")}

    # Cutting the tail after the checkpoint's entry is a deletion.
    assert kinds(log[:8], checkpoints=[checkpoint]) == {(9, "deleted"), (10, "deleted")}


def test_bad_or_foreign_signatures_are_named() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    log = make_log(5)
    checkpoint = sign_checkpoint(key, 5, log[-1].entry_hash, T0)
    tampered = replace(checkpoint, entry_hash="f" * 64)
    assert not checkpoint_signature_ok(tampered)
    assert kinds(log, checkpoints=[tampered]) == {(5, "checkpoint")}
    pinned_other = raw_public_key(other.public_key())
    assert kinds(log, checkpoints=[checkpoint], trusted_key=pinned_other) == {(5, "checkpoint")}


@pytest.mark.parametrize("start", [1, 4])
def test_pruned_prefix_is_accepted_only_when_declared(start: int) -> None:
    log = make_log(10)[3:]
    found = kinds(log, start_sequence=start)
    assert found == (set() if start == 4 else {(1, "deleted"), (2, "deleted"), (3, "deleted")})


def test_audit_retention_prefix_is_accepted_when_the_log_declares_it() -> None:
    from services.audit.verify import verify_entries

    log = make_log(10)
    marker_fields = {**log[-1].to_json(), "event_id": "prune", "kind": "retention_delete"}
    marker_fields["details_json"] = '{"data_class":"audit","through_sequence":4}'
    marker = chain_entry(11, log[-1].entry_hash, T0 + 11_000, marker_fields)
    pruned = [*log[4:], marker]
    assert verify_entries(pruned, []).ok
    # Without the declaration the same gap is a deletion.
    assert {(f.sequence, f.kind) for f in verify_entries(log[4:], []).findings} == {
        (seq, "deleted") for seq in range(1, 5)
    }
