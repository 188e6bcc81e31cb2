"""Matching rules of the hotlist index (pure, no Kafka)."""

from __future__ import annotations

import re

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.hotlist.alerts import alert_id, build_alert
from services.hotlist.matcher import CONFUSABLE_GROUPS, HotlistIndex, confusable_variants

NOW = 1_700_000_000.0
AGENCY = "pd-1"


def ts(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def make_list(
    hotlist_id: str = "L1",
    *,
    agency: str = AGENCY,
    fuzzy: bool = True,
    max_age: int = 0,
    refreshed: float | None = NOW - 60,
    name: str = "stolen",
) -> hotlist_pb2.Hotlist:
    hotlist = hotlist_pb2.Hotlist(
        hotlist_id=hotlist_id, name=name, agency_id=agency, max_age_seconds=max_age, fuzzy_confusables=fuzzy
    )
    if refreshed is not None:
        hotlist.refreshed_at.CopyFrom(ts(refreshed))
    return hotlist


def make_entry(
    entry_id: str,
    plate: str,
    *,
    hotlist_id: str = "L1",
    priority: int = 2,
    region: str = "",
    expires: float | None = None,
) -> hotlist_pb2.HotlistEntry:
    entry = hotlist_pb2.HotlistEntry(
        entry_id=entry_id,
        hotlist_id=hotlist_id,
        plate=plate,
        priority=priority,
        region=region,
        reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE,
    )
    if expires is not None:
        entry.expires_at.CopyFrom(ts(expires))
    return entry


def index_with(*entries: hotlist_pb2.HotlistEntry, **list_options: object) -> HotlistIndex:
    index = HotlistIndex()
    index.put_list(make_list(**list_options))  # type: ignore[arg-type]
    for entry in entries:
        index.put_entry(entry)
    return index


def hits(index: HotlistIndex, plate: str, region: str = "", agency: str = AGENCY) -> list[tuple[str, int]]:
    return [(m.entry.entry_id, m.kind) for m in index.match(plate, region, agency, NOW)]


def test_exact_match() -> None:
    index = index_with(make_entry("e1", "ABC123"))
    assert hits(index, "ABC123") == [("e1", alerts_pb2.MATCH_KIND_EXACT)]
    assert hits(index, "ABC124") == []


def test_no_match_for_other_agency_or_empty_plate() -> None:
    index = index_with(make_entry("e1", "ABC123"))
    assert hits(index, "ABC123", agency="pd-2") == []
    assert hits(index, "") == []


@pytest.mark.parametrize(
    ("entry_plate", "read_plate"),
    [(f"X{a}Y", f"X{b}Y") for group in CONFUSABLE_GROUPS for a in group for b in group if a != b],
)
def test_every_lookalike_pair_matches_as_confusable(entry_plate: str, read_plate: str) -> None:
    index = index_with(make_entry("e1", entry_plate), fuzzy=True)
    assert hits(index, read_plate) == [("e1", alerts_pb2.MATCH_KIND_CONFUSABLE)]


def test_fuzzy_disabled_per_list() -> None:
    index = index_with(make_entry("e1", "ABC123"), fuzzy=False)
    index.put_list(make_list("L2", fuzzy=True))
    index.put_entry(make_entry("e2", "ABC123", hotlist_id="L2"))
    # 8 for B: only the list with fuzzy matching on hits.
    assert hits(index, "A8C123") == [("e2", alerts_pb2.MATCH_KIND_CONFUSABLE)]
    assert sorted(hits(index, "ABC123")) == [
        ("e1", alerts_pb2.MATCH_KIND_EXACT),
        ("e2", alerts_pb2.MATCH_KIND_EXACT),
    ]


def test_two_substitutions_do_not_match() -> None:
    index = index_with(make_entry("e1", "ABC123"), fuzzy=True)
    assert hits(index, "A8C12Z") == []
    assert hits(index, "A8CI23") == []


def test_non_lookalike_substitution_does_not_match() -> None:
    index = index_with(make_entry("e1", "ABC123"), fuzzy=True)
    assert hits(index, "AXC123") == []
    # Different groups are not interchangeable: 8 and 0 are not look-alikes.
    assert "A0C123" not in set(confusable_variants("A8C123"))


def test_wildcards() -> None:
    index = index_with(make_entry("q", "AB?123"), make_entry("s", "XY*9"))
    assert hits(index, "ABZ123") == [("q", alerts_pb2.MATCH_KIND_WILDCARD)]
    # '?' is exactly one character.
    assert hits(index, "AB123") == []
    assert hits(index, "ABZZ123") == []
    # '*' is any run, the empty one included, and the pattern must cover the whole plate.
    assert hits(index, "XY9") == [("s", alerts_pb2.MATCH_KIND_WILDCARD)]
    assert hits(index, "XY12349") == [("s", alerts_pb2.MATCH_KIND_WILDCARD)]
    assert hits(index, "XY12349A") == []
    assert hits(index, "AXY9") == []


def test_region_mismatch_is_flagged_not_dropped() -> None:
    index = index_with(make_entry("e1", "ABC123", region="US-CA"))
    [mismatch] = index.match("ABC123", "US-NV", AGENCY, NOW)
    assert mismatch.region_mismatch
    [same] = index.match("ABC123", "US-CA", AGENCY, NOW)
    assert not same.region_mismatch
    # An unknown read region is no evidence of a mismatch.
    [unknown] = index.match("ABC123", "", AGENCY, NOW)
    assert not unknown.region_mismatch


def test_expired_entries_never_match() -> None:
    index = index_with(
        make_entry("old", "ABC123", expires=NOW - 1), make_entry("live", "ABC123", expires=NOW + 60)
    )
    assert hits(index, "ABC123") == [("live", alerts_pb2.MATCH_KIND_EXACT)]


def test_stale_list_and_age() -> None:
    index = index_with(make_entry("e1", "ABC123"), max_age=3600, refreshed=NOW - 7200)
    [match] = index.match("ABC123", "", AGENCY, NOW)
    assert match.stale
    assert match.list_age_seconds == 7200

    fresh = index_with(make_entry("e1", "ABC123"), max_age=3600, refreshed=NOW - 60)
    [match] = fresh.match("ABC123", "", AGENCY, NOW)
    assert not match.stale
    assert match.list_age_seconds == 60

    never_stale = index_with(make_entry("e1", "ABC123"), max_age=0, refreshed=NOW - 10**7)
    assert not never_stale.match("ABC123", "", AGENCY, NOW)[0].stale


def test_several_hits_ordered_by_priority() -> None:
    index = index_with(
        make_entry("p3", "ABC123", priority=3),
        make_entry("p1-wild", "ABC*", priority=1),
        make_entry("p2-fuzzy", "A8C123", priority=2),
    )
    assert [entry_id for entry_id, _ in hits(index, "ABC123")] == ["p1-wild", "p2-fuzzy", "p3"]


def test_entry_before_its_list_and_removals() -> None:
    index = HotlistIndex()
    # Compaction can leave an entry's record ahead of its list's surviving record.
    index.put_entry(make_entry("e1", "ABC123"))
    assert hits(index, "ABC123") == []
    index.put_list(make_list())
    assert hits(index, "ABC123") == [("e1", alerts_pb2.MATCH_KIND_EXACT)]
    assert index.entry_count("L1") == 1

    index.apply(hotlist_pb2.HotlistChange(entry=hotlist_pb2.HotlistEntry(entry_id="e1"), deleted=True))
    assert hits(index, "ABC123") == []
    assert index.entry_count("L1") == 0

    index.put_entry(make_entry("e2", "XY*"))
    index.apply_key_deletion("entry/e2")
    assert hits(index, "XYZ") == []
    index.apply_key_deletion("list/L1")
    assert "L1" not in index.lists


def test_updating_an_entry_replaces_its_plate() -> None:
    index = index_with(make_entry("e1", "ABC123"))
    index.put_entry(make_entry("e1", "ZZZ999"))
    assert hits(index, "ABC123") == []
    assert hits(index, "ZZZ999") == [("e1", alerts_pb2.MATCH_KIND_EXACT)]
    assert index.entry_count("L1") == 1


def test_alert_id_is_stable_and_distinct() -> None:
    assert alert_id("read-1", "entry-1") == alert_id("read-1", "entry-1")
    assert alert_id("read-1", "entry-1") != alert_id("read-1", "entry-2")
    assert alert_id("ab", "c") != alert_id("a", "bc")
    assert len(alert_id("r", "e")) == 32
    int(alert_id("r", "e"), 16)


def test_build_alert_embeds_read_and_entry() -> None:
    index = index_with(make_entry("e1", "ABC123", region="US-CA"), name="Stolen vehicles")
    read = reads_pb2.Read(
        read_id="r1",
        plate="ABC123",
        region="US-NV",
        crop_jpeg=b"\xff\xd8jpeg",
        camera=common_pb2.CameraInfo(camera_id="cam", agency_id=AGENCY),
    )
    [match] = index.match_read(read, NOW)
    alert = build_alert(read, match, ts(NOW))
    assert alert.alert_id == alert_id("r1", "e1")
    assert alert.read == read
    assert alert.read.crop_jpeg == b"\xff\xd8jpeg"
    assert alert.entry.entry_id == "e1"
    assert alert.hotlist_name == "Stolen vehicles"
    assert alert.status == alerts_pb2.ALERT_STATUS_UNCONFIRMED
    assert alert.match_kind == alerts_pb2.MATCH_KIND_EXACT
    assert alert.region_mismatch
    assert alert.raised_at.seconds == int(NOW)


WILDCARD_PATTERNS = [
    "AB?123",
    "?BC123",
    "ABC12?",
    "??C1??",
    "AB*",
    "*23",
    "*C1*",
    "?B*",
    "*1?3",
    "A*3",
    "?*?3",
]
PLATES = ["ABC123", "ABC12", "XBC123", "AB", "ABQ", "ZZC1ZZ", "C1", "123", "A3", "ABC1234", "Q1X3"]


@pytest.mark.parametrize("pattern", WILDCARD_PATTERNS)
def test_wildcard_buckets_agree_with_plain_regex(pattern: str) -> None:
    """Bucketing is an optimisation only: it must find exactly what a full scan would."""
    index = index_with(make_entry("w", pattern))
    regex = "".join("." if c == "?" else ".*" if c == "*" else c for c in pattern)
    for plate in PLATES:
        expected = [("w", alerts_pb2.MATCH_KIND_WILDCARD)] if re.fullmatch(regex, plate) else []
        assert hits(index, plate) == expected, (pattern, plate)
    index.remove_entry("w")
    assert all(hits(index, plate) == [] for plate in PLATES)


def test_regions_differ_only_where_they_name_different_places() -> None:
    from services.hotlist.matcher import regions_differ

    assert regions_differ("US-CA", "US-NV") and regions_differ("CA", "US-NV") and regions_differ("DE", "FR")
    # The same place spelled as extracts and the recognizer spell it, or one knowing less.
    assert not regions_differ("TX", "US-TX") and not regions_differ("us-tx", "US-TX")
    assert not regions_differ("US-TX", "US") and not regions_differ("US", "US-TX")
    assert not regions_differ("NY", "US") and regions_differ("NY", "US-NJ")
    assert not regions_differ("", "US-TX") and not regions_differ("US-TX", "")
    index = index_with(make_entry("e1", "ABC123", region="TX"))
    [hit] = index.match("ABC123", "US-TX", AGENCY, NOW)
    assert not hit.region_mismatch
