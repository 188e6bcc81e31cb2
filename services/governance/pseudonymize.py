"""Pseudonymization of non-hit plates: HMAC-SHA256 tokens under per-agency, per-period keys.

A plate of a non-hit read is stored as `pt1:<period>:<hex>` where hex = HMAC-SHA256(key, plate)
and key is the agency's secret for the period (a fixed-length slice of time, `key_rotation` from
the policy's `pseudonymization` section) the read was captured in. Properties:

* no plain hash: without the key a token cannot be checked against guessed plates (a plain
  SHA-256 of a plate is reversed by hashing every possible plate);
* exact-plate search still works: `search_tokens(agency, plate, from, to)` gives the token of the
  plate in every period of the range whose key still exists; the query is `plate IN tokens`;
* crypto-shredding: `destroy_period` erases the period's key and leaves a tombstone so it is never
  recreated; every token of that period is then unlinkable to any plate, even in backups;
* tokens differ between agencies and periods, so they cannot be joined across them.

Where it is used: the writer stores plates of a pseudonymizing agency as tokens
(services/writer/main.py), the search service turns an exact plate into its tokens
(services/search/pseudonyms.py), the retention job shreds expired periods
(services/retention/job.py `shred_expired_keys`), all on `<PLATEWATCH_PSEUDONYM_KEYS_DIR>`.
Changing `key_rotation` reinterprets the period numbers of existing keys (which times a period
covers, hence search windows and shredding times), so change it only with a new keys directory.

Keys are 32 random bytes in files `<root>/<agency>/<period>.key` (mode 0600); a destroyed key
leaves `<period>.destroyed`. Production should keep `root` on an encrypted volume or swap this
store for a KMS; the interface (`key_for`, `existing_key`, `destroy_period`) is what callers use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOKEN_PREFIX = "pt1"
_TOKEN = re.compile(r"^pt1:(\d+):([0-9a-f]{64})$")
_AGENCY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyDestroyed(LookupError):
    """The period's key was destroyed (crypto-shredded); its tokens can no longer be made."""


def is_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def token_period(token: str) -> int:
    match = _TOKEN.match(token)
    if not match:
        raise ValueError("not a plate token")
    return int(match.group(1))


def normalize_plate(plate: str) -> str:
    """Tokens are made from the plate as stored (upper case, no spaces or dashes)."""
    return re.sub(r"[\s-]", "", plate).upper()


