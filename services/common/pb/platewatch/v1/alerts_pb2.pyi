import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.pb.platewatch.v1 import reads_pb2 as _reads_pb2
from services.common.pb.platewatch.v1 import hotlist_pb2 as _hotlist_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATUS_UNSPECIFIED: _ClassVar[AlertStatus]
    ALERT_STATUS_UNCONFIRMED: _ClassVar[AlertStatus]
    ALERT_STATUS_CONFIRMED_VISUAL: _ClassVar[AlertStatus]
    ALERT_STATUS_CONFIRMED_DISPATCH: _ClassVar[AlertStatus]
    ALERT_STATUS_DISMISSED_MISREAD: _ClassVar[AlertStatus]

class AlertOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_OUTCOME_UNSPECIFIED: _ClassVar[AlertOutcome]
    ALERT_OUTCOME_STOP: _ClassVar[AlertOutcome]
    ALERT_OUTCOME_ARREST: _ClassVar[AlertOutcome]
    ALERT_OUTCOME_NONE: _ClassVar[AlertOutcome]

class MatchKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_KIND_UNSPECIFIED: _ClassVar[MatchKind]
    MATCH_KIND_EXACT: _ClassVar[MatchKind]
    MATCH_KIND_CONFUSABLE: _ClassVar[MatchKind]
    MATCH_KIND_WILDCARD: _ClassVar[MatchKind]
ALERT_STATUS_UNSPECIFIED: AlertStatus
ALERT_STATUS_UNCONFIRMED: AlertStatus
ALERT_STATUS_CONFIRMED_VISUAL: AlertStatus
ALERT_STATUS_CONFIRMED_DISPATCH: AlertStatus
ALERT_STATUS_DISMISSED_MISREAD: AlertStatus
ALERT_OUTCOME_UNSPECIFIED: AlertOutcome
ALERT_OUTCOME_STOP: AlertOutcome
ALERT_OUTCOME_ARREST: AlertOutcome
ALERT_OUTCOME_NONE: AlertOutcome
MATCH_KIND_UNSPECIFIED: MatchKind
MATCH_KIND_EXACT: MatchKind
MATCH_KIND_CONFUSABLE: MatchKind
MATCH_KIND_WILDCARD: MatchKind

class Alert(_message.Message):
    __slots__ = ("alert_id", "read", "entry", "hotlist_name", "match_kind", "region_mismatch", "stale", "list_age_seconds", "status", "raised_at", "outcome", "confirmed_by", "confirmed_at", "dispatched_by", "dispatched_at", "dismissed_by", "dismissed_at", "outcome_recorded_by", "outcome_recorded_at", "note", "updated_at", "provisional", "superseded")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    HOTLIST_NAME_FIELD_NUMBER: _ClassVar[int]
    MATCH_KIND_FIELD_NUMBER: _ClassVar[int]
    REGION_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    LIST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_BY_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_AT_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_BY_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_AT_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_BY_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_RECORDED_BY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    read: _reads_pb2.Read
    entry: _hotlist_pb2.HotlistEntry
    hotlist_name: str
    match_kind: MatchKind
    region_mismatch: bool
    stale: bool
    list_age_seconds: int
    status: AlertStatus
    raised_at: _timestamp_pb2.Timestamp
    outcome: AlertOutcome
    confirmed_by: str
    confirmed_at: _timestamp_pb2.Timestamp
    dispatched_by: str
    dispatched_at: _timestamp_pb2.Timestamp
    dismissed_by: str
    dismissed_at: _timestamp_pb2.Timestamp
    outcome_recorded_by: str
    outcome_recorded_at: _timestamp_pb2.Timestamp
    note: str
    updated_at: _timestamp_pb2.Timestamp
    provisional: bool
    superseded: bool
    def __init__(self, alert_id: _Optional[str] = ..., read: _Optional[_Union[_reads_pb2.Read, _Mapping]] = ..., entry: _Optional[_Union[_hotlist_pb2.HotlistEntry, _Mapping]] = ..., hotlist_name: _Optional[str] = ..., match_kind: _Optional[_Union[MatchKind, str]] = ..., region_mismatch: bool = ..., stale: bool = ..., list_age_seconds: _Optional[int] = ..., status: _Optional[_Union[AlertStatus, str]] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[_Union[AlertOutcome, str]] = ..., confirmed_by: _Optional[str] = ..., confirmed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dispatched_by: _Optional[str] = ..., dispatched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dismissed_by: _Optional[str] = ..., dismissed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome_recorded_by: _Optional[str] = ..., outcome_recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provisional: bool = ..., superseded: bool = ...) -> None: ...
