"""The hotlist CSV extract parser: good files, every kind of bad row with its line, file-level limits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common.pb.platewatch.v1 import hotlist_pb2
from services.hotlist.cli import format_row_error
from services.hotlist.csv_import import (
    ParsedCsv,
    RowError,
    parse_csv,
    parse_reason,
    stable_entry_id,
)

R = hotlist_pb2.ReasonCode
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "hotlists" / "example-ncic.csv"


def parse(text: str, **kwargs: int) -> ParsedCsv:
    return parse_csv(text.encode(), hotlist_id="list-1", filename="extract.csv", **kwargs)


def lines_of(parsed: ParsedCsv) -> list[int]:
    return [error.line for error in parsed.errors]


def test_good_file_gives_entries_with_every_field() -> None:
    parsed = parse(
        "nic,plate,state,reason,priority,expires,notes,vehicle\n"
        "V1,abc-123,ca,V,2,2030-12-31,armed?,2015 Toyota Camry silver\n"
        "L2,XYZ 987,,LP,,,,\n"
    )
    assert parsed.errors == [] and parsed.rows == 2 and not parsed.fatal
    first, second = parsed.entries
    assert first.plate == "ABC123" and first.region == "CA"
    assert first.reason == R.REASON_CODE_STOLEN_VEHICLE and first.priority == 2
    assert first.notes == "armed?" and first.vehicle_description == "2015 Toyota Camry silver"
    assert first.source == "csv:extract.csv" and first.hotlist_id == "list-1"
    # A date is live through the whole day (UTC).
    assert first.expires_at.ToDatetime(tzinfo=UTC) == datetime(2031, 1, 1, tzinfo=UTC)
    assert first.entry_id == stable_entry_id("list-1", "record:V1")
    assert second.plate == "XYZ987" and second.region == ""
    # No priority: the reason's default.
    assert second.reason == R.REASON_CODE_STOLEN_PLATE and second.priority == 4
    assert not second.HasField("expires_at")


def test_example_file_in_deploy_parses_cleanly() -> None:
    parsed = parse_csv(EXAMPLE.read_bytes(), hotlist_id="list-1", filename=EXAMPLE.name)
    assert parsed.errors == []
    assert len(parsed.entries) == 8
    assert {entry.reason for entry in parsed.entries} == set(R.values()) - {R.REASON_CODE_UNSPECIFIED}


def test_entry_ids_are_stable_and_depend_on_list_and_identity() -> None:
    text = "plate,reason,nic\nABC123,V,N1\nDEF456,V,\n"
    again = parse(text)
    assert [e.entry_id for e in parse(text).entries] == [e.entry_id for e in again.entries]
    other_list = parse_csv(text.encode(), hotlist_id="list-2", filename="x.csv")
    assert {e.entry_id for e in other_list.entries}.isdisjoint(e.entry_id for e in again.entries)
    # Without a record id the identity is plate + region; a different plate under the same record id
    # keeps the id (the record was corrected).
    corrected = parse("plate,reason,nic\nABC124,V,N1\n")
    assert corrected.entries[0].entry_id == again.entries[0].entry_id
    assert again.entries[1].entry_id == stable_entry_id("list-1", "plate:DEF456|")


def test_header_columns_are_case_insensitive_in_any_order_and_unknown_ones_ignored() -> None:
    parsed = parse(
        "Reason,VIN,Record ID,License-Plate,LIC,Region\nW,1HGCM82633A004352,R9,ignored,q1w2,us-ca\n"
    )
    assert parsed.errors == []
    [entry] = parsed.entries
    assert (entry.plate, entry.region, entry.reason, entry.priority) == (
        "Q1W2",
        "US-CA",
        R.REASON_CODE_WANTED_PERSON,
        2,
    )


@pytest.mark.parametrize(
    ("text", "reason", "priority"),
    [
        ("V", R.REASON_CODE_STOLEN_VEHICLE, 3),
        ("STOLEN_VEHICLE", R.REASON_CODE_STOLEN_VEHICLE, 3),
        ("stolen vehicle", R.REASON_CODE_STOLEN_VEHICLE, 3),
        ("lp", R.REASON_CODE_STOLEN_PLATE, 4),
        ("Stolen-Plate", R.REASON_CODE_STOLEN_PLATE, 4),
        ("W", R.REASON_CODE_WANTED_PERSON, 2),
        ("wanted", R.REASON_CODE_WANTED_PERSON, 2),
        ("MP", R.REASON_CODE_MISSING_PERSON, 2),
        ("missing", R.REASON_CODE_MISSING_PERSON, 2),
        ("missing or endangered person", R.REASON_CODE_MISSING_PERSON, 2),
        ("AMBER", R.REASON_CODE_AMBER_ALERT, 1),
        ("amber alert", R.REASON_CODE_AMBER_ALERT, 1),
        ("Silver", R.REASON_CODE_SILVER_ALERT, 2),
        ("custom", R.REASON_CODE_CUSTOM, 5),
        ("REASON_CODE_STOLEN_PLATE", R.REASON_CODE_STOLEN_PLATE, 4),
    ],
)
def test_reason_codes_map_to_reason_and_default_priority(text: str, reason: int, priority: int) -> None:
    assert parse_reason(text) == (reason, priority)


@pytest.mark.parametrize("text", ["X", "stolen", "REASON_CODE_UNSPECIFIED_X", "hit and run", "VV"])
def test_unknown_reasons_are_refused(text: str) -> None:
    assert parse_reason(text) is None


def test_every_kind_of_bad_row_is_reported_with_its_line_and_column() -> None:
    parsed = parse(
        "plate,State,reason,priority,expires,nic\n"  # 1
        "GOOD1,CA,V,,,N1\n"  # 2
        ",CA,V,,,N2\n"  # 3 empty plate
        "AB@12,CA,V,,,N3\n"  # 4 bad character
        "**,CA,V,,,N4\n"  # 5 only wildcards
        "ABCDEFGHIJKLMNOPQ,CA,V,,,N5\n"  # 6 too long
        "GOOD6,C@,V,,,N6\n"  # 7 bad region
        "GOOD7,CA,,,,N7\n"  # 8 empty reason
        "GOOD8,CA,stolen,,,N8\n"  # 9 unknown reason
        "GOOD9,CA,V,0,,N9\n"  # 10 priority too small
        "GOOD10,CA,V,high,,N10\n"  # 11 priority not a number
        "GOOD11,CA,V,,31/12/2030,N11\n"  # 12 bad date
        "GOOD12,CA,V,,,N1\n"  # 13 duplicate record id of line 2
        "GOOD13,CA,V\n"  # 14 too few fields
        "GOOD14,CA,V,,,N14,extra\n"  # 15 too many fields
        "GOOD15,CA,V,1,2030-01-01T08:00:00+02:00,N15\n"  # 16 good
    )
    assert [(e.line, e.column) for e in parsed.errors] == [
        (3, "plate"),
        (4, "plate"),
        (5, "plate"),
        (6, "plate"),
        (7, "State"),
        (8, "reason"),
        (9, "reason"),
        (10, "priority"),
        (11, "priority"),
        (12, "expires"),
        (13, "nic"),
        (14, ""),
        (15, ""),
    ]
    messages = {e.line: e.message for e in parsed.errors}
    assert "empty" in messages[3]
    assert "only wildcards" in messages[5]
    assert "longer than 16" in messages[6]
    assert "unknown reason 'stolen'" in messages[9]
    assert "line 2" in messages[13]
    assert "has 3 fields; the header has 6" in messages[14]
    assert [e.plate for e in parsed.entries] == ["GOOD1", "GOOD15"]
    assert parsed.entries[1].expires_at.ToDatetime(tzinfo=UTC) == datetime(2030, 1, 1, 6, tzinfo=UTC)
    assert parsed.rows == 15 and not parsed.fatal


def test_a_row_with_several_bad_cells_reports_each() -> None:
    parsed = parse("plate,reason,priority\nab#1,nope,12\n")
    assert [(e.line, e.column) for e in parsed.errors] == [(2, "plate"), (2, "reason"), (2, "priority")]
    assert parsed.entries == []


def test_duplicate_plates_without_record_id_are_errors_on_the_later_row() -> None:
    parsed = parse("plate,state,reason\nABC123,CA,V\nABC123,NV,V\nabc 123,ca,LP\n")
    assert [(e.line, e.column) for e in parsed.errors] == [(4, "plate")]
    assert "same plate and region as line 2" in parsed.errors[0].message
    assert len(parsed.entries) == 2


def test_bom_and_crlf_are_accepted() -> None:
    data = "\ufeffPlate,Reason\r\nABC123,V\r\n\r\nDEF456,LP\r\n".encode()
    parsed = parse_csv(data, hotlist_id="list-1", filename="x.csv")
    assert parsed.errors == [] and [e.plate for e in parsed.entries] == ["ABC123", "DEF456"]


def test_quoted_commas_quotes_and_line_breaks_keep_line_numbers_right() -> None:
    parsed = parse(
        "plate,reason,vehicle,notes\n"  # 1
        'ABC123,V,"2015 Ford, blue","said ""hi"""\n'  # 2
        'DEF456,V,"two\nline vehicle",\n'  # 3-4
        "BAD#1,V,,\n"  # 5
    )
    assert [e.vehicle_description for e in parsed.entries] == ["2015 Ford, blue", "two\nline vehicle"]
    assert parsed.entries[0].notes == 'said "hi"'
    assert lines_of(parsed) == [5]