class PeriodKeyStore:
    """Per-agency, per-period HMAC keys on disk. Thread-safe within a process."""

    def __init__(self, root: Path, rotation: timedelta) -> None:
        if rotation <= timedelta(0):
            raise ValueError("key rotation must be positive")
        self.root = root
        self.rotation = rotation
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], bytes] = {}

    def period_of(self, when: datetime) -> int:
        """The period number of an instant: whole rotations since the Unix epoch."""
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return int((when - EPOCH) // self.rotation)

    def period_bounds(self, period: int) -> tuple[datetime, datetime]:
        start = EPOCH + self.rotation * period
        return start, start + self.rotation

    def _paths(self, agency_id: str, period: int) -> tuple[Path, Path]:
        if not _AGENCY.match(agency_id):
            raise ValueError(f"agency id {agency_id!r} is not usable as a key folder name")
        folder = self.root / agency_id
        return folder / f"{period}.key", folder / f"{period}.destroyed"

    def existing_key(self, agency_id: str, period: int) -> bytes | None:
        """The key if it exists; None if it was never made or was destroyed. The file is checked
        on every call (a stat): another store object or process may have shredded it since."""
        key_path, _ = self._paths(agency_id, period)
        with self._lock:
            if not key_path.exists():
                self._cache.pop((agency_id, period), None)
                return None
            cached = self._cache.get((agency_id, period))
            if cached is not None:
                return cached
            try:
                key = key_path.read_bytes()
            except FileNotFoundError:
                return None
            self._cache[(agency_id, period)] = key
            return key

    def key_for(self, agency_id: str, period: int) -> bytes:
        """The period's key, created on first use; KeyDestroyed if it was shredded."""
        key = self.existing_key(agency_id, period)
        if key is not None:
            return key
        with self._lock:
            key_path, tombstone = self._paths(agency_id, period)
            if tombstone.exists():
                raise KeyDestroyed(f"key of agency {agency_id} period {period} was destroyed")
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_bytes(32)
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = key_path.read_bytes()  # another process made it first
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key)
                    handle.flush()
                    os.fsync(handle.fileno())
            self._cache[(agency_id, period)] = key
            return key

    def destroy_period(self, agency_id: str, period: int) -> bool:
        """Crypto-shred: overwrite and delete the key, leave a tombstone. True if a key existed."""
        with self._lock:
            key_path, tombstone = self._paths(agency_id, period)
            tombstone.parent.mkdir(parents=True, exist_ok=True)
            tombstone.touch()
            self._cache.pop((agency_id, period), None)
            if not key_path.exists():
                return False
            size = key_path.stat().st_size
            with key_path.open("r+b") as handle:
                handle.write(secrets.token_bytes(size))
                handle.flush()
                os.fsync(handle.fileno())
            key_path.unlink()
            return True

    def periods(self, agency_id: str) -> Iterator[int]:
        """Periods of the agency that still have a key, ascending."""
        yield from self._listed(agency_id, ".key")

    def destroyed_periods(self, agency_id: str) -> Iterator[int]:
        """Periods of the agency whose key was destroyed (tombstones), ascending."""
        yield from self._listed(agency_id, ".destroyed")

    def _listed(self, agency_id: str, suffix: str) -> Iterator[int]:
        folder = self.root / agency_id
        if not _AGENCY.match(agency_id) or not folder.is_dir():
            return
        found = []
        for path in folder.glob(f"*{suffix}"):
            try:
                found.append(int(path.stem))
            except ValueError:
                continue  # not one of ours
        yield from sorted(found)

    def has_agency(self, agency_id: str) -> bool:
        """Whether the agency ever had a key (live or destroyed)."""
        return bool(_AGENCY.match(agency_id)) and (self.root / agency_id).is_dir()

    def agencies(self) -> list[str]:
        """Agencies with a key folder (live or destroyed keys), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _AGENCY.match(p.name))

    def expired_periods(self, agency_id: str, now: datetime, retention: timedelta) -> list[int]:
        """Periods with a live key whose whole period lies before `now - retention`."""
        cutoff = (now if now.tzinfo else now.replace(tzinfo=UTC)) - retention
        return [p for p in self.periods(agency_id) if self.period_bounds(p)[1] <= cutoff]

    def destroy_expired(
        self,
        agency_id: str,
        now: datetime,
        retention: timedelta,
        keep: Collection[int] = (),
    ) -> list[int]:
        """Shred every key whose whole period lies before `now - retention` (non-hit reads of those
        periods are past retention anyway), except the periods in `keep` (e.g. a legal hold needs
        a held read's plate); returns the periods shredded."""
        shredded = []
        for period in self.expired_periods(agency_id, now, retention):
            if period not in keep and self.destroy_period(agency_id, period):
                shredded.append(period)
        return shredded


class Pseudonymizer:
    """Tokens for storage and the token lists for exact search."""

    def __init__(self, keys: PeriodKeyStore) -> None:
        self.keys = keys

    @staticmethod
    def _token(key: bytes, period: int, plate: str) -> str:
        digest = hmac.new(key, normalize_plate(plate).encode(), hashlib.sha256).hexdigest()
        return f"{TOKEN_PREFIX}:{period}:{digest}"

    def tokenize(self, agency_id: str, plate: str, captured_at: datetime) -> str:
        """The stored form of a non-hit plate. KeyDestroyed for a shredded period (such a read is
        past retention and must not be stored)."""
        period = self.keys.period_of(captured_at)
        return self._token(self.keys.key_for(agency_id, period), period, plate)

    def search_tokens(
        self, agency_id: str, plate: str, start: datetime | None, end: datetime | None
    ) -> list[str]:
        """Tokens of `plate` in every period overlapping [start, end) (None: open) whose key
        exists, oldest period first. Periods without a key (never used, or shredded) contribute
        nothing: their plates cannot match. Only the agency's existing keys are looked at, so an
        open window costs one directory listing, not one check per period since the epoch."""
        first = self.keys.period_of(start) if start is not None else None
        last = self.keys.period_of(end - timedelta(microseconds=1)) if end is not None else None
        tokens = []
        for period in self.keys.periods(agency_id):
            if (first is not None and period < first) or (last is not None and period > last):
                continue
            key = self.keys.existing_key(agency_id, period)
            if key is not None:
                tokens.append(self._token(key, period, plate))
        return tokens
