"""The audit hash chain: canonical encodings, entry hashes, signed checkpoints, verification.

Entry hash = SHA-256 over the canonical encoding of the entry: JSON with sorted keys, no spaces,
UTF-8, holding `v` (format version 1), the sequence number, the previous entry's hash and every
event field (timestamps as integer microseconds since the Unix epoch, UTC). The first entry's
prev_hash is GENESIS_HASH. Changing any field, the position (sequence) or the predecessor changes
the hash.

A checkpoint says "the chain up to `sequence` ends in `entry_hash`", signed with Ed25519 over the
canonical checkpoint encoding. Checkpoints handed to an oversight board pin the log: rewriting the
log and recomputing every hash after an edit is caught by the next checkpoint's signature.

`verify_chain` reads the entries as delivered and names each problem by sequence number and kind:
  edited     the entry's content no longer matches its hash (or it was rehashed after an edit and
             its successor still links to the original);
  deleted    a sequence number is missing (or the tail after the last entry was cut);
  inserted   an entry that the chain does not link through (a forged entry with a duplicate
             sequence, or one spliced in between two linked entries);
  reordered  an entry out of place: its hash is valid for another sequence number, or it appears
             after a later entry;
  checkpoint a signed checkpoint does not match the log, or its signature is bad.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS_HASH = "0" * 64
FORMAT_VERSION = 1
# How far from its claimed sequence an entry's hash is searched for, to tell a moved entry from an
# edited one.
MOVE_SEARCH_RADIUS = 16

EVENT_FIELDS = (
    "event_id",
    "kind",
    "actor",
    "agency_id",
    "action",
    "outcome",
    "purpose_code",
    "case_number",
    "result_count",
    "details_json",
    "occurred_at_us",
    "source",
)


def to_micros(value: datetime) -> int:
    """A timezone-aware (or UTC-naive) datetime -> integer microseconds since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)


@dataclass(frozen=True)
class Entry:
    """One chained audit entry, as stored (ClickHouse row, export line)."""

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
    details_json: str
    occurred_at_us: int
    source: str
    chained_at_us: int

    def canonical(self, sequence: int | None = None, prev_hash: str | None = None) -> bytes:
        """The bytes the entry hash covers (optionally as if at another sequence / predecessor)."""
        body: dict[str, Any] = {name: getattr(self, name) for name in EVENT_FIELDS}
        body["v"] = FORMAT_VERSION
        body["sequence"] = self.sequence if sequence is None else sequence
        body["prev_hash"] = self.prev_hash if prev_hash is None else prev_hash
        body["chained_at_us"] = self.chained_at_us
        return canonical_json(body)

    def computed_hash(self, sequence: int | None = None) -> str:
        return hashlib.sha256(self.canonical(sequence)).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Entry.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**{name: data[name] for name in Entry.__dataclass_fields__})


def canonical_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_entry(sequence: int, prev_hash: str, chained_at_us: int, event_fields: dict[str, Any]) -> Entry:
    """Make the entry that follows `prev_hash` at `sequence`; `event_fields` holds EVENT_FIELDS."""
    unhashed = Entry(
        sequence=sequence,
        prev_hash=prev_hash,
        entry_hash="",
        chained_at_us=chained_at_us,
        **{name: event_fields[name] for name in EVENT_FIELDS},
    )
    return replace(unhashed, entry_hash=unhashed.computed_hash())


# --- checkpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    entry_hash: str
    created_at_us: int
    key_id: str
    signature: bytes
    public_key: bytes

    def signed_bytes(self) -> bytes:
        return checkpoint_message(self.sequence, self.entry_hash, self.created_at_us, self.key_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "entry_hash": self.entry_hash,
            "created_at_us": self.created_at_us,
            "created_at": from_micros(self.created_at_us).isoformat(),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            sequence=int(data["sequence"]),
            entry_hash=data["entry_hash"],
            created_at_us=int(data["created_at_us"]),
            key_id=data["key_id"],
            signature=bytes.fromhex(data["signature"]),
            public_key=bytes.fromhex(data["public_key"]),
        )


