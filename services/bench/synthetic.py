"""Synthetic reads built inside ClickHouse (INSERT ... SELECT over `numbers()`), never row by row.

The data has the structure the analytic queries care about:
* plate popularity is Zipf-like: Zipf-Mandelbrot, P(plate k) ~ 1 / (k + 1000), so a few plates
  (buses, taxis, commuters) are read often and most rarely; the most frequent plate gets ~0.01% of
  all reads at 100M (~12,000 reads in 90 days, ~130 a day). A pure 1/k law would give one plate 6%
  of a region's reads, which no vehicle does. Plates look like `ABC1234`;
* 2,000 cameras in 4 agencies, on a grid around a city centre, over 90 days;
* most vehicles keep to a regular route: 70% of a plate's reads come from a few cameras near its
  home camera, the rest anywhere;
* planted answers: a convoy (a target plate and three followers seen within seconds of it at
  several cameras), a plate that visits a scrap yard site 47 times (entry and exit cameras, so dwell
  is known), and a plate present at three incident windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from services.writer.rows import READS_COLUMNS

CAMERAS = 2000
AGENCIES = ("agency-0", "agency-1", "agency-2", "agency-3")
DAYS = 90
START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=DAYS)
CENTRE_LAT, CENTRE_LON = 29.76, -95.37

CONVOY_TARGET = "CVY0001"
CONVOY_FOLLOWERS = ("CVY0002", "CVY0003", "CVY0004")
CONVOY_CAMERAS = tuple(range(40, 52))
VISIT_PLATE = "YRD0047"
VISIT_SITE_CAMERAS = (1200, 1201)
VISIT_COUNT = 47
MULTI_PLATE = "MLT0003"
MULTI_WINDOWS = ((300, 10), (700, 40), (1500, 75))  # (camera, day)


def camera_id(number: int) -> str:
    return f"cam-{number:04d}"


def camera_sql(expr: str) -> str:
    """SQL of the camera id of camera number `expr` (0 .. CAMERAS-1)."""
    return f"concat('cam-', leftPad(toString({expr}), 4, '0'))"


def agency_sql(camera_expr: str) -> str:
    return f"concat('agency-', toString(({camera_expr}) % {len(AGENCIES)}))"


def lat_sql(camera_expr: str) -> str:
    return f"{CENTRE_LAT} + (intDiv({camera_expr}, 50) - 20) * 0.01"


def lon_sql(camera_expr: str) -> str:
    return f"{CENTRE_LON} + ((({camera_expr}) % 50) - 25) * 0.01"


def camera_lat(number: int) -> float:
    return CENTRE_LAT + (number // 50 - 20) * 0.01


def camera_lon(number: int) -> float:
    return CENTRE_LON + (number % 50 - 25) * 0.01


# Plate number -> `ABC1234` from its hash; a handful of collisions merge plates, which is harmless.
PLATE_SQL = (
    "concat(char(65 + (h % 26)), char(65 + (intDiv(h, 26) % 26)), char(65 + (intDiv(h, 676) % 26)), "
    "leftPad(toString(intDiv(h, 17576) % 10000), 4, '0'))"
)


def _read_columns(ts: str, plate: str, camera: str, seed: str) -> str:
    """The SELECT list of a `reads` row (services/writer/rows.py READS_COLUMNS order) from SQL
    expressions for time, plate, camera number and a seed."""
    return f"""
        lower(concat(leftPad(hex(toUnixTimestamp64Milli({ts})), 12, '0'),
                     substring(hex(cityHash64({seed}, 'id')), 1, 12)))
            AS read_id,
        {plate} AS plate,
        'US-TX' AS region,
        true AS format_known,
        toFloat32(round(0.80 + (cityHash64({seed}, 'c') % 200) / 1000, 3)) AS confidence,
        {camera_sql(camera)} AS camera_id,
        {agency_sql(camera)} AS agency_id,
        {lat_sql(camera)} AS lat,
        {lon_sql(camera)} AS lon,
        ['northbound', 'southbound', 'eastbound', 'westbound'][1 + (({camera}) % 2) * 2
            + (cityHash64({seed}, 'd') % 2)] AS direction,
        {ts} AS captured_at,
        toUInt32(400 + cityHash64({seed}, 'f') % 800) AS first_seen_before_ms,
        toUInt32(200 + cityHash64({seed}, 'l') % 600) AS last_seen_after_ms,
        ['white', 'black', 'silver', 'grey', 'blue', 'red'][1 + cityHash64({seed}, 'v') % 6] AS vehicle_color,
        toFloat32(0.7) AS vehicle_color_confidence,
        '' AS vehicle_make,
        'car' AS vehicle_type,
        toInt32(cityHash64({seed}, 'x') % 1500) AS box_x,
        toInt32(cityHash64({seed}, 'y') % 800) AS box_y,
        toInt32(120) AS box_width,
        toInt32(40) AS box_height,
        toInt32(3 + cityHash64({seed}, 'n') % 8) AS frames,
        CAST([], 'Array(String)') AS candidate_texts,
        CAST([], 'Array(Float32)') AS candidate_confidences,
        toInt64(1200 + cityHash64({seed}, 'z') % 600) AS normalized_after_ms,
        toInt64(2000 + cityHash64({seed}, 'i') % 1500) AS ingested_after_ms"""


@dataclass
class Planted:
    """The answers the generator planted, for the benchmark's query parameters and for tests."""

    convoy_target: str = CONVOY_TARGET
    convoy_followers: tuple[str, ...] = CONVOY_FOLLOWERS
    visit_plate: str = VISIT_PLATE
    visit_cameras: tuple[str, ...] = tuple(camera_id(c) for c in VISIT_SITE_CAMERAS)
    visit_count: int = VISIT_COUNT
    multi_plate: str = MULTI_PLATE
    multi_windows: tuple[tuple[str, datetime, datetime], ...] = field(
        default_factory=lambda: tuple(
            (camera_id(cam), START + timedelta(days=day), START + timedelta(days=day, hours=2))
            for cam, day in MULTI_WINDOWS
        )
    )


