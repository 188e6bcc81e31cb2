import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "kind", "actor", "agency_id", "action", "outcome", "purpose_code", "case_number", "result_count", "details_json", "occurred_at", "source")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_CODE_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: str
    actor: str
    agency_id: str
    action: str
    outcome: str
    purpose_code: str
    case_number: str
    result_count: int
    details_json: str
    occurred_at: _timestamp_pb2.Timestamp
    source: str
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[str] = ..., actor: _Optional[str] = ..., agency_id: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[str] = ..., purpose_code: _Optional[str] = ..., case_number: _Optional[str] = ..., result_count: _Optional[int] = ..., details_json: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("sequence", "prev_hash", "entry_hash", "event", "chained_at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CHAINED_AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    prev_hash: str
    entry_hash: str
    event: AuditEvent
    chained_at: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., prev_hash: _Optional[str] = ..., entry_hash: _Optional[str] = ..., event: _Optional[_Union[AuditEvent, _Mapping]] = ..., chained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditCheckpoint(_message.Message):
    __slots__ = ("sequence", "entry_hash", "created_at", "key_id", "signature", "public_key")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    entry_hash: str
    created_at: _timestamp_pb2.Timestamp
    key_id: str
    signature: bytes
    public_key: bytes
    def __init__(self, sequence: _Optional[int] = ..., entry_hash: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("from_sequence", "to_sequence", "agency_id", "kind", "actor", "to", "limit")
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    to_sequence: int
    agency_id: str
    kind: str
    actor: str
    to: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, from_sequence: _Optional[int] = ..., to_sequence: _Optional[int] = ..., agency_id: _Optional[str] = ..., kind: _Optional[str] = ..., actor: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., **kwargs) -> None: ...

class GetAuditCheckpointRequest(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class ListAuditCheckpointsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LegalHold(_message.Message):
    __slots__ = ("hold_id", "agency_id", "case_number", "read_ids", "reason", "placed_by", "placed_at", "released", "released_by", "released_at")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    READ_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLACED_BY_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    RELEASED_BY_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    agency_id: str
    case_number: str
    read_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    placed_by: str
    placed_at: _timestamp_pb2.Timestamp
    released: bool
    released_by: str
    released_at: _timestamp_pb2.Timestamp
    def __init__(self, hold_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., case_number: _Optional[str] = ..., read_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., placed_by: _Optional[str] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., released: bool = ..., released_by: _Optional[str] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PlaceLegalHoldRequest(_message.Message):
    __slots__ = ("agency_id", "case_number", "read_ids", "reason", "actor")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    READ_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    case_number: str
    read_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    actor: str
    def __init__(self, agency_id: _Optional[str] = ..., case_number: _Optional[str] = ..., read_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ReleaseLegalHoldRequest(_message.Message):
    __slots__ = ("hold_id", "actor")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    actor: str
    def __init__(self, hold_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ListLegalHoldsRequest(_message.Message):
    __slots__ = ("agency_id", "include_released")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RELEASED_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    include_released: bool
    def __init__(self, agency_id: _Optional[str] = ..., include_released: bool = ...) -> None: ...

class ListLegalHoldsResponse(_message.Message):
    __slots__ = ("holds",)
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    holds: _containers.RepeatedCompositeFieldContainer[LegalHold]
    def __init__(self, holds: _Optional[_Iterable[_Union[LegalHold, _Mapping]]] = ...) -> None: ...

class JsonReport(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class RetentionReportRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    def __init__(self, agency_id: _Optional[str] = ...) -> None: ...

class RunRetentionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyChainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransparencyDataRequest(_message.Message):
    __slots__ = ("agency_id", "to")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    to: _timestamp_pb2.Timestamp
    def __init__(self, agency_id: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...
