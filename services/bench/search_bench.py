"""`platewatch bench search`: build N synthetic reads inside ClickHouse and time every query type.

Queries are the SearchService's own SQL builders (services/search/query.py, analytics.py) run on
the client, so the figures are storage-side latencies without gRPC. Each query runs once right
after ClickHouse's caches are dropped (cold: marks, uncompressed blocks, primary index, query
condition caches; the OS page cache cannot be dropped without root, so cold here means "ClickHouse
cold, file cache warm"), then `runs` times warm (p50, p95).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from clickhouse_connect.driver.client import Client
from google.protobuf.timestamp_pb2 import Timestamp

from services.bench import synthetic
from services.common.pb.platewatch.v1 import search_pb2
from services.search import analytics
from services.search.query import build_search_sql, plate_candidates_sql

DERIVED_TABLES = ("reads", "reads_by_camera", "plates", "read_counts_hourly", "cameras")
# The keys of the --json line, in the order the issue lists them.
JSON_QUERIES = (
    "exact",
    "timeline",
    "partial",
    "visits",
    "convoy",
    "convoy_heaviest",
    "multisite",
    "dashboard",
)
MAX_DAYS = 400
CACHE_DROPS = (
    "SYSTEM DROP MARK CACHE",
    "SYSTEM DROP UNCOMPRESSED CACHE",
    "SYSTEM DROP PRIMARY INDEX CACHE",
    "SYSTEM DROP QUERY CONDITION CACHE",
    "SYSTEM DROP QUERY CACHE",
)


@dataclass
class QueryFigures:
    cold_ms: float
    warm_ms: list[float]
    rows_scanned: int
    results: int

    def as_json(self) -> dict[str, Any]:
        return {
            "p50_ms": round(statistics.median(self.warm_ms), 2),
            "p95_ms": round(_p95(self.warm_ms), 2),
            "rows_scanned": self.rows_scanned,
            "results": self.results,
            "cold_ms": round(self.cold_ms, 2),
        }


@dataclass
class BenchResult:
    reads: int
    build_s: float
    bytes_per_read: dict[str, float]
    # build_s = insert_s + merging the parts (a table in service is merged continuously).
    insert_s: float = 0.0
    queries: dict[str, QueryFigures] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "bytes_per_read": round(self.bytes_per_read["total"], 2),
            "build_s": round(self.build_s, 2),
            "queries": {name: self.queries[name].as_json() for name in JSON_QUERIES if name in self.queries},
        }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def _stamp(message: Any, field_name: str, seconds: float) -> None:
    stamp: Timestamp = getattr(message, field_name)
    stamp.FromMilliseconds(int(seconds * 1000))


class Runner:
    """Runs one query type: a callable returning (result count, rows scanned)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._scanned: dict[str, int] = {}

    def query(self, sql: str, params: dict[str, Any]) -> tuple[list[Any], int]:
        """The rows of a query and the rows ClickHouse selects to read for it: the sum over tables
        of EXPLAIN ESTIMATE (rows in the granules left after primary key and skip index pruning;
        the embedded engine reports no per-query read_rows). The estimate is cached per query."""
        rows = list(self.client.query(sql, params).result_rows)
        key = sql + repr(sorted(params.items()))
        if key not in self._scanned:
            try:
                estimate = self.client.query("EXPLAIN ESTIMATE " + sql, params).result_rows
                self._scanned[key] = sum(int(row[3]) for row in estimate)
            except Exception:
                self._scanned[key] = -1
        return rows, self._scanned[key]

    def measure(self, run: Callable[[], tuple[int, int]], runs: int) -> QueryFigures:
        for statement in CACHE_DROPS:
            try:
                self.client.command(statement)
            except Exception:
                pass
        started = time.perf_counter()
        results, scanned = run()
        cold = (time.perf_counter() - started) * 1000
        warm: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            results, scanned = run()
            warm.append((time.perf_counter() - started) * 1000)
        return QueryFigures(cold, warm, scanned, results)


