"""Plate pseudonymization: HMAC tokens per agency and period, exact search via tokens,
crypto-shredding by destroying a period's key (no servers)."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.governance.pseudonymize import (
    KeyDestroyed,
    PeriodKeyStore,
    Pseudonymizer,
    is_token,
    token_period,
)

DAY = timedelta(days=1)
T = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def pseudonymizer(tmp_path: Path) -> Pseudonymizer:
    return Pseudonymizer(PeriodKeyStore(tmp_path / "keys", DAY))


def test_tokens_are_keyed_not_plain_hashes(pseudonymizer: Pseudonymizer, tmp_path: Path) -> None:
    token = pseudonymizer.tokenize("agency-a", "abc-123", T)
    assert is_token(token) and token_period(token) == pseudonymizer.keys.period_of(T)
    assert token == pseudonymizer.tokenize("agency-a", "ABC123", T + timedelta(hours=1))
    assert hashlib.sha256(b"ABC123").hexdigest() not in token
    assert token != pseudonymizer.tokenize("agency-b", "ABC123", T), "agencies cannot join tokens"
    assert token != pseudonymizer.tokenize("agency-a", "ABC123", T + DAY), "periods cannot be joined"
    key_file = next((tmp_path / "keys" / "agency-a").glob("*.key"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Another process (a fresh store on the same folder) makes the same tokens.
    again = Pseudonymizer(PeriodKeyStore(tmp_path / "keys", DAY))
    assert again.tokenize("agency-a", "ABC123", T) == token


def test_exact_search_covers_every_period_with_a_key(pseudonymizer: Pseudonymizer) -> None:
    stored = {pseudonymizer.tokenize("agency-a", "ABC123", T + n * DAY) for n in range(3)}
    other = pseudonymizer.tokenize("agency-a", "XYZ999", T)
    tokens = pseudonymizer.search_tokens("agency-a", "ABC123", T - 5 * DAY, T + 10 * DAY)
    assert set(tokens) == stored and other not in tokens
    assert pseudonymizer.search_tokens("agency-a", "ABC123", T + DAY, T + DAY + timedelta(hours=1)) == [
        pseudonymizer.tokenize("agency-a", "ABC123", T + DAY)
    ]


def test_destroying_a_period_key_shreds_its_plates(pseudonymizer: Pseudonymizer) -> None:
    old = pseudonymizer.tokenize("agency-a", "ABC123", T)
    new = pseudonymizer.tokenize("agency-a", "ABC123", T + 3 * DAY)
    shredded = pseudonymizer.keys.destroy_expired("agency-a", T + 3 * DAY, retention=DAY)
    assert shredded == [pseudonymizer.keys.period_of(T)]
    tokens = pseudonymizer.search_tokens("agency-a", "ABC123", T - DAY, T + 5 * DAY)
    assert old not in tokens and new in tokens
    with pytest.raises(KeyDestroyed):
        pseudonymizer.tokenize("agency-a", "ABC123", T)
    # Never silently recreated, even by a fresh process.
    fresh = PeriodKeyStore(pseudonymizer.keys.root, DAY)
    with pytest.raises(KeyDestroyed):
        fresh.key_for("agency-a", pseudonymizer.keys.period_of(T))
