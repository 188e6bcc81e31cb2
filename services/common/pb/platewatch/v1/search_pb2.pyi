import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.pb.platewatch.v1 import alerts_pb2 as _alerts_pb2
from services.common.pb.platewatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_GROUPING_UNSPECIFIED: _ClassVar[StatsGrouping]
    STATS_GROUPING_CAMERA_HOUR: _ClassVar[StatsGrouping]
    STATS_GROUPING_SHIFT: _ClassVar[StatsGrouping]
    STATS_GROUPING_AGENCY: _ClassVar[StatsGrouping]
STATS_GROUPING_UNSPECIFIED: StatsGrouping
STATS_GROUPING_CAMERA_HOUR: StatsGrouping
STATS_GROUPING_SHIFT: StatsGrouping
STATS_GROUPING_AGENCY: StatsGrouping

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
    __slots__ = ("plate", "agency_ids", "camera_ids", "to", "min_confidence", "page_size", "page_token", "directions", "vehicle_colors", "circle", "polygon", "fuzzy", "allow_full_scan")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DIRECTIONS_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_COLORS_FIELD_NUMBER: _ClassVar[int]
    CIRCLE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    FUZZY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FULL_SCAN_FIELD_NUMBER: _ClassVar[int]
    plate: str
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    to: _timestamp_pb2.Timestamp
    min_confidence: float
    page_size: int
    page_token: str
    directions: _containers.RepeatedScalarFieldContainer[str]
    vehicle_colors: _containers.RepeatedScalarFieldContainer[str]
    circle: GeoCircle
    polygon: GeoPolygon
    fuzzy: bool
    allow_full_scan: bool
    def __init__(self, plate: _Optional[str] = ..., agency_ids: _Optional[_Iterable[str]] = ..., camera_ids: _Optional[_Iterable[str]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_confidence: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., directions: _Optional[_Iterable[str]] = ..., vehicle_colors: _Optional[_Iterable[str]] = ..., circle: _Optional[_Union[GeoCircle, _Mapping]] = ..., polygon: _Optional[_Union[GeoPolygon, _Mapping]] = ..., fuzzy: bool = ..., allow_full_scan: bool = ..., **kwargs) -> None: ...

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
    __slots__ = ("read_id", "kind", "agency_ids")
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    read_id: str
    kind: str
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, read_id: _Optional[str] = ..., kind: _Optional[str] = ..., agency_ids: _Optional[_Iterable[str]] = ...) -> None: ...

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

class GeoCircle(_message.Message):
    __slots__ = ("lat", "lon", "radius_m")
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    lat: float
    lon: float
    radius_m: float
    def __init__(self, lat: _Optional[float] = ..., lon: _Optional[float] = ..., radius_m: _Optional[float] = ...) -> None: ...

class GeoPoint(_message.Message):
    __slots__ = ("lat", "lon")
    LAT_FIELD_NUMBER: _ClassVar[int]
    LON_FIELD_NUMBER: _ClassVar[int]
    lat: float
    lon: float
    def __init__(self, lat: _Optional[float] = ..., lon: _Optional[float] = ...) -> None: ...

class GeoPolygon(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[GeoPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[GeoPoint, _Mapping]]] = ...) -> None: ...

class Place(_message.Message):
    __slots__ = ("camera_ids", "circle", "polygon")
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    CIRCLE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    circle: GeoCircle
    polygon: GeoPolygon
    def __init__(self, camera_ids: _Optional[_Iterable[str]] = ..., circle: _Optional[_Union[GeoCircle, _Mapping]] = ..., polygon: _Optional[_Union[GeoPolygon, _Mapping]] = ...) -> None: ...

class TimelineRequest(_message.Message):
    __slots__ = ("agency_ids", "plate", "to", "limit")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    plate: str
    to: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., plate: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., **kwargs) -> None: ...

class TimelineResponse(_message.Message):
    __slots__ = ("sightings", "truncated")
    SIGHTINGS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    sightings: _containers.RepeatedCompositeFieldContainer[StoredRead]
    truncated: bool
    def __init__(self, sightings: _Optional[_Iterable[_Union[StoredRead, _Mapping]]] = ..., truncated: bool = ...) -> None: ...

class Visit(_message.Message):
    __slots__ = ("start", "end", "camera_ids", "sightings", "dwell_seconds", "dwell_known")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    SIGHTINGS_FIELD_NUMBER: _ClassVar[int]
    DWELL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DWELL_KNOWN_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    sightings: int
    dwell_seconds: int
    dwell_known: bool
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., camera_ids: _Optional[_Iterable[str]] = ..., sightings: _Optional[int] = ..., dwell_seconds: _Optional[int] = ..., dwell_known: bool = ...) -> None: ...

class VisitsRequest(_message.Message):
    __slots__ = ("agency_ids", "plate", "site", "to", "gap_seconds")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    plate: str
    site: Place
    to: _timestamp_pb2.Timestamp
    gap_seconds: int
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., plate: _Optional[str] = ..., site: _Optional[_Union[Place, _Mapping]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gap_seconds: _Optional[int] = ..., **kwargs) -> None: ...

