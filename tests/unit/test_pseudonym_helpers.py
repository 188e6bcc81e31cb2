"""Pure helpers of pseudonymized storage: the writer's rows and tokenizer, the search's plate forms,
SQL conditions and display, and the key store's listings (files in a temp dir, no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.common.pb.platewatch.v1 import common_pb2, reads_pb2, search_pb2
from services.governance.policy import POLICIES_DIR, Policy
from services.governance.pseudonymize import KeyDestroyed, PeriodKeyStore, Pseudonymizer, is_token
from services.retention.settings import PolicySettings
from services.search import analytics
from services.search.pseudonyms import reveal, stored_forms, uses_tokens
from services.search.query import build_search_sql, exact_plate_sql, plate_candidates_sql
from services.writer.main import PseudonymizingTokenizer
from services.writer.rows import read_rows

DAY = timedelta(days=1)
T = datetime(2026, 5, 4, 10, tzinfo=UTC)


@pytest.fixture
def pseudonymizer(tmp_path: Path) -> Pseudonymizer:
    return Pseudonymizer(PeriodKeyStore(tmp_path / "keys", DAY))


def policy(enabled: bool) -> Policy:
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["pseudonymization"] = {"enabled": enabled, "key_rotation": "1d"}
    return Policy.model_validate(raw)


def make_read() -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id="r1",
        plate="ABC123",
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="pd-a"),
        candidates=[common_pb2.TextCandidate(text="ABC123", confidence=0.9)],
    )
    read.captured_at.FromDatetime(T)
    return read


def test_read_rows_store_only_the_token_and_no_candidate_texts(pseudonymizer: Pseudonymizer) -> None:
    tokenizer = PseudonymizingTokenizer(policy(True), pseudonymizer)
    rows = read_rows(make_read(), T + timedelta(minutes=1), tokenizer)
    assert rows.read_row[1] == pseudonymizer.tokenize("pd-a", "ABC123", T)
    assert "ABC123" not in repr(rows.read_row)
    plain = read_rows(make_read(), T + timedelta(minutes=1))
    assert plain.read_row[1] == "ABC123" and ["ABC123"] in plain.read_row


def test_tokenizer_follows_the_policy_and_refuses_shredded_periods(pseudonymizer: Pseudonymizer) -> None:
    assert PseudonymizingTokenizer(policy(False), pseudonymizer)("pd-a", "ABC123", T) == "ABC123"
    tokenizer = PseudonymizingTokenizer(policy(True), pseudonymizer)
    assert is_token(tokenizer("pd-a", "ABC123", T))
    pseudonymizer.keys.destroy_period("pd-a", pseudonymizer.keys.period_of(T))
    with pytest.raises(KeyDestroyed):
        tokenizer("pd-a", "ABC123", T)


def test_pseudonymization_can_be_switched_per_agency(pseudonymizer: Pseudonymizer) -> None:
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["pseudonymization"] = {"enabled": False, "key_rotation": "1d"}
    raw.setdefault("agencies", {})["pd-a"] = {"pseudonymize": True}
    per_agency = Policy.model_validate(raw)
    assert per_agency.pseudonymizes_any()
    tokenizer = PseudonymizingTokenizer(per_agency, pseudonymizer)
    assert is_token(tokenizer("pd-a", "ABC123", T))
    assert tokenizer("pd-b", "ABC123", T) == "ABC123", "agencies without the rule keep the policy switch"
    # And the other way round: enabled policy-wide, one agency opted out.
    raw["pseudonymization"]["enabled"] = True
    raw["agencies"]["pd-a"] = {"pseudonymize": False}
    opted_out = Policy.model_validate(raw)
    tokenizer = PseudonymizingTokenizer(opted_out, pseudonymizer)
    assert tokenizer("pd-a", "ABC123", T) == "ABC123"
    assert is_token(tokenizer("pd-b", "ABC123", T))
    assert not policy(False).pseudonymizes_any() and policy(True).pseudonymizes_any()


def test_a_destroyed_key_is_noticed_by_another_store_on_the_same_folder(tmp_path: Path) -> None:
    writer_keys = PeriodKeyStore(tmp_path / "keys", DAY)
    retention_keys = PeriodKeyStore(tmp_path / "keys", DAY)
    period = writer_keys.period_of(T)
    writer_keys.key_for("pd-a", period)
    assert retention_keys.destroy_period("pd-a", period)
    assert writer_keys.existing_key("pd-a", period) is None, "the cached key must not survive"
    with pytest.raises(KeyDestroyed):
        writer_keys.key_for("pd-a", period)


def test_key_store_listings(pseudonymizer: Pseudonymizer) -> None:
    keys = pseudonymizer.keys
    assert keys.agencies() == [] and not keys.has_agency("pd-a")
    for n in range(3):
        pseudonymizer.tokenize("pd-a", "X1", T + n * DAY)
    keys.destroy_period("pd-a", keys.period_of(T))
    first = keys.period_of(T)
    assert keys.agencies() == ["pd-a"] and keys.has_agency("pd-a")
    assert list(keys.periods("pd-a")) == [first + 1, first + 2]
    assert list(keys.destroyed_periods("pd-a")) == [first]
    # At T + 3 days with a 1-day limit only the period ending at T + 2 days is expired.
    assert keys.expired_periods("pd-a", T + 3 * DAY, DAY) == [first + 1]
    assert keys.destroy_expired("pd-a", T + 4 * DAY, DAY, keep={first + 1}) == [first + 2]


def test_search_tokens_with_open_windows(pseudonymizer: Pseudonymizer) -> None:
    stored = [pseudonymizer.tokenize("pd-a", "ABC123", T + n * DAY) for n in range(3)]
    assert pseudonymizer.search_tokens("pd-a", "ABC123", None, None) == stored
    assert pseudonymizer.search_tokens("pd-a", "abc 123", T + DAY, None) == stored[1:]
    # T is mid-period: [.., T + 1 day) overlaps the first two periods, [.., end of T's) only one.
    assert pseudonymizer.search_tokens("pd-a", "ABC123", None, T + DAY) == stored[:2]
    end_of_first = pseudonymizer.keys.period_bounds(pseudonymizer.keys.period_of(T))[1]
    assert pseudonymizer.search_tokens("pd-a", "ABC123", None, end_of_first) == stored[:1]
    assert pseudonymizer.search_tokens("pd-b", "ABC123", None, None) == []


def test_stored_forms_use_each_agencys_own_keys(pseudonymizer: Pseudonymizer) -> None:
    token_a = pseudonymizer.tokenize("pd-a", "ABC123", T)
    token_b = pseudonymizer.tokenize("pd-b", "ABC123", T)
    assert token_a != token_b
    assert stored_forms(pseudonymizer, "ABC123", ["pd-b", "pd-a", "pd-c"], None, None) == [
        "ABC123",
        token_a,
        token_b,
    ]
    assert stored_forms(None, "ABC123", ["pd-a"], None, None) == ["ABC123"]
    assert uses_tokens(pseudonymizer, ["pd-c", "pd-a"]) and not uses_tokens(pseudonymizer, ["pd-c"])
    assert not uses_tokens(None, ["pd-a"])


def test_exact_plate_sql_stays_an_equality_without_tokens() -> None:
    params: dict[str, object] = {}
    assert exact_plate_sql("ABC123", None, params) == "plate = {plate:String}"
    assert exact_plate_sql("ABC123", ["ABC123"], params) == "plate = {plate:String}"
    assert "plate_forms" not in params
    condition = exact_plate_sql("ABC123", ["ABC123", "pt1:1:ab"], params, column="r.plate", negate=True)
    assert condition == "r.plate NOT IN {plate_forms:Array(String)}"
    assert params["plate_forms"] == ["ABC123", "pt1:1:ab"] and params["plate"] == "ABC123"


def test_builders_take_the_plate_forms() -> None:
    forms = ["ABC123", "pt1:5:" + "a" * 64]
    request = search_pb2.PlateQuery(plate="abc123", agency_ids=["pd-a"])
    sql, params, _ = build_search_sql(request, 10, forms)
    assert "plate IN {plate_forms:Array(String)}" in sql and params["plate_forms"] == forms
    sql, params = analytics.timeline_sql(
        search_pb2.TimelineRequest(plate="ABC123", agency_ids=["pd-a"]), 10, 400, forms
    )
    assert "plate IN {plate_forms:Array(String)}" in sql
    convoy = search_pb2.ConvoyRequest(plate="ABC123", agency_ids=["pd-a"])
    getattr(convoy, "from").FromDatetime(T)
    convoy.to.FromDatetime(T + DAY)
    sql, params = analytics.convoy_sql(convoy, 100, 100, forms)
    assert "r.plate NOT IN {plate_forms:Array(String)}" in sql and "plate = {plate:String}" not in sql


def test_patterns_never_match_tokens() -> None:
    for request in (
        search_pb2.PlateQuery(plate="*1*", agency_ids=["pd-a"]),
        search_pb2.PlateQuery(plate="ABC123", agency_ids=["pd-a"], fuzzy=True),
    ):
        candidates = plate_candidates_sql(request, 10)
        assert candidates is not None and "NOT startsWith(plate, 'pt1:')" in candidates[0]


def test_reveal_shows_the_searched_plate_for_tokens_only() -> None:
    rows = [{"plate": "pt1:5:" + "b" * 64}, {"plate": "ABC123"}, {"plate": "pt1:not-a-token"}]
    assert [r["plate"] for r in reveal(rows, "ABC123")] == ["ABC123", "ABC123", "pt1:not-a-token"]


def test_keys_dir_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATEWATCH_VAR_DIR", str(tmp_path))
    assert PolicySettings().keys_dir() == tmp_path / "pseudonym-keys"
    monkeypatch.setenv("PLATEWATCH_PSEUDONYM_KEYS_DIR", str(tmp_path / "elsewhere"))
    assert PolicySettings().keys_dir() == tmp_path / "elsewhere"
