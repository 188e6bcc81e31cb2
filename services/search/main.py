"""Search gRPC service over stored reads (proto/platewatch/v1/search.proto), plus grpc.health.v1.

Blocking ClickHouse calls run in worker threads on the process-wide client (shared with the writer
when both run in one process, as they must with the embedded engine).

Questions about one exact plate (SearchReads with an exact plate, VehicleTimeline, VisitFrequency,
Convoy's target) also match the plate's pseudonym tokens and show the plate, not the token
(services/search/pseudonyms.py). Pattern and fuzzy searches never match tokens; questions that list
other vehicles (Convoy associates, FrequentVisitors, MultiSite, a full scan) show a pseudonymized
vehicle as its token, which names it within one key period and agency only.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from clickhouse_connect.driver.client import Client
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from prometheus_client import Counter, Histogram

from services.common.health import HealthState
from services.common.pb.platewatch.v1 import alerts_pb2, common_pb2, search_pb2, search_pb2_grpc
from services.governance.pseudonymize import Pseudonymizer
from services.retention.policy_source import configured_key_store, load_configured_policy
from services.search import analytics, pseudonyms
from services.search.query import (
    InvalidQuery,
    PageCursor,
    build_search_sql,
    clamp_page_size,
    encode_page_token,
    plate_candidates_sql,
    translate_plate,
)
from services.search.settings import SearchSettings
from services.storage.client import open_storage

log = logging.getLogger(__name__)

SERVICE = "search"
GRPC_SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
IMAGE_COLUMNS = {"": "crop_jpeg", "crop": "crop_jpeg", "frame": "frame_jpeg"}

REQUESTS = Counter("platewatch_search_requests_total", "Search RPCs", ["method", "code"])
REQUEST_SECONDS = Histogram(
    "platewatch_search_request_seconds",
    "Search RPC latency",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def _stored_read(row: dict[str, Any]) -> search_pb2.StoredRead:
    captured_at = Timestamp()
    captured_at.FromMilliseconds(int(row["captured_ms"]))
    return search_pb2.StoredRead(
        read_id=row["read_id"],
        plate=row["plate"],
        region=row["region"],
        confidence=row["confidence"],
        camera_id=row["camera_id"],
        agency_id=row["agency_id"],
        captured_at=captured_at,
        direction=row["direction"],
        lat=row["lat"],
        lon=row["lon"],
        vehicle=common_pb2.Vehicle(
            color=row["vehicle_color"],
            color_confidence=row["vehicle_color_confidence"],
            make=row["vehicle_make"],
            type=row["vehicle_type"],
        ),
        box=common_pb2.Box(x=row["box_x"], y=row["box_y"], width=row["box_width"], height=row["box_height"]),
    )


def _window(message: Any, start_field: str = "from") -> tuple[datetime | None, datetime | None]:
    """A request's [from, to) as aware datetimes (None where unset), for choosing key periods."""
    start = getattr(message, start_field).ToDatetime(tzinfo=UTC) if message.HasField(start_field) else None
    end = message.to.ToDatetime(tzinfo=UTC) if message.HasField("to") else None
    return start, end