class VisitsResponse(_message.Message):
    __slots__ = ("visit_count", "visits")
    VISIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    visit_count: int
    visits: _containers.RepeatedCompositeFieldContainer[Visit]
    def __init__(self, visit_count: _Optional[int] = ..., visits: _Optional[_Iterable[_Union[Visit, _Mapping]]] = ...) -> None: ...

class FrequentVisitorsRequest(_message.Message):
    __slots__ = ("agency_ids", "site", "to", "gap_seconds", "min_visits", "limit")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_VISITS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    site: Place
    to: _timestamp_pb2.Timestamp
    gap_seconds: int
    min_visits: int
    limit: int
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., site: _Optional[_Union[Place, _Mapping]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gap_seconds: _Optional[int] = ..., min_visits: _Optional[int] = ..., limit: _Optional[int] = ..., **kwargs) -> None: ...

class VisitorCount(_message.Message):
    __slots__ = ("plate", "visits", "sightings", "first_seen", "last_seen")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    SIGHTINGS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    plate: str
    visits: int
    sightings: int
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    def __init__(self, plate: _Optional[str] = ..., visits: _Optional[int] = ..., sightings: _Optional[int] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FrequentVisitorsResponse(_message.Message):
    __slots__ = ("visitors",)
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    visitors: _containers.RepeatedCompositeFieldContainer[VisitorCount]
    def __init__(self, visitors: _Optional[_Iterable[_Union[VisitorCount, _Mapping]]] = ...) -> None: ...

class ConvoyRequest(_message.Message):
    __slots__ = ("agency_ids", "plate", "to", "delta_seconds", "min_cameras", "limit")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    DELTA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_CAMERAS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    plate: str
    to: _timestamp_pb2.Timestamp
    delta_seconds: int
    min_cameras: int
    limit: int
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., plate: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delta_seconds: _Optional[int] = ..., min_cameras: _Optional[int] = ..., limit: _Optional[int] = ..., **kwargs) -> None: ...

class Associate(_message.Message):
    __slots__ = ("plate", "co_sightings", "cameras", "camera_ids")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    CO_SIGHTINGS_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    plate: str
    co_sightings: int
    cameras: int
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plate: _Optional[str] = ..., co_sightings: _Optional[int] = ..., cameras: _Optional[int] = ..., camera_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ConvoyResponse(_message.Message):
    __slots__ = ("target_sightings", "associates")
    TARGET_SIGHTINGS_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATES_FIELD_NUMBER: _ClassVar[int]
    target_sightings: int
    associates: _containers.RepeatedCompositeFieldContainer[Associate]
    def __init__(self, target_sightings: _Optional[int] = ..., associates: _Optional[_Iterable[_Union[Associate, _Mapping]]] = ...) -> None: ...

class SiteWindow(_message.Message):
    __slots__ = ("place", "to")
    PLACE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    place: Place
    to: _timestamp_pb2.Timestamp
    def __init__(self, place: _Optional[_Union[Place, _Mapping]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class MultiSiteRequest(_message.Message):
    __slots__ = ("agency_ids", "windows", "min_windows", "limit")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    MIN_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    windows: _containers.RepeatedCompositeFieldContainer[SiteWindow]
    min_windows: int
    limit: int
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., windows: _Optional[_Iterable[_Union[SiteWindow, _Mapping]]] = ..., min_windows: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class MultiSiteMatch(_message.Message):
    __slots__ = ("plate", "windows")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    plate: str
    windows: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, plate: _Optional[str] = ..., windows: _Optional[_Iterable[int]] = ...) -> None: ...

class MultiSiteResponse(_message.Message):
    __slots__ = ("plates",)
    PLATES_FIELD_NUMBER: _ClassVar[int]
    plates: _containers.RepeatedCompositeFieldContainer[MultiSiteMatch]
    def __init__(self, plates: _Optional[_Iterable[_Union[MultiSiteMatch, _Mapping]]] = ...) -> None: ...

class DashboardRequest(_message.Message):
    __slots__ = ("agency_ids", "to", "camera_ids", "group_by", "shift_start_hours")
    AGENCY_IDS_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CAMERA_IDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    SHIFT_START_HOURS_FIELD_NUMBER: _ClassVar[int]
    agency_ids: _containers.RepeatedScalarFieldContainer[str]
    to: _timestamp_pb2.Timestamp
    camera_ids: _containers.RepeatedScalarFieldContainer[str]
    group_by: StatsGrouping
    shift_start_hours: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, agency_ids: _Optional[_Iterable[str]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., camera_ids: _Optional[_Iterable[str]] = ..., group_by: _Optional[_Union[StatsGrouping, str]] = ..., shift_start_hours: _Optional[_Iterable[int]] = ..., **kwargs) -> None: ...

class StatsRow(_message.Message):
    __slots__ = ("agency_id", "camera_id", "period_start", "reads", "hits")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    camera_id: str
    period_start: _timestamp_pb2.Timestamp
    reads: int
    hits: int
    def __init__(self, agency_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reads: _Optional[int] = ..., hits: _Optional[int] = ...) -> None: ...

class DashboardResponse(_message.Message):
    __slots__ = ("rows", "truncated")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[StatsRow]
    truncated: bool
    def __init__(self, rows: _Optional[_Iterable[_Union[StatsRow, _Mapping]]] = ..., truncated: bool = ...) -> None: ...