def checkpoint_message(sequence: int, entry_hash: str, created_at_us: int, key_id: str) -> bytes:
    return canonical_json(
        {
            "type": "platewatch.audit.checkpoint",
            "v": FORMAT_VERSION,
            "sequence": sequence,
            "entry_hash": entry_hash,
            "created_at_us": created_at_us,
            "key_id": key_id,
        }
    )


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def sign_checkpoint(key: Ed25519PrivateKey, sequence: int, entry_hash: str, created_at_us: int) -> Checkpoint:
    public = raw_public_key(key.public_key())
    key_id = key_id_of(public)
    signature = key.sign(checkpoint_message(sequence, entry_hash, created_at_us, key_id))
    return Checkpoint(sequence, entry_hash, created_at_us, key_id, signature, public)


def checkpoint_signature_ok(checkpoint: Checkpoint, trusted_key: bytes | None = None) -> bool:
    """True when the signature is valid under `trusted_key` (raw 32 bytes), or under the key the
    checkpoint carries when no trusted key is given."""
    public = trusted_key if trusted_key is not None else checkpoint.public_key
    if checkpoint.key_id != key_id_of(public):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(checkpoint.signature, checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signing_key(path: Path, create: bool = True) -> Ed25519PrivateKey:
    """The Ed25519 key in `path` (PKCS8 PEM, unencrypted). When absent and `create`, a new key is
    written there with mode 0600 (the development default under var/)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    if not create:
        raise FileNotFoundError(f"no audit signing key at {path}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def parse_public_key(text: str) -> bytes:
    """A public key as PEM (SubjectPublicKeyInfo) or 64 hex digits -> raw 32 bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return raw_public_key(key)
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes (64 hex digits)")
    return raw


# --- verification --------------------------------------------------------------------------------

Kind = Literal["edited", "deleted", "inserted", "reordered", "checkpoint"]


@dataclass(frozen=True)
class Finding:
    sequence: int
    kind: Kind
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "kind": self.kind, "detail": self.detail}


@dataclass
class VerifyResult:
    entries: int = 0
    first_sequence: int = 0
    last_sequence: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    # Set when no trusted key was given: signatures were only checked against the key they carry.
    key_pinned: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "head_hash": self.head_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "key_pinned": self.key_pinned,
            "findings": [f.to_json() for f in self.findings],
        }


