import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Frame(_message.Message):
    __slots__ = ("camera_id", "agency_id", "sequence", "captured_at", "jpeg", "width", "height", "source", "region", "roll_deg")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    JPEG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ROLL_DEG_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    agency_id: str
    sequence: int
    captured_at: _timestamp_pb2.Timestamp
    jpeg: bytes
    width: int
    height: int
    source: str
    region: str
    roll_deg: float
    def __init__(self, camera_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., sequence: _Optional[int] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., jpeg: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., source: _Optional[str] = ..., region: _Optional[str] = ..., roll_deg: _Optional[float] = ...) -> None: ...

class CameraHeartbeat(_message.Message):
    __slots__ = ("camera_id", "agency_id", "at", "connected", "frames_captured", "frames_published", "frames_dropped", "last_error")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_CAPTURED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    agency_id: str
    at: _timestamp_pb2.Timestamp
    connected: bool
    frames_captured: int
    frames_published: int
    frames_dropped: int
    last_error: str
    def __init__(self, camera_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected: bool = ..., frames_captured: _Optional[int] = ..., frames_published: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...
