"""Turning Kafka messages into ClickHouse rows, and refusing the ones that can never be stored.

Column lists here must match services/storage/migrations. Any message that fails validation raises
DeadLetterError; the writer dead-letters it and carries on with the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.kafka import DeadLetterError
from services.common.pb.platewatch.v1 import alerts_pb2, hotlist_pb2, reads_pb2

READS_COLUMNS = (
    "read_id",
    "plate",
    "region",
    "format_known",
    "confidence",
    "camera_id",
    "agency_id",
    "lat",
    "lon",
    "direction",
    "captured_at",
    # first_seen, last_seen, normalized_at and ingested_at are stored as offsets from captured_at
    # (migration 0008) and read back under their names through ALIAS columns.
    "first_seen_before_ms",
    "last_seen_after_ms",
    "vehicle_color",
    "vehicle_color_confidence",
    "vehicle_make",
    "vehicle_type",
    "box_x",
    "box_y",
    "box_width",
    "box_height",
    "frames",
    "candidate_texts",
    "candidate_confidences",
    "normalized_after_ms",
    "ingested_after_ms",
)
READ_IMAGES_COLUMNS = ("read_id", "crop_jpeg", "frame_jpeg", "captured_at")
ALERTS_COLUMNS = (
    "alert_id",
    "read_id",
    "plate",
    "hotlist_id",
    "hotlist_name",
    "entry_id",
    "match_kind",
    "region_mismatch",
    "stale",
    "status",
    "raised_at",
    "agency_id",
    "camera_id",
    "updated_at",
    "outcome",
    "confirmed_by",
    "confirmed_at",
    "dispatched_by",
    "dispatched_at",
    "dismissed_by",
    "dismissed_at",
    "outcome_recorded_by",
    "outcome_recorded_at",
    "note",
    "alert_pb",
)

# Captures before this are corrupt clocks, not history; ClickHouse DateTime64 also has a range.
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
# Camera clocks drift; a day ahead is tolerated, more is a broken clock.
FUTURE_TOLERANCE = timedelta(days=1)
MAX_ID_LENGTH = 256
MAX_PLATE_LENGTH = 32


@dataclass(frozen=True)
class ReadRows:
    read_id: str
    captured_at: datetime
    read_row: list[Any]
    image_row: list[Any]


UINT32_MAX = 2**32 - 1


def _milliseconds(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _offset_ms(later: datetime, earlier: datetime, maximum: int) -> int:
    """later - earlier in whole milliseconds, clamped to [0, maximum] (a column's range)."""
    return min(max(_milliseconds(later - earlier), 0), maximum)


def _timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _checked_time(ts: Timestamp, field: str, now: datetime, required: bool) -> datetime:
    """A plausible capture-era time; a missing optional one falls back to epoch-free `now`."""
    if ts.seconds == 0 and ts.nanos == 0:
        if required:
            raise DeadLetterError("invalid_message", f"{field} missing")
        return now
    try:
        value = _timestamp(ts)
    except (ValueError, OverflowError) as exc:
        raise DeadLetterError("absurd_timestamp", f"{field}: {exc}") from exc
    if value < EARLIEST_PLAUSIBLE or value > now + FUTURE_TOLERANCE:
        raise DeadLetterError("absurd_timestamp", f"{field}={value.isoformat()}")
    return value


def _enum_name(enum: Any, value: int) -> str:
    """The value's name; proto3 enums are open, so a newer producer may send a number we lack."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def _require_id(value: str, field: str) -> None:
    if not value:
        raise DeadLetterError("invalid_message", f"{field} missing")
    if len(value) > MAX_ID_LENGTH:
        raise DeadLetterError("invalid_message", f"{field} longer than {MAX_ID_LENGTH}")


# (agency_id, plate, captured_at) -> the plate's stored token; see services/writer/main.py.
PlateTokenizer = Callable[[str, str, datetime], str]


def read_rows(read: reads_pb2.Read, now: datetime, tokenize: PlateTokenizer | None = None) -> ReadRows:
    """The reads row and read_images row of one read; DeadLetterError when it cannot be stored.

    With `tokenize` the plate is stored only as its token and the recognizer's candidate texts
    (other readings of the same plate, in clear) are not stored at all. `tokenize` may raise
    services.governance.pseudonymize.KeyDestroyed, which the caller handles."""
    _require_id(read.read_id, "read_id")
    _require_id(read.camera.camera_id, "camera.camera_id")
    if not read.plate:
        raise DeadLetterError("invalid_message", "plate missing")
    if len(read.plate) > MAX_PLATE_LENGTH:
        raise DeadLetterError("invalid_message", f"plate longer than {MAX_PLATE_LENGTH}")
    captured_at = _checked_time(read.captured_at, "captured_at", now, required=True)
    first_seen = _checked_time(read.first_seen, "first_seen", captured_at, required=False)
    last_seen = _checked_time(read.last_seen, "last_seen", captured_at, required=False)
    normalized_at = _checked_time(read.normalized_at, "normalized_at", now, required=False)
    if tokenize is not None:
        plate = tokenize(read.camera.agency_id, read.plate, captured_at)
        candidate_texts: list[str] = []
        candidate_confidences: list[float] = []
    else:
        plate = read.plate
        candidate_texts = [c.text for c in read.candidates]
        candidate_confidences = [c.confidence for c in read.candidates]
    read_row = [
        read.read_id,
        plate,
        read.region,
        read.format_known,
        read.confidence,
        read.camera.camera_id,
        read.camera.agency_id,
        read.camera.lat,
        read.camera.lon,
        read.direction,
        captured_at,
        _offset_ms(captured_at, first_seen, UINT32_MAX),
        _offset_ms(last_seen, captured_at, UINT32_MAX),
        read.vehicle.color,
        read.vehicle.color_confidence,
        read.vehicle.make,
        read.vehicle.type,
        read.box.x,
        read.box.y,
        read.box.width,
        read.box.height,
        read.frames,
        candidate_texts,
        candidate_confidences,
        _milliseconds(normalized_at - captured_at),
        _milliseconds(now - captured_at),
    ]
    image_row = [read.read_id, read.crop_jpeg, read.frame_thumbnail_jpeg, captured_at]
    return ReadRows(read.read_id, captured_at, read_row, image_row)


def _optional_time(message: Any, field: str) -> datetime | None:
    """A workflow timestamp (set by the API from its clock), None when unset."""
    if not message.HasField(field):
        return None
    try:
        return _timestamp(getattr(message, field))
    except (ValueError, OverflowError) as exc:
        raise DeadLetterError("absurd_timestamp", f"{field}: {exc}") from exc


def _alert_without_images(alert: alerts_pb2.Alert) -> bytes:
    """The alert as protobuf minus image bytes (stored once, in read_images)."""
    copy = alerts_pb2.Alert()
    copy.CopyFrom(alert)
    copy.read.ClearField("crop_jpeg")
    copy.read.ClearField("frame_thumbnail_jpeg")
    return copy.SerializeToString()


def alert_row(alert: alerts_pb2.Alert, now: datetime, kafka_timestamp_ms: int) -> list[Any]:
    """The alerts row of one alert version; the table keeps the version with the greatest
    `updated_at`. A workflow step carries the API's `updated_at`; a raised alert (the hotlist sets no
    `updated_at`) is versioned at the epoch, so a re-raise on replay never outranks a confirmation,
    whenever it lands. `kafka_timestamp_ms` only orders steps that lack a time of their own."""
    _require_id(alert.alert_id, "alert_id")
    _require_id(alert.read.read_id, "read.read_id")
    raised_at = _checked_time(alert.raised_at, "raised_at", now, required=True)
    if alert.HasField("updated_at"):
        updated_at = _checked_time(alert.updated_at, "updated_at", now, required=True)
    elif alert.status in (alerts_pb2.ALERT_STATUS_UNSPECIFIED, alerts_pb2.ALERT_STATUS_UNCONFIRMED):
        updated_at = datetime.fromtimestamp(0, tz=UTC)
    else:
        updated_at = (
            datetime.fromtimestamp(kafka_timestamp_ms / 1000, tz=UTC) if kafka_timestamp_ms > 0 else now
        )
    return [
        alert.alert_id,
        alert.read.read_id,
        alert.read.plate,
        alert.entry.hotlist_id,
        alert.hotlist_name,
        alert.entry.entry_id,
        _enum_name(alerts_pb2.MatchKind, alert.match_kind),
        alert.region_mismatch,
        alert.stale,
        _enum_name(alerts_pb2.AlertStatus, alert.status),
        raised_at,
        alert.read.camera.agency_id,
        alert.read.camera.camera_id,
        updated_at,
        _enum_name(alerts_pb2.AlertOutcome, alert.outcome) if alert.outcome else "",
        alert.confirmed_by,
        _optional_time(alert, "confirmed_at"),
        alert.dispatched_by,
        _optional_time(alert, "dispatched_at"),
        alert.dismissed_by,
        _optional_time(alert, "dismissed_at"),
        alert.outcome_recorded_by,
        _optional_time(alert, "outcome_recorded_at"),
        alert.note,
        _alert_without_images(alert),
    ]


HOTLIST_ENTRIES_COLUMNS = (
    "hotlist_id",
    "entry_id",
    "plate",
    "hotlist_name",
    "agency_id",
    "reason",
    "active",
    "updated_at",
)


def hotlist_entry_row(change: hotlist_pb2.HotlistChange, list_names: dict[str, str]) -> list[Any] | None:
    """The hotlist_entries mirror row of one HOTLIST_CHANGES record, or None for a record with no
    change. A list record becomes the list's own row (entry_id ""), which carries its name for
    analytics joins and remembers it in `list_names` for the entries that follow; deletions are
    rows with active = false (ReplacingMergeTree keeps the latest version)."""
    updated_at = _timestamp(change.at) if change.HasField("at") else datetime.now(UTC)
    active = not change.deleted
    kind = change.WhichOneof("change")
    if kind == "hotlist":
        hotlist = change.hotlist
        _require_id(hotlist.hotlist_id, "hotlist.hotlist_id")
        if hotlist.name:
            list_names[hotlist.hotlist_id] = hotlist.name
        return [hotlist.hotlist_id, "", "", hotlist.name, hotlist.agency_id, "", active, updated_at]
    if kind == "entry":
        entry = change.entry
        _require_id(entry.hotlist_id, "entry.hotlist_id")
        _require_id(entry.entry_id, "entry.entry_id")
        return [
            entry.hotlist_id,
            entry.entry_id,
            entry.plate,
            list_names.get(entry.hotlist_id, ""),
            entry.agency_id,
            _enum_name(hotlist_pb2.ReasonCode, entry.reason),
            active,
            updated_at,
        ]
    return None
