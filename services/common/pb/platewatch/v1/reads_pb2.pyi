import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.pb.platewatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RawRead(_message.Message):
    __slots__ = ("camera_id", "agency_id", "frame_sequence", "captured_at", "plate_index", "box", "frame_width", "frame_height", "candidates", "detection_confidence", "crop_jpeg", "frame_thumbnail_jpeg", "vehicle", "model_version", "inferred_at", "printed_region")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    PLATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    FRAME_WIDTH_FIELD_NUMBER: _ClassVar[int]
    FRAME_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DETECTION_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CROP_JPEG_FIELD_NUMBER: _ClassVar[int]
    FRAME_THUMBNAIL_JPEG_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INFERRED_AT_FIELD_NUMBER: _ClassVar[int]
    PRINTED_REGION_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    agency_id: str
    frame_sequence: int
    captured_at: _timestamp_pb2.Timestamp
    plate_index: int
    box: _common_pb2.Box
    frame_width: int
    frame_height: int
    candidates: _containers.RepeatedCompositeFieldContainer[_common_pb2.TextCandidate]
    detection_confidence: float
    crop_jpeg: bytes
    frame_thumbnail_jpeg: bytes
    vehicle: _common_pb2.Vehicle
    model_version: str
    inferred_at: _timestamp_pb2.Timestamp
    printed_region: str
    def __init__(self, camera_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., frame_sequence: _Optional[int] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., plate_index: _Optional[int] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., frame_width: _Optional[int] = ..., frame_height: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[_common_pb2.TextCandidate, _Mapping]]] = ..., detection_confidence: _Optional[float] = ..., crop_jpeg: _Optional[bytes] = ..., frame_thumbnail_jpeg: _Optional[bytes] = ..., vehicle: _Optional[_Union[_common_pb2.Vehicle, _Mapping]] = ..., model_version: _Optional[str] = ..., inferred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., printed_region: _Optional[str] = ...) -> None: ...

class Read(_message.Message):
    __slots__ = ("read_id", "plate", "region", "format_known", "confidence", "candidates", "camera", "first_seen", "last_seen", "captured_at", "direction", "box", "crop_jpeg", "frame_thumbnail_jpeg", "vehicle", "frames", "normalized_at", "provisional", "provisional_plate", "provisional_region")
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    CROP_JPEG_FIELD_NUMBER: _ClassVar[int]
    FRAME_THUMBNAIL_JPEG_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_PLATE_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_REGION_FIELD_NUMBER: _ClassVar[int]
    read_id: str
    plate: str
    region: str
    format_known: bool
    confidence: float
    candidates: _containers.RepeatedCompositeFieldContainer[_common_pb2.TextCandidate]
    camera: _common_pb2.CameraInfo
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    captured_at: _timestamp_pb2.Timestamp
    direction: str
    box: _common_pb2.Box
    crop_jpeg: bytes
    frame_thumbnail_jpeg: bytes
    vehicle: _common_pb2.Vehicle
    frames: int
    normalized_at: _timestamp_pb2.Timestamp
    provisional: bool
    provisional_plate: str
    provisional_region: str
    def __init__(self, read_id: _Optional[str] = ..., plate: _Optional[str] = ..., region: _Optional[str] = ..., format_known: bool = ..., confidence: _Optional[float] = ..., candidates: _Optional[_Iterable[_Union[_common_pb2.TextCandidate, _Mapping]]] = ..., camera: _Optional[_Union[_common_pb2.CameraInfo, _Mapping]] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., direction: _Optional[str] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., crop_jpeg: _Optional[bytes] = ..., frame_thumbnail_jpeg: _Optional[bytes] = ..., vehicle: _Optional[_Union[_common_pb2.Vehicle, _Mapping]] = ..., frames: _Optional[int] = ..., normalized_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provisional: bool = ..., provisional_plate: _Optional[str] = ..., provisional_region: _Optional[str] = ...) -> None: ...