def verify_chain(
    entries: Iterable[Entry],
    checkpoints: Sequence[Checkpoint] = (),
    trusted_key: bytes | None = None,
    start_sequence: int = 1,
) -> VerifyResult:
    """Check `entries` (in the order delivered) and `checkpoints`; see the module doc for kinds.

    `start_sequence` > 1 accepts a log whose older entries were removed by audit retention: the
    first entry's prev_hash is then taken on trust (checkpoints still pin it)."""
    delivered = list(entries)
    result = VerifyResult(entries=len(delivered), key_pinned=trusted_key is not None)
    findings: list[Finding] = []

    # 1. Delivery order: an entry whose sequence is lower than one delivered before it is out of place.
    highest = 0
    for entry in delivered:
        if entry.sequence < highest:
            findings.append(Finding(entry.sequence, "reordered", f"delivered after entry {highest}"))
        highest = max(highest, entry.sequence)
    ordered = sorted(delivered, key=lambda e: e.sequence)

    # 2. Each entry against its own hash. A hash that is valid for another sequence means the
    # content is intact but it was moved (its sequence number changed).
    moved: dict[int, int] = {}  # index in `ordered` -> the sequence its hash is valid for
    edited: set[int] = set()
    for index, entry in enumerate(ordered):
        if entry.computed_hash() == entry.entry_hash:
            continue
        original = next(
            (
                candidate
                for distance in range(1, MOVE_SEARCH_RADIUS + 1)
                for candidate in (entry.sequence - distance, entry.sequence + distance)
                if candidate >= 1 and entry.computed_hash(candidate) == entry.entry_hash
            ),
            None,
        )
        if original is None:
            edited.add(index)
            findings.append(Finding(entry.sequence, "edited", "content does not match the entry hash"))
        else:
            moved[index] = original
    claimed = {e.sequence for e in ordered}
    for index, original in moved.items():
        entry = ordered[index]
        if original in claimed:
            findings.append(Finding(entry.sequence, "reordered", f"entry was written as sequence {original}"))
        else:
            findings.append(
                Finding(
                    entry.sequence,
                    "reordered",
                    f"entry was written as sequence {original} (renumbered after an insert or delete)",
                )
            )

    # 3. Duplicates, gaps and links, walking by sequence.
    by_hash = {e.entry_hash: i for i, e in enumerate(ordered)}
    accepted: list[int] = []  # indexes of entries taken as the chain
    index = 0
    while index < len(ordered):
        group = [index]
        sequence = ordered[index].sequence
        while index + len(group) < len(ordered) and ordered[index + len(group)].sequence == sequence:
            group.append(index + len(group))
        successor = index + len(group)
        if len(group) > 1:
            # The genuine one is the one the next entry links to; otherwise the first that links back.
            next_prev = ordered[successor].prev_hash if successor < len(ordered) else None
            genuine = next((i for i in group if ordered[i].entry_hash == next_prev), None)
            if genuine is None:
                prev_hash = ordered[accepted[-1]].entry_hash if accepted else GENESIS_HASH
                genuine = next((i for i in group if ordered[i].prev_hash == prev_hash), group[0])
            for i in group:
                if i != genuine:
                    findings.append(
                        Finding(ordered[i].sequence, "inserted", "a second entry with this sequence number")
                    )
            group = [genuine]
        current = group[0]
        entry = ordered[current]
        if accepted:
            previous = ordered[accepted[-1]]
            if entry.sequence > previous.sequence + 1 and current not in moved:
                missing = range(previous.sequence + 1, entry.sequence)
                findings.extend(
                    Finding(seq, "deleted", "sequence number missing from the log") for seq in missing
                )
            elif (
                entry.prev_hash != previous.entry_hash
                and current not in moved
                and accepted[-1] not in moved
                and current not in edited
                and accepted[-1] not in edited
            ):
                before = ordered[accepted[-2]].entry_hash if len(accepted) > 1 else GENESIS_HASH
                if entry.prev_hash == before:
                    findings.append(
                        Finding(previous.sequence, "inserted", "the chain links around this entry")
                    )
                elif entry.prev_hash in by_hash:
                    findings.append(
                        Finding(entry.sequence, "reordered", "links to an entry that is not its predecessor")
                    )
                else:
                    findings.append(
                        Finding(
                            previous.sequence,
                            "edited",
                            "entry was rehashed; the next entry still links to its original hash",
                        )
                    )
        elif entry.sequence > start_sequence and current not in moved:
            findings.extend(
                Finding(seq, "deleted", "sequence number missing from the log")
                for seq in range(start_sequence, entry.sequence)
            )
        elif entry.sequence == 1 and entry.prev_hash != GENESIS_HASH and current not in edited:
            findings.append(Finding(1, "edited", "the first entry does not start from the genesis hash"))
        accepted.append(current)
        index = successor

    chain = {ordered[i].sequence: ordered[i] for i in accepted}
    if accepted:
        result.first_sequence = ordered[accepted[0]].sequence
        result.last_sequence = ordered[accepted[-1]].sequence
        result.head_hash = ordered[accepted[-1]].entry_hash

    # 4. Checkpoints.
    for checkpoint in sorted(checkpoints, key=lambda c: c.sequence):
        result.checkpoints_checked += 1
        if not checkpoint_signature_ok(checkpoint, trusted_key):
            findings.append(Finding(checkpoint.sequence, "checkpoint", "checkpoint signature is not valid"))
            continue
        if checkpoint.sequence < result.first_sequence:
            continue  # older entries were removed by retention
        anchor = chain.get(checkpoint.sequence)
        if anchor is None:
            if checkpoint.sequence > result.last_sequence:
                findings.extend(
                    Finding(seq, "deleted", "signed by a checkpoint but missing from the end of the log")
                    for seq in range(result.last_sequence + 1, checkpoint.sequence + 1)
                )
            continue
        if anchor.entry_hash != checkpoint.entry_hash:
            findings.append(
                Finding(
                    checkpoint.sequence,
                    "checkpoint",
                    "the log up to this entry differs from what the signed checkpoint covers",
                )
            )

    # One finding per (sequence, kind), in sequence order.
    unique: dict[tuple[int, str], Finding] = {}
    for finding in findings:
        unique.setdefault((finding.sequence, finding.kind), finding)
    result.findings = sorted(unique.values(), key=lambda f: (f.sequence, f.kind))
    return result
