"""Analytic questions as SQL (issue 5): validation, place resolution and query text.

Every builder returns (sql, params) with all user input bound as parameters; SQL text is assembled
from fixed fragments. Every query is limited to the request's agencies (contract 2), and every
query either names a plate or a set of cameras, so none of them scans all reads by accident.

Tables (services/storage/migrations 0005): `reads` ordered by (agency_id, plate, captured_at) for
plate-scoped questions, `reads_by_camera` ordered by (camera_id, captured_at) for site and time
questions, `plates` for partial and fuzzy plate matching, `read_counts_hourly` and `alerts` for
dashboards, `cameras` for geo places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.pb.platewatch.v1 import search_pb2
from services.search.query import InvalidQuery, exact_plate_sql, translate_plate

# Confusable characters fold to one representative; must equal the `skeleton` of migration 0005.
CONFUSABLE_FROM = "ODQILBSZG"
CONFUSABLE_TO = "000118526"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_RADIUS_M = 50_000.0
MAX_POLYGON_POINTS = 200
MAX_WINDOWS = 16
MAX_CAMERAS = 5000
DEFAULT_GAP_S = 1800
DEFAULT_DELTA_S = 60
MAX_DELTA_S = 3600
DEFAULT_SHIFT_HOURS = (6, 14, 22)


def skeleton(plate: str) -> str:
    """The plate with confusable characters folded (Python twin of the SQL `translate`)."""
    return plate.translate(str.maketrans(CONFUSABLE_FROM, CONFUSABLE_TO))


def require_agencies(agency_ids: Sequence[str]) -> list[str]:
    agencies = sorted({a for a in agency_ids if a})
    if not agencies:
        raise InvalidQuery("agency_ids is required (the caller's agencies)")
    return agencies


def exact_plate(text: str) -> str:
    """A plate without wildcards (timeline, visits, convoy name one vehicle)."""
    match = translate_plate(text)
    if match.exact is None:
        raise InvalidQuery("this query needs one exact plate, not a pattern")
    return match.exact


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC; either end may be open when the query allows it."""

    start: datetime | None
    end: datetime | None