class SearchService(search_pb2_grpc.SearchServiceServicer):
    def __init__(
        self,
        settings: SearchSettings,
        client: Client | None = None,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> None:
        # None until storage is open and migrated; RPCs answer UNAVAILABLE meanwhile.
        self._client = client
        self.settings = settings
        # The storage process's pseudonym keys; None = plates are only ever stored in clear.
        self.pseudonymizer = pseudonymizer

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("storage not open yet")
        return self._client

    def attach(self, client: Client) -> None:
        self._client = client

    async def SearchReads(
        self, request: search_pb2.PlateQuery, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchReadsResponse:
        """Newest first; `next_page_token` is empty on the last page."""
        with REQUEST_SECONDS.labels("SearchReads").time():
            page_size = clamp_page_size(
                request.page_size, self.settings.search_default_page_size, self.settings.search_max_page_size
            )
            exact = None if request.fuzzy else self._exact_plate(request.plate)
            forms = None
            if exact is not None:
                start, end = _window(request)
                forms = await self._plate_forms(context, "SearchReads", exact, request.agency_ids, start, end)
            try:
                sql, params, fingerprint = build_search_sql(request, page_size, forms)
                candidates = plate_candidates_sql(request, page_size)
            except InvalidQuery as exc:
                await self._abort(context, "SearchReads", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if candidates is not None:
                plates = await self._run(
                    context,
                    "SearchReads",
                    lambda: [row[0] for row in self.client.query(*candidates).result_rows],
                )
                if len(plates) > self.settings.search_max_pattern_plates:
                    await self._abort(
                        context,
                        "SearchReads",
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"pattern matches {len(plates)} plates (more than "
                        f"{self.settings.search_max_pattern_plates}): add characters or narrow the time",
                    )
                params["plates"] = [str(p) for p in plates]
            rows = await self._run(context, "SearchReads", lambda: self._rows(sql, params))
            if exact is not None:
                pseudonyms.reveal(rows, exact)
            response = search_pb2.SearchReadsResponse(reads=[_stored_read(r) for r in rows[:page_size]])
            if len(rows) > page_size:
                last = rows[page_size - 1]
                cursor = PageCursor(int(last["captured_ms"]), str(last["read_id"]))
                response.next_page_token = encode_page_token(cursor, fingerprint)
            REQUESTS.labels("SearchReads", "OK").inc()
            return response

    async def CountReads(
        self, request: search_pb2.CountReadsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.CountReadsResponse:
        """Rows stored and distinct read_ids (equal unless something stored a read twice)."""
        sql = "SELECT count(), uniqExact(read_id) FROM reads WHERE agency_id IN {agencies:Array(String)}"
        params = await self._build(
            context, "CountReads", lambda: {"agencies": analytics.require_agencies(request.agency_ids)}
        )
        with REQUEST_SECONDS.labels("CountReads").time():
            rows = await self._run(context, "CountReads", lambda: self.client.query(sql, params).result_rows)
            REQUESTS.labels("CountReads", "OK").inc()
            return search_pb2.CountReadsResponse(reads=int(rows[0][0]), distinct_read_ids=int(rows[0][1]))

    async def GetReadImage(
        self, request: search_pb2.GetReadImageRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.GetReadImageResponse:
        """The crop (kind "crop" or empty) or frame thumbnail (kind "frame") JPEG of a read."""
        column = IMAGE_COLUMNS.get(request.kind)
        if column is None or not request.read_id or not request.agency_ids:
            await self._abort(
                context,
                "GetReadImage",
                grpc.StatusCode.INVALID_ARGUMENT,
                "need read_id, kind crop|frame and agency_ids",
            )
        # `column` comes from IMAGE_COLUMNS, never from the request text. read_images has no agency:
        # the read's own row says whose it is (reads' read_id bloom filter keeps this cheap).
        sql = (
            f"SELECT {column} FROM read_images WHERE read_id = {{read_id:String}} "
            f"AND length({column}) > 0 AND read_id IN (SELECT read_id FROM reads "
            "WHERE read_id = {read_id:String} AND agency_id IN {agency_ids:Array(String)}) LIMIT 1"
        )
        parameters = {"read_id": request.read_id, "agency_ids": list(request.agency_ids)}

        def fetch() -> list[Any]:
            result = self.client.query(sql, parameters, column_formats={column: "bytes"})
            return list(result.result_rows)

        with REQUEST_SECONDS.labels("GetReadImage").time():
            rows = await self._run(context, "GetReadImage", fetch)
            if not rows:
                await self._abort(
                    context, "GetReadImage", grpc.StatusCode.NOT_FOUND, f"no {column} for {request.read_id}"
                )
            REQUESTS.labels("GetReadImage", "OK").inc()
            return search_pb2.GetReadImageResponse(jpeg=bytes(rows[0][0]))

    async def GetAlert(
        self, request: search_pb2.GetAlertRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.Alert:
        """The latest stored version of an alert (highest updated_at), with its read's crop JPEG put
        back (the frame thumbnail is not); NOT_FOUND when the alert was never stored."""
        if not request.alert_id:
            await self._abort(context, "GetAlert", grpc.StatusCode.INVALID_ARGUMENT, "need alert_id")
        with REQUEST_SECONDS.labels("GetAlert").time():
            found = await self._run(context, "GetAlert", lambda: self._latest_alert(request.alert_id))
            if found is None:
                await self._abort(
                    context, "GetAlert", grpc.StatusCode.NOT_FOUND, f"alert {request.alert_id} not found"
                )
            REQUESTS.labels("GetAlert", "OK").inc()
            alert: alerts_pb2.Alert = found
            return alert

    def _latest_alert(self, alert_id: str) -> alerts_pb2.Alert | None:
        sql = (
            "SELECT alert_pb, alert_id, read_id, plate, hotlist_id, hotlist_name, entry_id, status, "
            "toUnixTimestamp64Milli(raised_at) AS raised_ms, agency_id, camera_id "
            "FROM alerts FINAL WHERE alert_id = {alert_id:String} LIMIT 1"
        )
        result = self.client.query(sql, {"alert_id": alert_id}, column_formats={"alert_pb": "bytes"})
        rows = list(result.named_results())
        if not rows:
            return None
        row = rows[0]
        alert = alerts_pb2.Alert()
        if row["alert_pb"]:
            alert.ParseFromString(bytes(row["alert_pb"]))
        else:
            # Stored before the alert itself was kept (migration 0004): rebuild what the columns hold.
            alert.alert_id = row["alert_id"]
            alert.read.read_id = row["read_id"]
            alert.read.plate = row["plate"]
            alert.read.camera.agency_id = row["agency_id"]
            alert.read.camera.camera_id = row["camera_id"]
            alert.entry.hotlist_id = row["hotlist_id"]
            alert.entry.entry_id = row["entry_id"]
            alert.hotlist_name = row["hotlist_name"]
            if row["status"] in alerts_pb2.AlertStatus.keys():
                alert.status = alerts_pb2.AlertStatus.Value(row["status"])
            alert.raised_at.FromMilliseconds(int(row["raised_ms"]))
        crop = self.client.query(
            "SELECT crop_jpeg FROM read_images WHERE read_id = {read_id:String} AND length(crop_jpeg) > 0 "
            "LIMIT 1",
            {"read_id": alert.read.read_id},
            column_formats={"crop_jpeg": "bytes"},
        ).result_rows
        if crop:
            alert.read.crop_jpeg = bytes(crop[0][0])
        return alert

    async def VehicleTimeline(
        self, request: search_pb2.TimelineRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.TimelineResponse:
        """Every sighting of one plate, oldest first (at most timeline_max_sightings)."""
        method = "VehicleTimeline"
        with REQUEST_SECONDS.labels(method).time():
            limit = analytics._limit(request.limit, self.settings.timeline_max_sightings, default=1000)
            exact = self._exact_plate(request.plate)
            forms = None
            if exact is not None:
                start, end = _window(request)
                forms = await self._plate_forms(context, method, exact, request.agency_ids, start, end)
            sql, params = await self._build(
                context,
                method,
                lambda: analytics.timeline_sql(request, limit, self.settings.analytics_max_days, forms),
            )
            rows = await self._run(context, method, lambda: self._rows(sql, params))
            if exact is not None:
                pseudonyms.reveal(rows, exact)
            REQUESTS.labels(method, "OK").inc()
            return search_pb2.TimelineResponse(
                sightings=[_stored_read(r) for r in rows[:limit]], truncated=len(rows) > limit
            )

    async def VisitFrequency(
        self, request: search_pb2.VisitsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.VisitsResponse:
        """Gap-separated visits of one plate to a site, oldest first, with dwell where the visit was
        seen by two or more cameras."""
        method = "VisitFrequency"
        with REQUEST_SECONDS.labels(method).time():
            exact = self._exact_plate(request.plate)
            forms = None
            if exact is not None:
                start, end = _window(request)
                forms = await self._plate_forms(context, method, exact, request.agency_ids, start, end)
            sql, params, gap = await self._build(
                context,
                method,
                lambda: analytics.visits_sql(request, self.settings.analytics_max_days, forms),
            )
            rows = await self._run(context, method, lambda: self.client.query(sql, params).result_rows)
            spans = analytics.split_visits([(int(ts), str(cam)) for ts, cam in rows], gap)
            response = search_pb2.VisitsResponse(visit_count=len(spans))
            for span in spans:
                visit = response.visits.add(
                    camera_ids=list(span.cameras),
                    sightings=span.sightings,
                    dwell_seconds=span.dwell_seconds,
                    dwell_known=span.dwell_known,
                )
                visit.start.FromSeconds(span.start)
                visit.end.FromSeconds(span.end)
            REQUESTS.labels(method, "OK").inc()
            return response

    async def FrequentVisitors(
        self, request: search_pb2.FrequentVisitorsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.FrequentVisitorsResponse:
        """Plates with at least min_visits visits to a site in a window, most visits first."""
        method = "FrequentVisitors"
        with REQUEST_SECONDS.labels(method).time():
            sql, params = await self._build(
                context,
                method,
                lambda: analytics.frequent_visitors_sql(
                    request, self.settings.analytics_max_days, self.settings.analytics_max_results
                ),
            )
            rows = await self._run(context, method, lambda: self.client.query(sql, params).result_rows)
            response = search_pb2.FrequentVisitorsResponse()
            for plate, visits, sightings, first_ts, last_ts in rows:
                visitor = response.visitors.add(plate=plate, visits=int(visits), sightings=int(sightings))
                visitor.first_seen.FromSeconds(int(first_ts))
                visitor.last_seen.FromSeconds(int(last_ts))
            REQUESTS.labels(method, "OK").inc()
            return response

    async def Convoy(
        self, request: search_pb2.ConvoyRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.ConvoyResponse:
        """Plates travelling with the target: most cameras shared first."""
        method = "Convoy"
        with REQUEST_SECONDS.labels(method).time():
            exact = self._exact_plate(request.plate)
            forms = None
            if exact is not None:
                start, end = _window(request)
                forms = await self._plate_forms(context, method, exact, request.agency_ids, start, end)
            sql, params = await self._build(
                context,
                method,
                lambda: analytics.convoy_sql(
                    request, self.settings.convoy_max_days, self.settings.analytics_max_results, forms
                ),
            )
            count_sql, count_params = analytics.target_sightings_sql(
                request, self.settings.convoy_max_days, forms
            )

            def fetch() -> tuple[int, list[Any]]:
                targets = int(self.client.query(count_sql, count_params).result_rows[0][0])
                return targets, list(self.client.query(sql, params).result_rows) if targets else []

            targets, rows = await self._run(context, method, fetch)
            response = search_pb2.ConvoyResponse(target_sightings=targets)
            for plate, co_sightings, cameras, camera_ids, _ in rows:
                response.associates.add(
                    plate=plate,
                    co_sightings=int(co_sightings),
                    cameras=int(cameras),
                    camera_ids=list(camera_ids),
                )
            REQUESTS.labels(method, "OK").inc()
            return response

    async def MultiSite(
        self, request: search_pb2.MultiSiteRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.MultiSiteResponse:
        """Plates present in all (or at least min_windows) of the windows, most windows first."""
        method = "MultiSite"
        with REQUEST_SECONDS.labels(method).time():
            sql, params = await self._build(
                context,
                method,
                lambda: analytics.multisite_sql(
                    request, self.settings.analytics_max_days, self.settings.analytics_max_results
                ),
            )
            rows = await self._run(context, method, lambda: self.client.query(sql, params).result_rows)
            response = search_pb2.MultiSiteResponse()
            for plate, windows in rows:
                response.plates.add(plate=plate, windows=[int(w) for w in windows])
            REQUESTS.labels(method, "OK").inc()
            return response

    async def DashboardStats(
        self, request: search_pb2.DashboardRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.DashboardResponse:
        """Reads and hits per camera and hour, per shift or per agency, in period order."""
        method = "DashboardStats"
        limit = self.settings.dashboard_max_rows
        with REQUEST_SECONDS.labels(method).time():
            reads_sql, hits_sql, params = await self._build(
                context,
                method,
                lambda: analytics.dashboard_sql(request, self.settings.analytics_max_days, limit),
            )

            def fetch() -> tuple[list[Any], list[Any]]:
                return (
                    list(self.client.query(reads_sql, params).result_rows),
                    list(self.client.query(hits_sql, params).result_rows),
                )

            read_rows, hit_rows = await self._run(context, method, fetch)
            counts: dict[tuple[str, str, int], list[int]] = {}
            for index, rows in enumerate((read_rows, hit_rows)):
                for agency, camera, period, value in rows[:limit]:
                    counts.setdefault((str(agency), str(camera), int(period)), [0, 0])[index] += int(value)
            response = search_pb2.DashboardResponse(
                truncated=len(read_rows) > limit or len(hit_rows) > limit or len(counts) > limit
            )
            grouped_by_agency = request.group_by == search_pb2.STATS_GROUPING_AGENCY
            for (agency, camera, period), (reads, hits) in sorted(
                counts.items(), key=lambda kv: (kv[0][2], kv[0])
            )[:limit]:
                row = response.rows.add(agency_id=agency, camera_id=camera, reads=reads, hits=hits)
                if not grouped_by_agency:
                    row.period_start.FromSeconds(period)
            REQUESTS.labels(method, "OK").inc()
            return response

    @staticmethod
    def _exact_plate(text: str) -> str | None:
        """The normalized plate when `text` is one exact plate; None for patterns and bad input
        (the SQL builders refuse bad input with the reason)."""
        try:
            return translate_plate(text).exact
        except InvalidQuery:
            return None

    async def _plate_forms(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        plate: str,
        agency_ids: Any,
        start: datetime | None,
        end: datetime | None,
    ) -> list[str] | None:
        """The stored forms of an exact plate for the request's agencies (pseudonyms.plate_forms);
        None when no agency ever pseudonymized, so the query stays `plate = ...`."""
        agencies = sorted({a for a in agency_ids if a})
        if not pseudonyms.uses_tokens(self.pseudonymizer, agencies):
            return None
        return list(
            await self._run(
                context,
                method,
                lambda: pseudonyms.plate_forms(self.client, self.pseudonymizer, plate, agencies, start, end),
            )
        )

    async def _build(self, context: grpc.aio.ServicerContext, method: str, build: Any) -> Any:
        """The SQL of a request, or INVALID_ARGUMENT naming what is wrong with it."""
        try:
            return build()
        except InvalidQuery as exc:
            await self._abort(context, method, grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.client.query(sql, params).named_results())

    async def _run(self, context: grpc.aio.ServicerContext, method: str, call: Any) -> Any:
        try:
            return await asyncio.to_thread(call)
        except Exception as exc:
            log.exception("ClickHouse query failed", extra={"method": method})
            await self._abort(context, method, grpc.StatusCode.UNAVAILABLE, f"storage error: {exc}"[:500])

    async def _abort(
        self, context: grpc.aio.ServicerContext, method: str, code: grpc.StatusCode, detail: str
    ) -> NoReturn:
        REQUESTS.labels(method, code.name).inc()
        await context.abort(code, detail)
        raise AssertionError("context.abort returned")  # it raises; this tells the type checker


async def serve(stop: asyncio.Event, health: HealthState) -> None:
    """Serve SearchService and grpc.health.v1 on `search_grpc_port` until `stop`."""
    settings = SearchSettings()
    health.set_ready(SERVICE, False)
    # Loaded (and validated) at start: the key rotation gives the period of a time. The keys are
    # read whether or not the policy pseudonymizes now, so tokens stored earlier stay findable.
    policy = load_configured_policy(settings)
    pseudonymizer = Pseudonymizer(configured_key_store(settings, policy))
    server = grpc.aio.server()
    service = SearchService(settings, pseudonymizer=pseudonymizer)
    search_pb2_grpc.add_SearchServiceServicer_to_server(service, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", GRPC_SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(f"{settings.search_grpc_host}:{settings.search_grpc_port}")
    await server.start()
    log.info("search gRPC listening", extra={"port": port})
    try:
        client = await open_storage(settings, stop, "search")
        if client is None:
            return
        service.attach(client)
        for name in ("", GRPC_SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        health.set_ready(SERVICE, True)
        log.info("search serving", extra={"port": port})
        await stop.wait()
    finally:
        health.set_ready(SERVICE, False)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=5)
        log.info("search stopped")
