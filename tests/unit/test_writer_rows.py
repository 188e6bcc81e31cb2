"""Message-to-row conversion and validation of the writer (what goes to the dead-letter topic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition

from services.common.kafka import DeadLetterError
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, reads_pb2
from services.writer.main import Batch, insert_token
from services.writer.rows import (
    ALERTS_COLUMNS,
    READ_IMAGES_COLUMNS,
    READS_COLUMNS,
    alert_row,
    read_rows,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _read(**changes: object) -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id="r1",
        plate="7XY2AB",
        confidence=0.8,
        camera=common_pb2.CameraInfo(camera_id="cam-1", agency_id="pd"),
        candidates=[
            common_pb2.TextCandidate(text="7XY2AB", confidence=0.8),
            common_pb2.TextCandidate(text="7XY2A8", confidence=0.1),
        ],
        crop_jpeg=b"\xff\xd8crop",
    )
    read.captured_at.FromDatetime(NOW - timedelta(seconds=5))
    for name, value in changes.items():
        if name == "camera_id":
            read.camera.camera_id = str(value)
        elif name == "captured_at":
            read.captured_at.FromDatetime(value)  # type: ignore[arg-type]
        else:
            setattr(read, name, value)
    return read


def test_a_read_becomes_one_reads_row_and_one_images_row() -> None:
    rows = read_rows(_read(), NOW)
    assert len(rows.read_row) == len(READS_COLUMNS)
    assert len(rows.image_row) == len(READ_IMAGES_COLUMNS)
    by_name = dict(zip(READS_COLUMNS, rows.read_row, strict=True))
    assert by_name["plate"] == "7XY2AB"
    assert by_name["camera_id"] == "cam-1" and by_name["agency_id"] == "pd"
    assert by_name["captured_at"] == NOW - timedelta(seconds=5)
    # Missing first/last seen fall back to the capture time, not to 1970 (stored as offsets from it).
    assert by_name["first_seen_before_ms"] == by_name["last_seen_after_ms"] == 0
    assert by_name["ingested_after_ms"] == 5000
    assert by_name["candidate_texts"] == ["7XY2AB", "7XY2A8"]
    assert by_name["candidate_confidences"] == pytest.approx([0.8, 0.1])
    assert rows.image_row[:2] == ["r1", b"\xff\xd8crop"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"read_id": ""}, "invalid_message"),
        ({"plate": ""}, "invalid_message"),
        ({"camera_id": ""}, "invalid_message"),
        ({"plate": "X" * 40}, "invalid_message"),
        ({"captured_at": datetime(1971, 1, 1, tzinfo=UTC)}, "absurd_timestamp"),
        ({"captured_at": NOW + timedelta(days=3)}, "absurd_timestamp"),
    ],
)
def test_reads_that_cannot_be_stored_are_dead_letters(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(DeadLetterError) as excinfo:
        read_rows(_read(**changes), NOW)
    assert excinfo.value.reason == reason


def test_a_read_without_capture_time_is_a_dead_letter() -> None:
    read = _read()
    read.ClearField("captured_at")
    with pytest.raises(DeadLetterError, match="captured_at missing"):
        read_rows(read, NOW)


def test_alert_row_names_enums_and_versions_by_kafka_time() -> None:
    alert = alerts_pb2.Alert(
        alert_id="a1",
        read=_read(),
        entry=hotlist_pb2.HotlistEntry(entry_id="e1", hotlist_id="h1"),
        hotlist_name="Stolen",
        match_kind=alerts_pb2.MATCH_KIND_CONFUSABLE,
        status=alerts_pb2.ALERT_STATUS_CONFIRMED_VISUAL,
    )
    alert.raised_at.FromDatetime(NOW)
    row = dict(zip(ALERTS_COLUMNS, alert_row(alert, NOW, 1_750_000_000_000), strict=True))
    assert row["match_kind"] == "MATCH_KIND_CONFUSABLE"
    assert row["status"] == "ALERT_STATUS_CONFIRMED_VISUAL"
    assert (row["read_id"], row["plate"], row["camera_id"]) == ("r1", "7XY2AB", "cam-1")
    assert row["updated_at"] == datetime.fromtimestamp(1_750_000_000, tz=UTC)

    # A workflow step is versioned by its own updated_at; a raised alert below every step.
    alert.updated_at.FromDatetime(NOW)
    assert dict(zip(ALERTS_COLUMNS, alert_row(alert, NOW, 1), strict=True))["updated_at"] == NOW
    raised = alerts_pb2.Alert()
    raised.CopyFrom(alert)
    raised.ClearField("updated_at")
    raised.status = alerts_pb2.ALERT_STATUS_UNCONFIRMED
    assert dict(zip(ALERTS_COLUMNS, alert_row(raised, NOW, 1_760_000_000_000), strict=True))[
        "updated_at"
    ] == datetime.fromtimestamp(0, tz=UTC)

    alert.match_kind = 99  # type: ignore[assignment]  # a newer producer's enum value
    assert dict(zip(ALERTS_COLUMNS, alert_row(alert, NOW, 0), strict=True))["match_kind"] == "99"


def test_insert_token_names_topic_partition_and_offset_range() -> None:
    assert insert_token({TopicPartition("p.reads", 3): (10, 19)}) == "p.reads/3/10-19"


def test_insert_token_of_several_partitions_does_not_depend_on_fetch_order() -> None:
    ranges = {TopicPartition("p.reads", 2): (5, 9), TopicPartition("p.reads", 0): (10, 19)}
    token = insert_token(ranges)
    assert token == "p.reads/0/10-19,p.reads/2/5-9"
    assert insert_token(dict(reversed(list(ranges.items())))) == token
    # Another cut of the same partitions is another token (the read_id check covers that case).
    assert (
        insert_token({TopicPartition("p.reads", 0): (10, 19), TopicPartition("p.reads", 2): (5, 8)}) != token
    )


def test_batch_is_due_by_messages_bytes_or_age() -> None:
    batch = Batch()
    assert not batch.due(3, 1000, 1.0, now=0.0)  # empty: never due
    tp = TopicPartition("p.reads", 0)
    batch.note(tp, 7, size=400)
    started = batch.started
    assert started is not None
    assert not batch.due(3, 1000, 1.0, now=started + 0.5)
    assert batch.due(3, 1000, 1.0, now=started + 1.0)  # the first message is max_seconds old
    batch.note(tp, 8, size=400)
    assert batch.due(2, 1000, 1.0, now=started)  # max_messages
    batch.note(tp, 9, size=400)
    assert batch.value_bytes == 1200
    assert batch.due(10, 1000, 1.0, now=started)  # max_bytes: crops make messages large
    assert batch.last_offsets == {tp: 9}