def test_blank_lines_are_skipped_but_counted_for_line_numbers() -> None:
    parsed = parse("plate,reason\n\nABC123,V\n  ,  \nBAD!,V\n")
    assert lines_of(parsed) == [5]
    assert parsed.rows == 2


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        ("", 1, "empty"),
        ("plate,reason\n", 0, "no data rows"),
        ("ABC123,V\nDEF456,V\n", 1, "no plate or reason column"),
        ("state,reason\nCA,V\n", 1, "no plate column"),
        ("plate,notes\nABC123,x\n", 1, "no reason column"),
        ("plate,lic,reason\nA,B,V\n", 1, "both give the plate"),
        ("\nplate,reason\nABC123,V\n", 1, "header row is missing"),
        ('plate,reason\nABC123,V\n"DEF456,V\n', 3, "broken CSV"),
    ],
)
def test_file_level_problems_are_fatal(text: str, line: int, phrase: str) -> None:
    parsed = parse(text)
    assert parsed.fatal and parsed.entries == []
    [error] = parsed.errors
    assert error.line == line and phrase in error.message


def test_size_and_row_limits() -> None:
    text = "plate,reason\n" + "".join(f"P{i:05d},V\n" for i in range(5))
    assert parse(text, max_rows=5).errors == []
    too_many = parse(text, max_rows=4)
    assert too_many.fatal and too_many.errors == [RowError(6, "", "more than 4 data rows (split the file)")]
    too_big = parse(text, max_bytes=len(text) - 1)
    assert too_big.fatal and too_big.errors[0].line == 0 and "bytes" in too_big.errors[0].message