def build(client: Client, reads: int) -> Planted:
    """Insert `reads` background reads plus the planted patterns into `reads` (materialized views
    fill the derived tables). Runs entirely inside ClickHouse."""
    plates = max(1000, reads // 20)
    span_ms = DAYS * 86_400_000
    start_ms = int(START.timestamp() * 1000)
    # Inverse CDF of the continuous density 1 / (x + q) on [0, plates): x = q * ((plates + q) / q)^u - q.
    q = 1000
    uniform = "(cityHash64(number, 'p') % 1000000) / 1000000"
    plate_number = f"toUInt64(floor({q} * pow({(plates + q) / q}, {uniform}) - {q}))"
    # 70% of reads at one of 8 cameras around the plate's home camera, the rest anywhere.
    camera = (
        "if(cityHash64(number, 'r') % 10 < 7, "
        f"(cityHash64(pn, 'home') + cityHash64(number, 'k') % 8) % {CAMERAS}, "
        f"cityHash64(number, 'a') % {CAMERAS})"
    )
    ts = f"fromUnixTimestamp64Milli(toInt64({start_ms} + cityHash64(number, 't') % {span_ms}), 'UTC')"
    client.command(
        f"""
        INSERT INTO reads ({", ".join(READS_COLUMNS)})
        SELECT {_read_columns(ts, PLATE_SQL, "cam", "number")}
        FROM (SELECT number, {plate_number} AS pn, cityHash64(pn, 'plate') AS h, {camera} AS cam
              FROM numbers({reads}))
        """,
        settings={
            "max_insert_threads": 2,
            "max_block_size": 1_000_000,
            "min_insert_block_size_rows": 1_000_000,
        },
    )
    _plant(client, start_ms)
    return Planted()


def _plant(client: Client, start_ms: int) -> None:
    day_ms = 86_400_000
    # Convoy: the target passes 4 camera sightings a day for 30 days along CONVOY_CAMERAS; each follower
    # trails it by 5-40 s at those sightings (follower i on days where day % (i + 2) != 0).
    target_cam = f"arrayElement({list(CONVOY_CAMERAS)}, 1 + (number % {len(CONVOY_CAMERAS)}))"
    target_ts = (
        f"fromUnixTimestamp64Milli(toInt64({start_ms} + intDiv(number, 4) * {day_ms} + 28800000 "
        f"+ (number % 4) * 900000), 'UTC')"
    )
    rows = [
        f"SELECT {_read_columns(target_ts, repr(CONVOY_TARGET), target_cam, 'number + 900000000')} "
        "FROM numbers(120)"
    ]
    for i, follower in enumerate(CONVOY_FOLLOWERS):
        lag_ms = 5000 + i * 12000
        ts = f"{target_ts} + toIntervalMillisecond({lag_ms})"
        rows.append(
            f"SELECT {_read_columns(ts, repr(follower), target_cam, f'number + {910000000 + i * 1000}')} "
            f"FROM numbers(120) WHERE intDiv(number, 4) % {i + 2} != 0"
        )
    # Visits: VISIT_COUNT visits to the site, one every ~1.3 days: entry camera, exit camera 20-50 min later.
    entry_ts = f"fromUnixTimestamp64Milli(toInt64({start_ms} + number * 112000000 + 36000000), 'UTC')"
    exit_ts = f"{entry_ts} + toIntervalSecond(1200 + (number * 37) % 1800)"
    entry_cam, exit_cam = VISIT_SITE_CAMERAS
    rows.append(
        f"SELECT {_read_columns(entry_ts, repr(VISIT_PLATE), str(entry_cam), 'number + 920000000')} "
        f"FROM numbers({VISIT_COUNT})"
    )
    rows.append(
        f"SELECT {_read_columns(exit_ts, repr(VISIT_PLATE), str(exit_cam), 'number + 930000000')} "
        f"FROM numbers({VISIT_COUNT})"
    )
    # Multi-site: MULTI_PLATE seen 30 minutes into each incident window.
    for j, (cam, day) in enumerate(MULTI_WINDOWS):
        ts = f"fromUnixTimestamp64Milli(toInt64({start_ms + day * day_ms + 1_800_000}), 'UTC')"
        rows.append(
            f"SELECT {_read_columns(ts, repr(MULTI_PLATE), str(cam), f'number + {940000000 + j}')} "
            "FROM numbers(1)"
        )
    client.command(f"INSERT INTO reads ({', '.join(READS_COLUMNS)}) " + " UNION ALL ".join(rows))


def merge(client: Client, tables: tuple[str, ...]) -> None:
    """Merge each table's parts, one partition at a time (bounded memory), as background merges
    would in a table in service; the benchmark then measures steady-state layouts."""
    for table in tables:
        partitions = client.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE active AND database = currentDatabase() "
            "AND table = {table:String} ORDER BY partition_id",
            {"table": table},
        ).result_rows
        for (partition_id,) in partitions:
            client.command(f"OPTIMIZE TABLE {table} PARTITION ID '{partition_id}' FINAL")