def run_queries(client: Client, planted: synthetic.Planted, runs: int) -> dict[str, QueryFigures]:
    runner = Runner(client)
    agencies = list(synthetic.AGENCIES)
    start, end = synthetic.START.timestamp(), synthetic.END.timestamp()
    typical = planted.convoy_target
    heaviest = str(
        client.query("SELECT plate FROM plates GROUP BY plate ORDER BY sum(reads) DESC LIMIT 1").result_rows[
            0
        ][0]
    )
    out: dict[str, QueryFigures] = {}

    def plate_search(plate: str, **fields: Any) -> Callable[[], tuple[int, int]]:
        request = search_pb2.PlateQuery(plate=plate, agency_ids=agencies, **fields)
        sql, params, _ = build_search_sql(request, 50)
        candidates = plate_candidates_sql(request, 50)

        def run() -> tuple[int, int]:
            scanned_plates = 0
            if candidates is not None:
                plates, scanned_plates = runner.query(*candidates)
                params["plates"] = [str(row[0]) for row in plates]
            rows, scanned = runner.query(sql, params)
            return len(rows), scanned + scanned_plates

        return run

    out["exact"] = runner.measure(plate_search(typical), runs)
    out["partial"] = runner.measure(plate_search("*K72*"), runs)
    out["fuzzy"] = runner.measure(plate_search("CVY000I", fuzzy=True), runs)

    timeline = search_pb2.TimelineRequest(plate=typical, agency_ids=agencies)
    timeline_sql, timeline_params = analytics.timeline_sql(timeline, 10_000, MAX_DAYS)
    out["timeline"] = runner.measure(lambda: _count(runner, timeline_sql, timeline_params), runs)

    site = search_pb2.Place(camera_ids=list(planted.visit_cameras))
    visits = search_pb2.VisitsRequest(
        plate=planted.visit_plate, agency_ids=agencies, site=site, gap_seconds=3600
    )
    _stamp(visits, "from", start)
    _stamp(visits, "to", end)
    visits_sql, visits_params, gap = analytics.visits_sql(visits, MAX_DAYS)

    def run_visits() -> tuple[int, int]:
        rows, scanned = runner.query(visits_sql, visits_params)
        return len(analytics.split_visits([(int(t), str(c)) for t, c in rows], gap)), scanned

    out["visits"] = runner.measure(run_visits, runs)

    frequent = search_pb2.FrequentVisitorsRequest(
        agency_ids=agencies, site=site, min_visits=20, gap_seconds=3600
    )
    _stamp(frequent, "from", start)
    _stamp(frequent, "to", end)
    frequent_sql, frequent_params = analytics.frequent_visitors_sql(frequent, MAX_DAYS, 1000)
    out["frequent_visitors"] = runner.measure(lambda: _count(runner, frequent_sql, frequent_params), runs)

    # Around the most frequent plate, every plate seen near it at any camera (min_cameras 1): the
    # heaviest convoy question there is.
    for name, plate, min_cameras in (("convoy", typical, 2), ("convoy_heaviest", heaviest, 1)):
        convoy = search_pb2.ConvoyRequest(
            plate=plate, agency_ids=agencies, delta_seconds=60, min_cameras=min_cameras
        )
        _stamp(convoy, "from", start)
        _stamp(convoy, "to", end)
        convoy_sql, convoy_params = analytics.convoy_sql(convoy, MAX_DAYS, 100)
        count_sql, count_params = analytics.target_sightings_sql(convoy, MAX_DAYS)

        def run_convoy(
            convoy_sql: str = convoy_sql,
            convoy_params: dict[str, Any] = convoy_params,
            count_sql: str = count_sql,
            count_params: dict[str, Any] = count_params,
        ) -> tuple[int, int]:
            _, counted = runner.query(count_sql, count_params)
            rows, scanned = runner.query(convoy_sql, convoy_params)
            return len(rows), scanned + counted

        out[name] = runner.measure(run_convoy, runs)

    multisite = search_pb2.MultiSiteRequest(agency_ids=agencies)
    for camera, window_start, window_end in planted.multi_windows:
        window = multisite.windows.add(place=search_pb2.Place(camera_ids=[camera]))
        _stamp(window, "from", window_start.timestamp())
        _stamp(window, "to", window_end.timestamp())
    multisite_sql, multisite_params = analytics.multisite_sql(multisite, MAX_DAYS, 1000)
    out["multisite"] = runner.measure(lambda: _count(runner, multisite_sql, multisite_params), runs)

    # A control-room dashboard: every camera, hour by hour, over the last day of data.
    dashboard = search_pb2.DashboardRequest(
        agency_ids=agencies, group_by=search_pb2.STATS_GROUPING_CAMERA_HOUR
    )
    _stamp(dashboard, "from", end - timedelta(days=1).total_seconds())
    _stamp(dashboard, "to", end)
    reads_sql, hits_sql, dashboard_params = analytics.dashboard_sql(dashboard, MAX_DAYS, 100_000)

    def run_dashboard() -> tuple[int, int]:
        reads, scanned_reads = runner.query(reads_sql, dashboard_params)
        _, scanned_hits = runner.query(hits_sql, dashboard_params)
        return len(reads), scanned_reads + scanned_hits

    out["dashboard"] = runner.measure(run_dashboard, runs)
    return out


def _count(runner: Runner, sql: str, params: dict[str, Any]) -> tuple[int, int]:
    rows, scanned = runner.query(sql, params)
    return len(rows), scanned


def run_bench(client: Client, reads: int, runs: int) -> BenchResult:
    """Build `reads` synthetic reads (plus 0.1% as hotlist hits) and measure every query type."""
    started = time.perf_counter()
    planted = synthetic.build(client, reads)
    synthetic.add_alerts(client, max(10, reads // 1000))
    insert_s = time.perf_counter() - started
    synthetic.merge(client, (*DERIVED_TABLES, "alerts"))
    build_s = time.perf_counter() - started
    sizes = synthetic.bytes_per_read(client, DERIVED_TABLES)
    result = BenchResult(reads=reads, build_s=build_s, bytes_per_read=sizes, insert_s=insert_s)
    result.queries = run_queries(client, planted, runs)
    return result


def format_table(result: BenchResult) -> str:
    lines = [
        f"reads: {result.reads:,}   build: {result.build_s:.1f} s "
        f"(insert {result.insert_s:.1f} s, then merge)   "
        f"bytes per read: {result.bytes_per_read['total']:.1f} "
        "(" + ", ".join(f"{t} {v:.1f}" for t, v in result.bytes_per_read.items() if t != "total") + ")",
        f"{'query':<18}{'p50 ms':>10}{'p95 ms':>10}{'cold ms':>10}{'rows scanned':>15}{'results':>10}",
    ]
    for name, figures in result.queries.items():
        data = figures.as_json()
        lines.append(
            f"{name:<18}{data['p50_ms']:>10.1f}{data['p95_ms']:>10.1f}{data['cold_ms']:>10.1f}"
            f"{data['rows_scanned']:>15,}{data['results']:>10,}"
        )
    return "\n".join(lines)
