"""Wildcard translation, LIKE escaping and page tokens of the search service."""

from __future__ import annotations

import pytest

from services.common.pb.platewatch.v1 import search_pb2
from services.search.query import (
    InvalidQuery,
    PageCursor,
    PlateMatch,
    build_search_sql,
    clamp_page_size,
    decode_page_token,
    encode_page_token,
    plate_candidates_sql,
    query_fingerprint,
    translate_plate,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7XYZ123", PlateMatch(exact="7XYZ123")),
        (" 7xyz 123 ", PlateMatch(exact="7XYZ123")),
        ("7X?2*", PlateMatch(like="7X_2%")),
        ("*X2*", PlateMatch(like="%X2%")),
        ("AB**C", PlateMatch(like="AB%C")),
        ("A?_%*", PlateMatch(like="A_\\_\\%%")),
        ("A\\B*", PlateMatch(like="A\\\\B%")),
    ],
)
def test_plate_patterns_translate_to_exact_or_escaped_like(text: str, expected: PlateMatch) -> None:
    assert translate_plate(text) == expected


def test_like_metacharacters_without_wildcards_stay_an_exact_match() -> None:
    assert translate_plate("A_B%") == PlateMatch(exact="A_B%")


@pytest.mark.parametrize("text", ["", "   ", "*", "?", "*?*", "**", "X" * 33])
def test_empty_wildcard_only_and_overlong_patterns_are_rejected(text: str) -> None:
    with pytest.raises(InvalidQuery):
        translate_plate(text)


def test_user_text_never_reaches_the_sql_text() -> None:
    hostile = "A'; DROP TABLE reads; --*"
    request = search_pb2.PlateQuery(plate=hostile, agency_ids=["x' OR 1=1"], camera_ids=["c"])
    sql, params, _ = build_search_sql(request, page_size=10)
    assert "DROP" not in sql and "OR 1=1" not in sql
    assert params["pattern"].startswith("A';DROPTABLEREADS;--")
    candidates = plate_candidates_sql(request, page_size=10)
    assert candidates is not None and "DROP" not in candidates[0] and "OR 1=1" not in candidates[0]
    assert params["agencies"] == ["x' OR 1=1"]
    assert params["limit"] == 11


def test_page_token_round_trips_and_is_bound_to_its_query() -> None:
    query = search_pb2.PlateQuery(plate="7X?2*", agency_ids=["pd"])
    fingerprint = query_fingerprint(query)
    cursor = PageCursor(captured_ms=1_700_000_000_123, read_id="r-42/ü")
    token = encode_page_token(cursor, fingerprint)
    assert decode_page_token(token, fingerprint) == cursor
    # Same filters with another page size or token: same query.
    same = search_pb2.PlateQuery(plate="7x?2*", agency_ids=["pd"], page_size=3)
    assert query_fingerprint(same) == fingerprint
    other = query_fingerprint(search_pb2.PlateQuery(plate="7X?2*", agency_ids=["other"]))
    with pytest.raises(InvalidQuery, match="different query"):
        decode_page_token(token, other)


@pytest.mark.parametrize("token", ["garbage", "!!!", "e30", "eyJ0IjogMX0"])
def test_corrupt_page_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(InvalidQuery):
        decode_page_token(token, "anything")


def test_page_token_adds_a_keyset_condition() -> None:
    query = search_pb2.PlateQuery(plate="ABC", agency_ids=["pd"])
    token = encode_page_token(PageCursor(5000, "r1"), query_fingerprint(query))
    query.page_token = token
    sql, params, _ = build_search_sql(query, page_size=2)
    assert "read_id < {cursor_id:String}" in sql
    assert params["cursor_ms"] == 5000 and params["cursor_id"] == "r1"


def test_page_size_defaults_and_is_capped() -> None:
    assert clamp_page_size(0, 50, 500) == 50
    assert clamp_page_size(-3, 50, 500) == 50
    assert clamp_page_size(20, 50, 500) == 20
    assert clamp_page_size(10_000, 50, 500) == 500


def test_first_unfiltered_page_of_a_pattern_takes_only_the_most_recent_plates() -> None:
    first = plate_candidates_sql(search_pb2.PlateQuery(plate="*7X2*", agency_ids=["pd"]), page_size=50)
    assert first is not None
    assert "ORDER BY max(last_seen) DESC LIMIT {top:UInt32} WITH TIES" in first[0] and first[1]["top"] == 51
    filtered = plate_candidates_sql(
        search_pb2.PlateQuery(plate="*7X2*", agency_ids=["pd"], camera_ids=["c"]), page_size=50
    )
    assert filtered is not None and "LIMIT" not in filtered[0]
    assert plate_candidates_sql(search_pb2.PlateQuery(plate="7X2", agency_ids=["pd"]), page_size=50) is None


def test_dashboard_window_is_widened_to_whole_hours() -> None:
    from datetime import UTC, datetime

    from services.search.analytics import dashboard_sql

    request = search_pb2.DashboardRequest(agency_ids=["pd"])
    getattr(request, "from").FromDatetime(datetime(2025, 1, 1, 8, 20, tzinfo=UTC))
    request.to.FromDatetime(datetime(2025, 1, 1, 10, 5, tzinfo=UTC))
    _, _, params = dashboard_sql(request, max_days=400, max_rows=10)
    assert params["w_from"] == int(datetime(2025, 1, 1, 8, tzinfo=UTC).timestamp() * 1000)
    assert params["w_to"] == int(datetime(2025, 1, 1, 11, tzinfo=UTC).timestamp() * 1000)
