"""JSON shapes of the HTTP API and their conversion from and to the protobuf contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field

from services.api.alert_workflow import (
    MAX_ACTOR_LENGTH,
    MAX_NOTE_LENGTH,
    Action,
    Outcome,
    allowed_actions,
    outcome_name,
)
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, hotlist_pb2, search_pb2

API_PREFIX = "/api/v1"


def timestamp_to_datetime(message: object, field_name: str) -> datetime | None:
    """The Timestamp field `field_name` of `message` as an aware UTC datetime, None when unset."""
    if not message.HasField(field_name):  # type: ignore[attr-defined]
        return None
    stamp: Timestamp = getattr(message, field_name)
    return stamp.ToDatetime(tzinfo=UTC)


def datetime_to_timestamp(value: datetime) -> Timestamp:
    """Naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _enum_suffix(full_name: str, prefix: str) -> str:
    return full_name.removeprefix(prefix).lower()


class Reason(StrEnum):
    """Why a plate is on a hotlist (proto ReasonCode without its prefix, lower case)."""

    unspecified = "unspecified"
    stolen_vehicle = "stolen_vehicle"
    stolen_plate = "stolen_plate"
    wanted_person = "wanted_person"
    missing_person = "missing_person"
    amber_alert = "amber_alert"
    silver_alert = "silver_alert"
    custom = "custom"

    @classmethod
    def from_proto(cls, value: int) -> Reason:
        return cls(_enum_suffix(hotlist_pb2.ReasonCode.Name(value), "REASON_CODE_"))  # type: ignore[arg-type]

    def to_proto(self) -> int:
        return hotlist_pb2.ReasonCode.Value(f"REASON_CODE_{self.value.upper()}")


def match_kind_name(value: int) -> str:
    return _enum_suffix(alerts_pb2.MatchKind.Name(value), "MATCH_KIND_")  # type: ignore[arg-type]


def alert_status_name(value: int) -> str:
    return _enum_suffix(alerts_pb2.AlertStatus.Name(value), "ALERT_STATUS_")  # type: ignore[arg-type]


class BoxOut(BaseModel):
    x: int
    y: int
    width: int
    height: int

    @classmethod
    def from_proto(cls, box: common_pb2.Box) -> BoxOut:
        return cls(x=box.x, y=box.y, width=box.width, height=box.height)


class VehicleOut(BaseModel):
    color: str = ""
    color_confidence: float = 0.0
    make: str = ""
    type: str = ""

    @classmethod
    def from_proto(cls, vehicle: common_pb2.Vehicle) -> VehicleOut:
        return cls(
            color=vehicle.color,
            color_confidence=vehicle.color_confidence,
            make=vehicle.make,
            type=vehicle.type,
        )


class ReadOut(BaseModel):
    """A stored read; images are fetched separately from `crop_url` and `frame_url`."""

    read_id: str
    plate: str
    region: str
    confidence: float
    camera_id: str
    agency_id: str
    captured_at: datetime | None
    direction: str
    lat: float
    lon: float
    vehicle: VehicleOut | None
    box: BoxOut | None
    crop_url: str
    frame_url: str

    @classmethod
    def from_proto(cls, read: search_pb2.StoredRead) -> ReadOut:
        return cls(
            read_id=read.read_id,
            plate=read.plate,
            region=read.region,
            confidence=read.confidence,
            camera_id=read.camera_id,
            agency_id=read.agency_id,
            captured_at=timestamp_to_datetime(read, "captured_at"),
            direction=read.direction,
            lat=read.lat,
            lon=read.lon,
            vehicle=VehicleOut.from_proto(read.vehicle) if read.HasField("vehicle") else None,
            box=BoxOut.from_proto(read.box) if read.HasField("box") else None,
            crop_url=f"{API_PREFIX}/reads/{read.read_id}/crop.jpg",
            frame_url=f"{API_PREFIX}/reads/{read.read_id}/frame.jpg",
        )