def bytes_per_read(client: Client, tables: tuple[str, ...]) -> dict[str, float]:
    """Compressed bytes on disk per row of `reads`, per table and in total."""
    reads = int(client.query("SELECT count() FROM reads").result_rows[0][0]) or 1
    rows = client.query(
        "SELECT table, sum(data_compressed_bytes) FROM system.parts "
        "WHERE active AND database = currentDatabase() AND table IN {tables:Array(String)} GROUP BY table",
        {"tables": list(tables)},
    ).result_rows
    out = {str(table): int(size) / reads for table, size in rows}
    out["total"] = sum(out.values())
    return out


def add_alerts(client: Client, count: int) -> None:
    """`count` hotlist hits on reads spread over the whole period (for dashboard hit counts)."""
    total = int(client.query("SELECT count() FROM reads").result_rows[0][0])
    step = max(1, total // max(1, count))
    client.command(
        f"""
        INSERT INTO alerts (alert_id, read_id, plate, hotlist_id, hotlist_name, entry_id, match_kind,
            region_mismatch, stale, status, raised_at, agency_id, camera_id, updated_at)
        SELECT concat('alert-', read_id), read_id, plate, 'stolen', 'Stolen vehicles', plate, 'EXACT',
            false, false, 'UNCONFIRMED', captured_at, agency_id, camera_id, toDateTime64(0, 3, 'UTC')
        FROM reads WHERE cityHash64(read_id) % {step} = 0 LIMIT {count}
        """
    )
