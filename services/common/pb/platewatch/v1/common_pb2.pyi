from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Box(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class TextCandidate(_message.Message):
    __slots__ = ("text", "confidence", "char_confidences")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CHAR_CONFIDENCES_FIELD_NUMBER: _ClassVar[int]
    text: str
    confidence: float
    char_confidences: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, text: _Optional[str] = ..., confidence: _Optional[float] = ..., char_confidences: _Optional[_Iterable[float]] = ...) -> None: ...

class Vehicle(_message.Message):
    __slots__ = ("color", "color_confidence", "make", "type")
    COLOR_FIELD_NUMBER: _ClassVar[int]
    COLOR_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MAKE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    color: str
    color_confidence: float
    make: str
    type: str
    def __init__(self, color: _Optional[str] = ..., color_confidence: _Optional[float] = ..., make: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class CameraInfo(_message.Message):
    __slots__ = ("camera_id", "agency_id", "name", "site", "lat", "lon", "heading_deg")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    HEADING_DEG_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    agency_id: str
    name: str
    site: str
    lat: float
    lon: float
    heading_deg: float
    def __init__(self, camera_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., name: _Optional[str] = ..., site: _Optional[str] = ..., lat: _Optional[float] = ..., lon: _Optional[float] = ..., heading_deg: _Optional[float] = ...) -> None: ...
