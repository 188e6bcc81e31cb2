import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReasonCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_CODE_UNSPECIFIED: _ClassVar[ReasonCode]
    REASON_CODE_STOLEN_VEHICLE: _ClassVar[ReasonCode]
    REASON_CODE_STOLEN_PLATE: _ClassVar[ReasonCode]
    REASON_CODE_WANTED_PERSON: _ClassVar[ReasonCode]
    REASON_CODE_MISSING_PERSON: _ClassVar[ReasonCode]
    REASON_CODE_AMBER_ALERT: _ClassVar[ReasonCode]
    REASON_CODE_SILVER_ALERT: _ClassVar[ReasonCode]
    REASON_CODE_CUSTOM: _ClassVar[ReasonCode]
REASON_CODE_UNSPECIFIED: ReasonCode
REASON_CODE_STOLEN_VEHICLE: ReasonCode
REASON_CODE_STOLEN_PLATE: ReasonCode
REASON_CODE_WANTED_PERSON: ReasonCode
REASON_CODE_MISSING_PERSON: ReasonCode
REASON_CODE_AMBER_ALERT: ReasonCode
REASON_CODE_SILVER_ALERT: ReasonCode
REASON_CODE_CUSTOM: ReasonCode

class Hotlist(_message.Message):
    __slots__ = ("hotlist_id", "name", "agency_id", "max_age_seconds", "refreshed_at", "fuzzy_confusables", "entry_count")
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_AT_FIELD_NUMBER: _ClassVar[int]
    FUZZY_CONFUSABLES_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    hotlist_id: str
    name: str
    agency_id: str
    max_age_seconds: int
    refreshed_at: _timestamp_pb2.Timestamp
    fuzzy_confusables: bool
    entry_count: int
    def __init__(self, hotlist_id: _Optional[str] = ..., name: _Optional[str] = ..., agency_id: _Optional[str] = ..., max_age_seconds: _Optional[int] = ..., refreshed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fuzzy_confusables: bool = ..., entry_count: _Optional[int] = ...) -> None: ...

class HotlistEntry(_message.Message):
    __slots__ = ("entry_id", "hotlist_id", "plate", "region", "reason", "priority", "source", "agency_id", "expires_at", "notes", "vehicle_description")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    hotlist_id: str
    plate: str
    region: str
    reason: ReasonCode
    priority: int
    source: str
    agency_id: str
    expires_at: _timestamp_pb2.Timestamp
    notes: str
    vehicle_description: str
    def __init__(self, entry_id: _Optional[str] = ..., hotlist_id: _Optional[str] = ..., plate: _Optional[str] = ..., region: _Optional[str] = ..., reason: _Optional[_Union[ReasonCode, str]] = ..., priority: _Optional[int] = ..., source: _Optional[str] = ..., agency_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notes: _Optional[str] = ..., vehicle_description: _Optional[str] = ...) -> None: ...

class CreateHotlistRequest(_message.Message):
    __slots__ = ("hotlist",)
    HOTLIST_FIELD_NUMBER: _ClassVar[int]
    hotlist: Hotlist
    def __init__(self, hotlist: _Optional[_Union[Hotlist, _Mapping]] = ...) -> None: ...

class ListHotlistsRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    def __init__(self, agency_id: _Optional[str] = ...) -> None: ...

class ListHotlistsResponse(_message.Message):
    __slots__ = ("hotlists",)
    HOTLISTS_FIELD_NUMBER: _ClassVar[int]
    hotlists: _containers.RepeatedCompositeFieldContainer[Hotlist]
    def __init__(self, hotlists: _Optional[_Iterable[_Union[Hotlist, _Mapping]]] = ...) -> None: ...

class AddEntriesRequest(_message.Message):
    __slots__ = ("hotlist_id", "entries")
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    hotlist_id: str
    entries: _containers.RepeatedCompositeFieldContainer[HotlistEntry]
    def __init__(self, hotlist_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[HotlistEntry, _Mapping]]] = ...) -> None: ...

class AddEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HotlistEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HotlistEntry, _Mapping]]] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("hotlist_id",)
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    hotlist_id: str
    def __init__(self, hotlist_id: _Optional[str] = ...) -> None: ...

class ListEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HotlistEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HotlistEntry, _Mapping]]] = ...) -> None: ...

class RemoveEntryRequest(_message.Message):
    __slots__ = ("hotlist_id", "entry_id")
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    hotlist_id: str
    entry_id: str
    def __init__(self, hotlist_id: _Optional[str] = ..., entry_id: _Optional[str] = ...) -> None: ...

class RemoveEntryResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: bool = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("line", "column", "message")
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    line: int
    column: str
    message: str
    def __init__(self, line: _Optional[int] = ..., column: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ImportCsvRequest(_message.Message):
    __slots__ = ("hotlist_id", "filename", "csv", "allow_partial", "replace")
    HOTLIST_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    hotlist_id: str
    filename: str
    csv: bytes
    allow_partial: bool
    replace: bool
    def __init__(self, hotlist_id: _Optional[str] = ..., filename: _Optional[str] = ..., csv: _Optional[bytes] = ..., allow_partial: bool = ..., replace: bool = ...) -> None: ...

class ImportCsvResponse(_message.Message):
    __slots__ = ("imported", "updated", "removed", "errors", "applied", "unchanged", "error_count", "rows")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    imported: int
    updated: int
    removed: int
    errors: _containers.RepeatedCompositeFieldContainer[RowError]
    applied: bool
    unchanged: int
    error_count: int
    rows: int
    def __init__(self, imported: _Optional[int] = ..., updated: _Optional[int] = ..., removed: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ..., applied: bool = ..., unchanged: _Optional[int] = ..., error_count: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

class HotlistChange(_message.Message):
    __slots__ = ("hotlist", "entry", "deleted", "at")
    HOTLIST_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    hotlist: Hotlist
    entry: HotlistEntry
    deleted: bool
    at: _timestamp_pb2.Timestamp
    def __init__(self, hotlist: _Optional[_Union[Hotlist, _Mapping]] = ..., entry: _Optional[_Union[HotlistEntry, _Mapping]] = ..., deleted: bool = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