def _ts(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def time_window(message: Any, max_days: int, required: bool, start_field: str = "from") -> Window:
    """The [from, to) window of a request. Absurd windows are refused: before 2000, more than a year
    in the future, empty or reversed, or longer than `max_days`."""
    start, end = _ts(message, start_field), _ts(message, "to")
    if required and (start is None or end is None):
        raise InvalidQuery("a time window (from and to) is required for this query")
    now = datetime.now(UTC)
    for value in (start, end):
        if value is not None and (value < EARLIEST or value > now + timedelta(days=366)):
            raise InvalidQuery(f"time {value.isoformat()} is out of range")
    if start is not None and end is not None:
        if end <= start:
            raise InvalidQuery("'to' must be after 'from'")
        if end - start > timedelta(days=max_days):
            raise InvalidQuery(f"time window longer than {max_days} days")
    return Window(start, end)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def window_conditions(window: Window, column: str, params: dict[str, Any], prefix: str = "w") -> list[str]:
    """Conditions for `column` (DateTime or DateTime64) within the window."""
    out: list[str] = []
    if window.start is not None:
        params[f"{prefix}_from"] = _ms(window.start)
        out.append(f"{column} >= fromUnixTimestamp64Milli({{{prefix}_from:Int64}}, 'UTC')")
    if window.end is not None:
        params[f"{prefix}_to"] = _ms(window.end)
        out.append(f"{column} < fromUnixTimestamp64Milli({{{prefix}_to:Int64}}, 'UTC')")
    return out


def check_circle(circle: search_pb2.GeoCircle) -> None:
    if not (-90 <= circle.lat <= 90 and -180 <= circle.lon <= 180):
        raise InvalidQuery("circle centre is not a valid latitude/longitude")
    if not 0 < circle.radius_m <= MAX_RADIUS_M:
        raise InvalidQuery(f"circle radius must be in (0, {MAX_RADIUS_M:.0f}] metres")


def polygon_ring(polygon: search_pb2.GeoPolygon) -> list[tuple[float, float]]:
    """The polygon as (lon, lat) pairs; it must close (last point equals first) and have an area."""
    points = [(p.lon, p.lat) for p in polygon.points]
    if len(points) < 4:
        raise InvalidQuery("polygon needs at least 4 points (a closed ring: the last repeats the first)")
    if len(points) > MAX_POLYGON_POINTS:
        raise InvalidQuery(f"polygon has more than {MAX_POLYGON_POINTS} points")
    if points[0] != points[-1]:
        raise InvalidQuery("polygon does not close: the last point must equal the first")
    if len(set(points)) < 3:
        raise InvalidQuery("polygon has no area")
    for lon, lat in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidQuery("polygon point is not a valid latitude/longitude")
    return points


def geo_conditions(
    circle: search_pb2.GeoCircle | None,
    polygon: search_pb2.GeoPolygon | None,
    params: dict[str, Any],
    prefix: str,
) -> list[str]:
    """Conditions on `lat`/`lon` columns for an optional circle and polygon."""
    out: list[str] = []
    if circle is not None:
        check_circle(circle)
        params.update(
            {f"{prefix}_lat": circle.lat, f"{prefix}_lon": circle.lon, f"{prefix}_r": circle.radius_m}
        )
        out.append(
            f"greatCircleDistance(lon, lat, {{{prefix}_lon:Float64}}, {{{prefix}_lat:Float64}}) "
            f"<= {{{prefix}_r:Float64}}"
        )
    if polygon is not None:
        params[f"{prefix}_ring"] = polygon_ring(polygon)
        out.append(f"pointInPolygon((lon, lat), {{{prefix}_ring:Array(Tuple(Float64, Float64))}})")
    return out


def place_condition(place: search_pb2.Place, params: dict[str, Any], prefix: str) -> str:
    """`camera_id IN ...` for a place: its cameras, or the agencies' cameras inside its circle or
    polygon (by last known position). A place with nothing in it is refused (no camera constraint
    would mean every read)."""
    cameras = sorted({c for c in place.camera_ids if c})
    has_circle, has_polygon = place.HasField("circle"), place.HasField("polygon")
    if not cameras and not has_circle and not has_polygon:
        raise InvalidQuery("a place needs camera_ids, a circle or a polygon")
    if len(cameras) > MAX_CAMERAS:
        raise InvalidQuery(f"more than {MAX_CAMERAS} cameras in one place")
    parts: list[str] = []
    if cameras:
        params[f"{prefix}_cams"] = cameras
        parts.append(f"camera_id IN {{{prefix}_cams:Array(String)}}")
    if has_circle or has_polygon:
        geo = geo_conditions(
            place.circle if has_circle else None, place.polygon if has_polygon else None, params, prefix
        )
        parts.append(
            "camera_id IN (SELECT camera_id FROM cameras FINAL WHERE agency_id IN {agencies:Array(String)} "
            f"AND {' AND '.join(geo)})"
        )
    return "(" + " OR ".join(parts) + ")"


# Timeline ------------------------------------------------------------------------------------------

TIMELINE_COLUMNS = (
    "read_id, plate, region, confidence, camera_id, agency_id, "
    "toUnixTimestamp64Milli(captured_at) AS captured_ms, direction, lat, lon, vehicle_color, "
    "vehicle_color_confidence, vehicle_make, vehicle_type, box_x, box_y, box_width, box_height"
)


def timeline_sql(
    request: search_pb2.TimelineRequest, limit: int, max_days: int, plate_forms: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """Sightings of one plate, oldest first. `plate_forms` (here and in the other one-plate
    questions): the plate's stored forms including pseudonym tokens (search/pseudonyms.py)."""
    params: dict[str, Any] = {"agencies": require_agencies(request.agency_ids), "limit": limit + 1}
    conditions = [
        "agency_id IN {agencies:Array(String)}",
        exact_plate_sql(exact_plate(request.plate), plate_forms, params),
    ]
    conditions += window_conditions(time_window(request, max_days, required=False), "captured_at", params)
    sql = (
        f"SELECT {TIMELINE_COLUMNS} FROM reads WHERE {' AND '.join(conditions)} "
        "ORDER BY captured_at, read_id LIMIT {limit:UInt32}"
    )
    return sql, params


# Visits --------------------------------------------------------------------------------------------


def gap_seconds(requested: int) -> int:
    if requested < 0:
        raise InvalidQuery("gap_seconds must not be negative")
    return requested or DEFAULT_GAP_S


def visits_sql(
    request: search_pb2.VisitsRequest, max_days: int, plate_forms: Sequence[str] | None = None
) -> tuple[str, dict[str, Any], int]:
    """Sightings of one plate at a site, oldest first; the caller splits them with `split_visits`."""
    gap = gap_seconds(request.gap_seconds)
    params: dict[str, Any] = {"agencies": require_agencies(request.agency_ids)}
    if not request.HasField("site"):
        raise InvalidQuery("site is required")
    conditions = [
        "agency_id IN {agencies:Array(String)}",
        exact_plate_sql(exact_plate(request.plate), plate_forms, params),
        place_condition(request.site, params, "site"),
    ]
    conditions += window_conditions(time_window(request, max_days, required=False), "captured_at", params)
    sql = (
        "SELECT toUnixTimestamp(captured_at) AS ts, camera_id FROM reads "
        f"WHERE {' AND '.join(conditions)} ORDER BY captured_at, camera_id"
    )
    return sql, params, gap


@dataclass(frozen=True)
class VisitSpan:
    start: int
    end: int
    cameras: tuple[str, ...]
    sightings: int

    @property
    def dwell_known(self) -> bool:
        return len(self.cameras) >= 2

    @property
    def dwell_seconds(self) -> int:
        return self.end - self.start if self.dwell_known else 0


def split_visits(sightings: Sequence[tuple[int, str]], gap: int) -> list[VisitSpan]:
    """Group time-ordered (epoch seconds, camera) sightings into visits: a sighting more than `gap`
    seconds after the previous one starts a new visit."""
    visits: list[VisitSpan] = []
    start = end = 0
    cameras: list[str] = []
    count = 0
    for ts, camera in sightings:
        if count and ts - end > gap:
            visits.append(VisitSpan(start, end, tuple(sorted(set(cameras))), count))
            count = 0
            cameras = []
        if not count:
            start = ts
        end = ts
        cameras.append(camera)
        count += 1
    if count:
        visits.append(VisitSpan(start, end, tuple(sorted(set(cameras))), count))
    return visits


def frequent_visitors_sql(
    request: search_pb2.FrequentVisitorsRequest, max_days: int, max_limit: int
) -> tuple[str, dict[str, Any]]:
    """Plates with at least `min_visits` gap-separated visits to the site in the window."""
    if not request.HasField("site"):
        raise InvalidQuery("site is required")
    params: dict[str, Any] = {
        "agencies": require_agencies(request.agency_ids),
        "gap": gap_seconds(request.gap_seconds),
        "min_visits": max(1, request.min_visits),
        "limit": _limit(request.limit, max_limit),
    }
    conditions = ["agency_id IN {agencies:Array(String)}", place_condition(request.site, params, "site")]
    conditions += window_conditions(time_window(request, max_days, required=True), "captured_at", params)
    sql = f"""
        SELECT plate, visits, length(ts) AS sightings, ts[1] AS first_ts, ts[-1] AS last_ts
        FROM (
            SELECT plate, arraySort(groupArray(toInt64(toUnixTimestamp(captured_at)))) AS ts,
                length(arrayFilter((t, p) -> t - p > {{gap:Int64}},
                    ts, arrayPushFront(arrayPopBack(ts), toInt64(0)))) AS visits
            FROM reads_by_camera
            WHERE {" AND ".join(conditions)}
            GROUP BY plate
            HAVING count() >= {{min_visits:UInt32}}
        )
        WHERE visits >= {{min_visits:UInt32}}
        ORDER BY visits DESC, plate
        LIMIT {{limit:UInt32}}"""
    return sql, params


# Convoy --------------------------------------------------------------------------------------------


def convoy_sql(
    request: search_pb2.ConvoyRequest, max_days: int, max_limit: int, plate_forms: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """Associates of a plate: other plates at the same camera within `delta` seconds of one of its
    sightings (target sightings in [from, to)), at >= `min_cameras` distinct cameras.

    Sightings are matched through time buckets of `delta` seconds (a target sighting in bucket b can
    only meet reads in b-1, b, b+1), then checked exactly. The bucket array is cast to UInt32 on
    purpose: ClickHouse 26.9 types the literal `[b - 1, b, b + 1]` as an Array(Variant(...)), which
    silently matches nothing in a join or IN. The (camera, bucket) IN filter lets the reads_by_camera
    key (camera_id, captured_at; 256-row granules) skip all but the minutes around each sighting."""
    if request.delta_seconds < 0 or request.delta_seconds > MAX_DELTA_S:
        raise InvalidQuery(f"delta_seconds must be in [0, {MAX_DELTA_S}]")
    delta = request.delta_seconds or DEFAULT_DELTA_S
    params: dict[str, Any] = {
        "agencies": require_agencies(request.agency_ids),
        "delta": delta,
        "min_cameras": max(1, request.min_cameras or 2),
        "limit": _limit(request.limit, max_limit),
    }
    window = time_window(request, max_days, required=True)
    assert window.start is not None and window.end is not None
    plate = exact_plate(request.plate)
    target = ["agency_id IN {agencies:Array(String)}", exact_plate_sql(plate, plate_forms, params)]
    target += window_conditions(window, "captured_at", params)
    not_target = exact_plate_sql(plate, plate_forms, params, column="r.plate", negate=True)
    params["near_from"] = _ms(window.start) - delta * 1000
    params["near_to"] = _ms(window.end) + delta * 1000
    sql = f"""
        WITH target AS (
            SELECT camera_id, toUInt32(toUnixTimestamp(captured_at)) AS ts
            FROM reads WHERE {" AND ".join(target)}
        ),
        buckets AS (
            SELECT camera_id, ts,
                arrayJoin(CAST([intDiv(ts, {{delta:UInt32}}) - 1, intDiv(ts, {{delta:UInt32}}),
                                intDiv(ts, {{delta:UInt32}}) + 1] AS Array(UInt32))) AS bucket
            FROM target
        )
        SELECT r.plate AS plate, uniqExact(t.camera_id, t.ts) AS co_sightings,
            uniqExact(r.camera_id) AS cameras, arraySort(groupUniqArray(r.camera_id)) AS camera_ids,
            (SELECT count() FROM target) AS target_sightings
        FROM reads_by_camera AS r
        INNER JOIN buckets AS t
            ON r.camera_id = t.camera_id AND intDiv(toUInt32(r.captured_at), {{delta:UInt32}}) = t.bucket
        WHERE r.agency_id IN {{agencies:Array(String)}}
            AND (r.camera_id, intDiv(toUInt32(r.captured_at), {{delta:UInt32}}))
                IN (SELECT camera_id, bucket FROM buckets)
            AND r.captured_at >= fromUnixTimestamp64Milli({{near_from:Int64}}, 'UTC')
            AND r.captured_at < fromUnixTimestamp64Milli({{near_to:Int64}}, 'UTC')
            AND {not_target}
            AND abs(toInt64(toUInt32(r.captured_at)) - toInt64(t.ts)) <= {{delta:UInt32}}
        GROUP BY r.plate
        HAVING cameras >= {{min_cameras:UInt32}}
        ORDER BY cameras DESC, co_sightings DESC, plate
        LIMIT {{limit:UInt32}}"""
    return sql, params


def target_sightings_sql(
    request: search_pb2.ConvoyRequest, max_days: int, plate_forms: Sequence[str] | None = None
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"agencies": require_agencies(request.agency_ids)}
    conditions = [
        "agency_id IN {agencies:Array(String)}",
        exact_plate_sql(exact_plate(request.plate), plate_forms, params),
    ]
    conditions += window_conditions(time_window(request, max_days, required=True), "captured_at", params)
    return f"SELECT count() FROM reads WHERE {' AND '.join(conditions)}", params


# Multi-site ----------------------------------------------------------------------------------------


def multisite_sql(
    request: search_pb2.MultiSiteRequest, max_days: int, max_limit: int
) -> tuple[str, dict[str, Any]]:
    """Plates seen in at least `min_windows` (0: all) of the place-and-time windows."""
    windows = list(request.windows)
    if not 2 <= len(windows) <= MAX_WINDOWS:
        raise InvalidQuery(f"multi-site needs between 2 and {MAX_WINDOWS} windows")
    if request.min_windows < 0 or request.min_windows > len(windows):
        raise InvalidQuery("min_windows must be between 0 (all) and the number of windows")
    params: dict[str, Any] = {
        "agencies": require_agencies(request.agency_ids),
        "min_windows": request.min_windows or len(windows),
        "limit": _limit(request.limit, max_limit),
    }
    selects: list[str] = []
    for index, window in enumerate(windows):
        if not window.HasField("place"):
            raise InvalidQuery(f"window {index} has no place")
        conditions = [
            "agency_id IN {agencies:Array(String)}",
            place_condition(window.place, params, f"p{index}"),
        ]
        conditions += window_conditions(
            time_window(window, max_days, required=True), "captured_at", params, f"w{index}"
        )
        selects.append(
            f"SELECT DISTINCT plate, toUInt8({index}) AS w FROM reads_by_camera "
            f"WHERE {' AND '.join(conditions)}"
        )
    sql = f"""
        SELECT plate, arraySort(groupUniqArray(w)) AS windows
        FROM ({" UNION ALL ".join(selects)})
        GROUP BY plate
        HAVING length(windows) >= {{min_windows:UInt32}}
        ORDER BY length(windows) DESC, plate
        LIMIT {{limit:UInt32}}"""
    return sql, params


# Dashboard -----------------------------------------------------------------------------------------


def shift_hours(requested: Sequence[int]) -> list[int]:
    hours = list(requested) or list(DEFAULT_SHIFT_HOURS)
    if any(not 0 <= h <= 23 for h in hours) or hours != sorted(set(hours)):
        raise InvalidQuery("shift_start_hours must be distinct UTC hours 0-23 in ascending order")
    return hours


def _period_sql(grouping: int, column: str) -> str:
    """SQL of the period start (epoch seconds) of an hour column for a grouping; 0 for agency."""
    if grouping == search_pb2.STATS_GROUPING_AGENCY:
        return "toInt64(0)"
    if grouping == search_pb2.STATS_GROUPING_SHIFT:
        # The latest shift start at or before the hour, else the previous day's last shift.
        latest = f"arrayLastIndex(s -> s <= toHour({column}), {{shifts:Array(UInt8)}})"
        return (
            f"toInt64(toUnixTimestamp(if({latest} = 0, "
            f"toStartOfDay({column}) - toIntervalDay(1) + toIntervalHour({{shifts:Array(UInt8)}}[-1]), "
            f"toStartOfDay({column}) + toIntervalHour({{shifts:Array(UInt8)}}"
            f"[{latest}]))))"
        )
    return f"toInt64(toUnixTimestamp({column}))"


def _whole_hours(window: Window) -> Window:
    """The window widened to whole hours (counts are kept per hour; reads and hits must agree)."""
    assert window.start is not None and window.end is not None
    start = window.start.replace(minute=0, second=0, microsecond=0)
    end = window.end.replace(minute=0, second=0, microsecond=0)
    return Window(start, end if end == window.end else end + timedelta(hours=1))


def dashboard_sql(
    request: search_pb2.DashboardRequest, max_days: int, max_rows: int
) -> tuple[str, str, dict[str, Any]]:
    """Two queries (reads from the hourly counts, hits from alerts) grouped the same way; each row
    is (agency_id, camera_id, period_start_s, count). The window is widened to whole hours."""
    grouping = request.group_by or search_pb2.STATS_GROUPING_CAMERA_HOUR
    if grouping not in search_pb2.StatsGrouping.values():
        raise InvalidQuery("unknown group_by")
    params: dict[str, Any] = {"agencies": require_agencies(request.agency_ids), "limit": max_rows + 1}
    if grouping == search_pb2.STATS_GROUPING_SHIFT:
        params["shifts"] = shift_hours(request.shift_start_hours)
    window = _whole_hours(time_window(request, max_days, required=True))
    cameras = sorted({c for c in request.camera_ids if c})
    camera_condition = ""
    if cameras:
        params["cameras"] = cameras
        camera_condition = " AND camera_id IN {cameras:Array(String)}"
    camera_column = "camera_id" if grouping == search_pb2.STATS_GROUPING_CAMERA_HOUR else "''"
    reads_where = " AND ".join(
        ["agency_id IN {agencies:Array(String)}", *window_conditions(window, "hour", params)]
    )
    hits_where = " AND ".join(
        ["agency_id IN {agencies:Array(String)}", *window_conditions(window, "raised_at", params)]
    )
    reads_sql = (
        f"SELECT agency_id, {camera_column} AS camera, {_period_sql(grouping, 'hour')} AS period, sum(reads) "
        f"FROM read_counts_hourly WHERE {reads_where}{camera_condition} "
        "GROUP BY agency_id, camera, period ORDER BY period, agency_id, camera LIMIT {limit:UInt32}"
    )
    hits_sql = (
        f"SELECT agency_id, {camera_column} AS camera, {_period_sql(grouping, 'hour')} AS period, "
        "uniqExact(alert_id) "
        f"FROM (SELECT alert_id, agency_id, camera_id, toStartOfHour(toDateTime(raised_at, 'UTC')) AS hour "
        f"FROM alerts WHERE {hits_where}{camera_condition}) "
        "GROUP BY agency_id, camera, period ORDER BY period, agency_id, camera LIMIT {limit:UInt32}"
    )
    return reads_sql, hits_sql, params


def _limit(requested: int, maximum: int, default: int = 100) -> int:
    if requested < 0:
        raise InvalidQuery("limit must not be negative")
    return min(requested or default, maximum)