class SearchReadsOut(BaseModel):
    reads: list[ReadOut]
    # Pass back as `page_token` for the next page; null on the last page.
    next_page_token: str | None


class CountOut(BaseModel):
    reads: int
    distinct_read_ids: int


# The largest value an int64 proto field holds (a larger one cannot be sent to the service).
INT64_MAX = 2**63 - 1


class HotlistIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    agency_id: str = ""
    # Alerts from a list not refreshed within this many seconds are flagged stale; 0 = never.
    max_age_seconds: int = Field(default=0, ge=0, le=INT64_MAX)
    fuzzy_confusables: bool = False

    def to_proto(self) -> hotlist_pb2.Hotlist:
        return hotlist_pb2.Hotlist(
            name=self.name,
            agency_id=self.agency_id,
            max_age_seconds=self.max_age_seconds,
            fuzzy_confusables=self.fuzzy_confusables,
        )


class HotlistOut(BaseModel):
    hotlist_id: str
    name: str
    agency_id: str
    max_age_seconds: int
    refreshed_at: datetime | None
    fuzzy_confusables: bool
    entry_count: int

    @classmethod
    def from_proto(cls, hotlist: hotlist_pb2.Hotlist) -> HotlistOut:
        return cls(
            hotlist_id=hotlist.hotlist_id,
            name=hotlist.name,
            agency_id=hotlist.agency_id,
            max_age_seconds=hotlist.max_age_seconds,
            refreshed_at=timestamp_to_datetime(hotlist, "refreshed_at"),
            fuzzy_confusables=hotlist.fuzzy_confusables,
            entry_count=hotlist.entry_count,
        )


class HotlistsOut(BaseModel):
    hotlists: list[HotlistOut]


class EntryIn(BaseModel):
    # Plate; may contain '?' (one character) and '*' (any run). Stored upper case.
    plate: str = Field(min_length=1, max_length=32)
    region: str = ""
    reason: Reason = Reason.unspecified
    # 1 = highest.
    priority: int = Field(default=1, ge=1)
    source: str = ""
    agency_id: str = ""
    expires_at: datetime | None = None
    notes: str = ""
    vehicle_description: str = ""

    def to_proto(self, hotlist_id: str) -> hotlist_pb2.HotlistEntry:
        entry = hotlist_pb2.HotlistEntry(
            hotlist_id=hotlist_id,
            plate=self.plate.strip().upper(),
            region=self.region,
            reason=self.reason.to_proto(),  # type: ignore[arg-type]
            priority=self.priority,
            source=self.source,
            agency_id=self.agency_id,
            notes=self.notes,
            vehicle_description=self.vehicle_description,
        )
        if self.expires_at is not None:
            entry.expires_at.CopyFrom(datetime_to_timestamp(self.expires_at))
        return entry


class EntriesIn(BaseModel):
    entries: list[EntryIn] = Field(min_length=1)