def test_invalid_utf8_is_reported_at_its_line() -> None:
    data = b"plate,reason,notes\nABC123,V,ok\nDEF456,V,caf\xe9\n"
    parsed = parse_csv(data, hotlist_id="list-1", filename="latin1.csv")
    assert parsed.fatal and lines_of(parsed) == [3] and "UTF-8" in parsed.errors[0].message


def test_bad_rows_with_a_known_identity_are_remembered_for_replace() -> None:
    parsed = parse("plate,reason,nic\nABC123,BOGUS,N1\n##,V,\nDEF456,V,N3\n")
    assert parsed.bad_row_entry_ids == {stable_entry_id("list-1", "record:N1")}
    assert len(parsed.entries) == 1


def test_source_uses_the_base_name_of_the_file() -> None:
    parsed = parse_csv(b"plate,reason\nABC123,V\n", hotlist_id="l", filename="C:\\exports\\ncic-2024.csv")
    assert parsed.entries[0].source == "csv:ncic-2024.csv"
    unnamed = parse_csv(b"plate,reason\nABC123,V\n", hotlist_id="l", filename="")
    assert unnamed.entries[0].source == "csv:upload"


def test_row_errors_print_as_line_column_message() -> None:
    assert format_row_error(hotlist_pb2.RowError(line=3, column="plate", message="plate is empty")) == (
        "line 3: plate: plate is empty"
    )
    assert format_row_error(hotlist_pb2.RowError(line=0, message="too big")) == "file: too big"
    assert str(RowError(4, "reason", "unknown")) == "line 4: reason: unknown"
