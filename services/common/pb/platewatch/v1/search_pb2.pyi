import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.pb.platewatch.v1 import alerts_pb2 as _alerts_pb2
from services.common.pb.platewatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredRead(_message.Message):
    __slots__ = ("read_id", "plate", "region", "confidence", "camera_id", "agency_id", "captured_at", "direction", "lat", "lon", "vehicle", "box")
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    read_id: str
    plate: str
    region: str
    confidence: float
    camera_id: str
    agency_id: str
    captured_at: _timestamp_pb2.Timestamp
    direction: str
    lat: float
    lon: float
    vehicle: _common_pb2.Vehicle
    box: _common_pb2.Box
    def __init__(self, read_id: _Optional[str] = ..., plate: _Optional[str] = ..., region: _Optional[str] = ..., confidence: _Optional[float] = ..., camera_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., direction: _Optional[str] = ..., lat: _Optional[float] = ..., lon: _Optional[float] = ..., vehicle: _Optional[_Union[_common_pb2.Vehicle, _Mapping]] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ...) -> None: ...

class PlateQuery(_message.Message):
    __slots__ = ("plate", "agency_ids", "camera_ids", "to", "min_confidence", "page_size", "page_token")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    plate: str
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    to: _timestamp_pb2.Timestamp
    min_confidence: float
    page_size: int
    page_token: str
    def __init__(self, plate: _Optional[str] = ..., agency_ids: _Optional[_Iterable[str]] = ..., camera_ids: _Optional[_Iterable[str]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_confidence: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., **kwargs) -> None: ...

class SearchReadsResponse(_message.Message):
    __slots__ = ("reads", "next_page_token")
    READS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reads: _containers.RepeatedCompositeFieldContainer[StoredRead]
    next_page_token: str
    def __init__(self, reads: _Optional[_Iterable[_Union[StoredRead, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountReadsRequest(_message.Message):
    __slots__ = ("agency_ids",)
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CountReadsResponse(_message.Message):
    __slots__ = ("reads", "distinct_read_ids")
    READS_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_READ_IDS_FIELD_NUMBER: _ClassVar[int]
    reads: int
    distinct_read_ids: int
    def __init__(self, reads: _Optional[int] = ..., distinct_read_ids: _Optional[int] = ...) -> None: ...

class GetReadImageRequest(_message.Message):
    __slots__ = ("read_id", "kind")
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    read_id: str
    kind: str
    def __init__(self, read_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class GetReadImageResponse(_message.Message):
    __slots__ = ("jpeg",)
    JPEG_FIELD_NUMBER: _ClassVar[int]
    jpeg: bytes
    def __init__(self, jpeg: _Optional[bytes] = ...) -> None: ...

class GetAlertRequest(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    def __init__(self, alert_id: _Optional[str] = ...) -> None: ...