class EntryOut(BaseModel):
    entry_id: str
    hotlist_id: str
    plate: str
    region: str
    reason: Reason
    priority: int
    source: str
    agency_id: str
    expires_at: datetime | None
    notes: str
    vehicle_description: str

    @classmethod
    def from_proto(cls, entry: hotlist_pb2.HotlistEntry) -> EntryOut:
        return cls(
            entry_id=entry.entry_id,
            hotlist_id=entry.hotlist_id,
            plate=entry.plate,
            region=entry.region,
            reason=Reason.from_proto(entry.reason),
            priority=entry.priority,
            source=entry.source,
            agency_id=entry.agency_id,
            expires_at=timestamp_to_datetime(entry, "expires_at"),
            notes=entry.notes,
            vehicle_description=entry.vehicle_description,
        )


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class AlertOut(BaseModel):
    """A hotlist hit as shown to an operator (the same JSON on GET /alerts and the live stream)."""

    alert_id: str
    read_id: str
    plate: str
    region: str
    confidence: float
    hotlist_id: str
    hotlist_name: str
    entry_id: str
    entry_plate: str
    reason: Reason
    priority: int
    notes: str
    vehicle_description: str
    camera_id: str
    camera_name: str
    agency_id: str
    captured_at: datetime | None
    raised_at: datetime | None
    match_kind: str
    stale: bool
    list_age_seconds: int
    region_mismatch: bool
    # Raised on an early read of a pass still in view; the pass's final read replaces it (same alert_id).
    provisional: bool = False
    # The pass's final consensus text no longer matches this entry: a probable misread in early frames.
    superseded: bool = False
    status: str
    # Null when the alert carries no crop image.
    crop_url: str | None
    # Workflow: "" / null until the step happened. outcome is "stop", "arrest", "none" or "".
    outcome: str = ""
    confirmed_by: str = ""
    confirmed_at: datetime | None = None
    dispatched_by: str = ""
    dispatched_at: datetime | None = None
    dismissed_by: str = ""
    dismissed_at: datetime | None = None
    outcome_recorded_by: str = ""
    outcome_recorded_at: datetime | None = None
    note: str = ""
    # Time of the latest workflow step; null on the alert as raised.
    updated_at: datetime | None = None
    # What POST /alerts/{alert_id}/actions accepts now.
    allowed_actions: list[str] = []

    @classmethod
    def from_proto(cls, alert: alerts_pb2.Alert) -> AlertOut:
        read, entry = alert.read, alert.entry
        return cls(
            alert_id=alert.alert_id,
            read_id=read.read_id,
            plate=read.plate,
            region=read.region,
            confidence=read.confidence,
            hotlist_id=entry.hotlist_id,
            hotlist_name=alert.hotlist_name,
            entry_id=entry.entry_id,
            entry_plate=entry.plate,
            reason=Reason.from_proto(entry.reason),
            priority=entry.priority,
            notes=entry.notes,
            vehicle_description=entry.vehicle_description,
            camera_id=read.camera.camera_id,
            camera_name=read.camera.name,
            agency_id=read.camera.agency_id,
            captured_at=timestamp_to_datetime(read, "captured_at"),
            raised_at=timestamp_to_datetime(alert, "raised_at"),
            match_kind=match_kind_name(alert.match_kind),
            stale=alert.stale,
            list_age_seconds=alert.list_age_seconds,
            region_mismatch=alert.region_mismatch,
            provisional=alert.provisional,
            superseded=alert.superseded,
            status=alert_status_name(alert.status),
            crop_url=f"{API_PREFIX}/alerts/{alert.alert_id}/crop.jpg" if read.crop_jpeg else None,
            outcome=outcome_name(alert.outcome),
            confirmed_by=alert.confirmed_by,
            confirmed_at=timestamp_to_datetime(alert, "confirmed_at"),
            dispatched_by=alert.dispatched_by,
            dispatched_at=timestamp_to_datetime(alert, "dispatched_at"),
            dismissed_by=alert.dismissed_by,
            dismissed_at=timestamp_to_datetime(alert, "dismissed_at"),
            outcome_recorded_by=alert.outcome_recorded_by,
            outcome_recorded_at=timestamp_to_datetime(alert, "outcome_recorded_at"),
            note=alert.note,
            updated_at=timestamp_to_datetime(alert, "updated_at"),
            allowed_actions=[str(action) for action in allowed_actions(alert)],
        )


class AlertActionIn(BaseModel):
    """One operator step on an alert. `outcome` only with record_outcome (and required there)."""

    action: Action
    actor: str = Field(min_length=1, max_length=MAX_ACTOR_LENGTH, pattern=r"\S")
    outcome: Outcome | None = None
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class ReadinessOut(BaseModel):
    ready: bool
    checks: dict[str, bool]


class ErrorOut(BaseModel):
    detail: str
