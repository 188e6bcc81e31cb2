"""Early alerting in the hotlist (pure): a pass's early and final reads raise one alert per entry,
superseded when the final text no longer matches, and a late early read changes nothing."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import common_pb2, hotlist_pb2, reads_pb2
from services.hotlist.alerts import PassAlerts, alert_id
from services.hotlist.matcher import HotlistIndex

NOW = 1_700_000_000.0
AGENCY = "pd-1"


def ts(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def index_with(*plates: tuple[str, str]) -> HotlistIndex:
    index = HotlistIndex()
    hotlist = hotlist_pb2.Hotlist(hotlist_id="L1", name="stolen", agency_id=AGENCY, fuzzy_confusables=False)
    hotlist.refreshed_at.CopyFrom(ts(NOW - 60))
    index.put_list(hotlist)
    for entry_id, plate in plates:
        index.put_entry(
            hotlist_pb2.HotlistEntry(
                entry_id=entry_id, hotlist_id="L1", plate=plate, reason=hotlist_pb2.REASON_CODE_STOLEN_VEHICLE
            )
        )
    return index


def read(plate: str, *, provisional: bool, early_plate: str = "", read_id: str = "r1") -> reads_pb2.Read:
    return reads_pb2.Read(
        read_id=read_id,
        plate=plate,
        provisional=provisional,
        provisional_plate=early_plate,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id=AGENCY),
    )


def test_early_then_final_same_text_is_one_alert_in_two_versions() -> None:
    index, alerts = index_with(("e1", "AB12CDE")), PassAlerts()
    early = alerts.alerts(read("AB12CDE", provisional=True), index, NOW, ts(NOW))
    final = alerts.alerts(
        read("AB12CDE", provisional=False, early_plate="AB12CDE"), index, NOW + 3, ts(NOW + 3)
    )
    assert [(a.alert_id, a.provisional, a.superseded) for a in early] == [(alert_id("r1", "e1"), True, False)]
    assert [(a.alert_id, a.provisional, a.superseded) for a in final] == [
        (alert_id("r1", "e1"), False, False)
    ]
    # The final version keeps the time the alert was first raised.
    assert final[0].raised_at == early[0].raised_at == ts(NOW)


def test_final_text_matching_another_entry_supersedes_the_early_alert_and_raises_a_new_one() -> None:
    index, alerts = index_with(("e1", "AB12CDE"), ("e2", "AB12CDF")), PassAlerts()
    early = alerts.alerts(read("AB12CDE", provisional=True), index, NOW, ts(NOW))
    final = alerts.alerts(
        read("AB12CDF", provisional=False, early_plate="AB12CDE"), index, NOW + 3, ts(NOW + 3)
    )
    assert [a.entry.entry_id for a in early] == ["e1"]
    by_entry = {a.entry.entry_id: a for a in final}
    assert set(by_entry) == {"e1", "e2"}
    assert by_entry["e2"].alert_id == alert_id("r1", "e2") and not by_entry["e2"].superseded
    assert by_entry["e1"].alert_id == alert_id("r1", "e1") and by_entry["e1"].superseded
    # The superseded version carries the final read, so the operator sees what the pass really read.
    assert by_entry["e1"].read.plate == "AB12CDF"


def test_superseding_needs_no_memory_of_the_early_alert() -> None:
    """A restarted replica still withdraws the early alert: the final read names the early plate."""
    index = index_with(("e1", "AB12CDE"))
    final = PassAlerts().alerts(
        read("XY34ZZZ", provisional=False, early_plate="AB12CDE"), index, NOW, ts(NOW)
    )
    assert [(a.alert_id, a.superseded) for a in final] == [(alert_id("r1", "e1"), True)]


def test_early_read_after_its_final_read_is_ignored() -> None:
    index, alerts = index_with(("e1", "AB12CDE")), PassAlerts()
    assert alerts.alerts(read("AB12CDE", provisional=False, early_plate="AB12CDE"), index, NOW, ts(NOW))
    assert alerts.alerts(read("AB12CDE", provisional=True), index, NOW, ts(NOW)) == []
    assert alerts.early_skipped == 1


def test_final_read_without_early_read_alerts_as_before() -> None:
    index = index_with(("e1", "AB12CDE"))
    final = PassAlerts().alerts(read("AB12CDE", provisional=False), index, NOW, ts(NOW))
    assert [(a.alert_id, a.provisional, a.superseded) for a in final] == [
        (alert_id("r1", "e1"), False, False)
    ]
    assert PassAlerts().alerts(read("ZZ99ZZZ", provisional=False), index, NOW, ts(NOW)) == []
