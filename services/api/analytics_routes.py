"""RTCC analytics over the search service (issue 5): vehicle timeline (JSON or GeoJSON), visit
frequency and frequent visitors of a site, convoy / associates, multi-site and dashboard statistics.

Every route is purpose-bound (`analytics_context`: `X-Purpose-Code`, `X-Case-Number`), queries only
the agencies that context allows (contract 2), keeps to the policy's data-age tier, needs the
policy's second approver where it names the analysis (convoy, multi_site) and is audited. Invalid
questions (patterns, places, windows) come back from the search service as INVALID_ARGUMENT and
leave here as 422 with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from services.api.backends import Backend
from services.api.models import ErrorOut, ReadOut, datetime_to_timestamp, timestamp_to_datetime
from services.api.security import (
    GovernanceDep,
    SearchContext,
    analytics_context,
    audit_data_access,
    refuse_policy,
    search_context,
)
from services.common.pb.platewatch.v1 import search_pb2, search_pb2_grpc
from services.governance.policy import PolicyRefusal

API_PREFIX = "/api/v1"
router = APIRouter(prefix=f"{API_PREFIX}/analytics", tags=["analytics"])
AnalyticsContextDep = Annotated[SearchContext, Depends(analytics_context)]
# A timeline is one plate's reads in time order: the same data as a plate search, so the same
# permission (officers too); the pattern analytics (visits, convoy, multi-site, dashboards) need
# analytics.run.
PlateSearchContextDep = Annotated[SearchContext, Depends(search_context)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated"},
    403: {"model": ErrorOut, "description": "Refused by a role, agency, approval or policy rule"},
    422: {"description": "Invalid question (pattern, place, time window), with the reason"},
    503: {"model": ErrorOut, "description": "The search service is unavailable"},
}


def get_search(request: Request) -> Backend[search_pb2_grpc.SearchServiceStub]:
    backends = request.app.state.backends
    if backends is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "API is starting: no backends yet")
    search: Backend[search_pb2_grpc.SearchServiceStub] = backends.search
    return search


SearchDep = Annotated[Backend[search_pb2_grpc.SearchServiceStub], Depends(get_search)]


# Request bodies -------------------------------------------------------------------------------------


class CircleIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=50_000)


class PlaceIn(BaseModel):
    """A site: cameras, and/or the cameras inside a circle or a closed polygon of [lat, lon] points
    (the last point repeats the first)."""

    camera_ids: list[str] = Field(default_factory=list, max_length=5000)
    circle: CircleIn | None = None
    polygon: list[tuple[float, float]] | None = Field(default=None, max_length=200)

    def to_proto(self) -> search_pb2.Place:
        place = search_pb2.Place(camera_ids=self.camera_ids)
        if self.circle is not None:
            place.circle.CopyFrom(search_pb2.GeoCircle(**self.circle.model_dump()))
        if self.polygon is not None:
            place.polygon.CopyFrom(polygon_proto(self.polygon))
        return place


def polygon_proto(points: list[tuple[float, float]]) -> search_pb2.GeoPolygon:
    return search_pb2.GeoPolygon(points=[search_pb2.GeoPoint(lat=lat, lon=lon) for lat, lon in points])


class WindowIn(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime


class VisitsIn(BaseModel):
    plate: str = Field(min_length=1, max_length=32)
    site: PlaceIn
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    gap_seconds: int = Field(default=1800, ge=1, le=30 * 86400)


class FrequentVisitorsIn(WindowIn):
    site: PlaceIn
    gap_seconds: int = Field(default=1800, ge=1, le=30 * 86400)
    min_visits: int = Field(default=2, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)


class ConvoyIn(WindowIn):
    plate: str = Field(min_length=1, max_length=32)
    delta_seconds: int = Field(default=60, ge=1, le=3600)
    min_cameras: int = Field(default=2, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)


class SiteWindowIn(WindowIn):
    site: PlaceIn


class MultiSiteIn(BaseModel):
    windows: list[SiteWindowIn] = Field(min_length=2, max_length=16)
    min_windows: int = Field(default=0, ge=0, description="0: all windows")
    limit: int = Field(default=100, ge=1, le=1000)


# Responses ---------------------------------------------------------------------------------------


class TimelineOut(BaseModel):
    plate: str
    sightings: list[ReadOut]
    truncated: bool


class VisitOut(BaseModel):
    start: datetime
    end: datetime
    camera_ids: list[str]
    sightings: int
    dwell_seconds: int | None = Field(description="Known when two or more cameras saw the visit")


class VisitsOut(BaseModel):
    plate: str
    visit_count: int
    visits: list[VisitOut]


class VisitorOut(BaseModel):
    plate: str
    visits: int
    sightings: int
    first_seen: datetime
    last_seen: datetime


class FrequentVisitorsOut(BaseModel):
    visitors: list[VisitorOut]


class AssociateOut(BaseModel):
    plate: str
    co_sightings: int
    cameras: int
    camera_ids: list[str]


class ConvoyOut(BaseModel):
    plate: str
    target_sightings: int
    associates: list[AssociateOut]


class MultiSiteMatchOut(BaseModel):
    plate: str
    windows: list[int]


class MultiSiteOut(BaseModel):
    plates: list[MultiSiteMatchOut]


class StatsRowOut(BaseModel):
    agency_id: str
    camera_id: str | None
    period_start: datetime | None
    reads: int
    hits: int


class DashboardOut(BaseModel):
    group_by: str
    rows: list[StatsRowOut]
    truncated: bool


# Helpers -----------------------------------------------------------------------------------------


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def _set_window(message: Any, start: datetime | None, end: datetime | None) -> None:
    if start is not None:
        getattr(message, "from").CopyFrom(datetime_to_timestamp(start))
    if end is not None:
        message.to.CopyFrom(datetime_to_timestamp(end))


async def _data_age_bound(
    request: Request, governance: Any, context: SearchContext, start: datetime | None
) -> datetime | None:
    """The policy's data-age tier for a window start (the reads routes' rule, shared from app.py)."""
    from services.api.app import _data_age_bound as bound  # app.py includes this router

    result: datetime | None = await bound(request, governance, context, start)
    return result


async def _second_approver(request: Request, governance: Any, context: SearchContext, kind: str) -> None:
    """Analyses the policy names (e.g. convoy, multi_site) need an approved X-Approval-Id."""
    principal = context.principal
    if not governance.policy.needs_second_approver(principal.agency_id, kind):
        return
    try:
        governance.approvals.require(
            context.approval_id,
            agency_id=principal.agency_id,
            subject=principal.subject,
            kind="analytics",
            scope=kind,
            case_number=context.case_number,
            now=governance.clock(),
            rule="analytics.second_approver_required",
            what=f"a {kind.replace('_', '-')} analysis",
        )
    except PolicyRefusal as exc:
        raise await refuse_policy(
            governance,
            exc,
            principal=principal,
            action=_route(request),
            purpose_code=context.purpose_code,
            case_number=context.case_number,
        ) from exc


async def _audit(
    governance: Any, context: SearchContext, action: str, count: int, details: dict[str, Any]
) -> None:
    await audit_data_access(
        governance,
        context,
        kind="search",
        action=action,
        result_count=count,
        details={"queried_agency_ids": list(context.agency_ids), **details},
    )


def _when(message: Any, field_name: str) -> datetime:
    value = timestamp_to_datetime(message, field_name)
    assert value is not None
    return value


def timeline_geojson(plate: str, sightings: list[ReadOut]) -> dict[str, Any]:
    """A FeatureCollection: the path as a LineString (oldest first) and one Point per sighting."""
    features: list[dict[str, Any]] = []
    if len(sightings) >= 2:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[s.lon, s.lat] for s in sightings]},
                "properties": {"plate": plate, "kind": "path"},
            }
        )
    for order, s in enumerate(sightings):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                "properties": {
                    "kind": "sighting",
                    "order": order,
                    "read_id": s.read_id,
                    "camera_id": s.camera_id,
                    "captured_at": s.captured_at.isoformat() if s.captured_at else None,
                    "direction": s.direction,
                    "crop_url": s.crop_url,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


# Routes ------------------------------------------------------------------------------------------


@router.get("/timeline", response_model=None, responses={200: {"model": TimelineOut}, **ERRORS})
async def vehicle_timeline(
    request: Request,
    search: SearchDep,
    context: PlateSearchContextDep,
    governance: GovernanceDep,
    plate: Annotated[str, Query(min_length=1, max_length=32)],
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    format: Annotated[Literal["json", "geojson"], Query(description="geojson: a map layer")] = "json",
) -> TimelineOut | dict[str, Any]:
    """Every sighting of a plate across cameras, oldest first, with direction and crop URL."""
    from_ = await _data_age_bound(request, governance, context, from_)
    message = search_pb2.TimelineRequest(
        agency_ids=context.agency_ids, plate=plate.strip().upper(), limit=limit
    )
    _set_window(message, from_, to)
    response: search_pb2.TimelineResponse = await search.call("VehicleTimeline", message)
    sightings = [ReadOut.from_proto(read) for read in response.sightings]
    await _audit(governance, context, "vehicle timeline", len(sightings), {"plate": message.plate})
    if format == "geojson":
        return timeline_geojson(message.plate, sightings)
    return TimelineOut(plate=message.plate, sightings=sightings, truncated=response.truncated)


@router.post("/visits", response_model=VisitsOut, responses=ERRORS)
async def visit_frequency(
    request: Request,
    search: SearchDep,
    context: AnalyticsContextDep,
    governance: GovernanceDep,
    body: VisitsIn,
) -> VisitsOut:
    """Distinct visits (sightings more than gap_seconds apart start a new one) of a plate to a site."""
    start = await _data_age_bound(request, governance, context, body.from_)
    message = search_pb2.VisitsRequest(
        agency_ids=context.agency_ids,
        plate=body.plate.strip().upper(),
        site=body.site.to_proto(),
        gap_seconds=body.gap_seconds,
    )
    _set_window(message, start, body.to)
    response: search_pb2.VisitsResponse = await search.call("VisitFrequency", message)
    await _audit(governance, context, "visit frequency", response.visit_count, {"plate": message.plate})
    return VisitsOut(
        plate=message.plate,
        visit_count=response.visit_count,
        visits=[
            VisitOut(
                start=_when(v, "start"),
                end=_when(v, "end"),
                camera_ids=list(v.camera_ids),
                sightings=v.sightings,
                dwell_seconds=v.dwell_seconds if v.dwell_known else None,
            )
            for v in response.visits
        ],
    )


@router.post("/frequent-visitors", response_model=FrequentVisitorsOut, responses=ERRORS)
async def frequent_visitors(
    request: Request,
    search: SearchDep,
    context: AnalyticsContextDep,
    governance: GovernanceDep,
    body: FrequentVisitorsIn,
) -> FrequentVisitorsOut:
    """Plates that visited a site at least min_visits times in the window, most visits first."""
    start = await _data_age_bound(request, governance, context, body.from_)
    message = search_pb2.FrequentVisitorsRequest(
        agency_ids=context.agency_ids,
        site=body.site.to_proto(),
        gap_seconds=body.gap_seconds,
        min_visits=body.min_visits,
        limit=body.limit,
    )
    _set_window(message, start, body.to)
    response: search_pb2.FrequentVisitorsResponse = await search.call("FrequentVisitors", message)
    await _audit(governance, context, "frequent visitors", len(response.visitors), {})
    return FrequentVisitorsOut(
        visitors=[
            VisitorOut(
                plate=v.plate,
                visits=v.visits,
                sightings=v.sightings,
                first_seen=_when(v, "first_seen"),
                last_seen=_when(v, "last_seen"),
            )
            for v in response.visitors
        ]
    )


@router.post("/convoy", response_model=ConvoyOut, responses=ERRORS)
async def convoy(
    request: Request,
    search: SearchDep,
    context: AnalyticsContextDep,
    governance: GovernanceDep,
    body: ConvoyIn,
) -> ConvoyOut:
    """Plates seen at the same camera within delta_seconds of the target, at >= min_cameras cameras."""
    await _second_approver(request, governance, context, "convoy")
    start = await _data_age_bound(request, governance, context, body.from_)
    message = search_pb2.ConvoyRequest(
        agency_ids=context.agency_ids,
        plate=body.plate.strip().upper(),
        delta_seconds=body.delta_seconds,
        min_cameras=body.min_cameras,
        limit=body.limit,
    )
    _set_window(message, start, body.to)
    response: search_pb2.ConvoyResponse = await search.call("Convoy", message)
    await _audit(governance, context, "convoy analysis", len(response.associates), {"plate": message.plate})
    return ConvoyOut(
        plate=message.plate,
        target_sightings=response.target_sightings,
        associates=[
            AssociateOut(
                plate=a.plate, co_sightings=a.co_sightings, cameras=a.cameras, camera_ids=list(a.camera_ids)
            )
            for a in response.associates
        ],
    )


@router.post("/multi-site", response_model=MultiSiteOut, responses=ERRORS)
async def multi_site(
    request: Request,
    search: SearchDep,
    context: AnalyticsContextDep,
    governance: GovernanceDep,
    body: MultiSiteIn,
) -> MultiSiteOut:
    """Plates seen in all (or at least min_windows) of several place-and-time windows."""
    await _second_approver(request, governance, context, "multi_site")
    message = search_pb2.MultiSiteRequest(
        agency_ids=context.agency_ids, min_windows=body.min_windows, limit=body.limit
    )
    for window in body.windows:
        start = await _data_age_bound(request, governance, context, window.from_)
        _set_window(message.windows.add(place=window.site.to_proto()), start, window.to)
    response: search_pb2.MultiSiteResponse = await search.call("MultiSite", message)
    await _audit(
        governance, context, "multi-site analysis", len(response.plates), {"windows": len(body.windows)}
    )
    return MultiSiteOut(
        plates=[MultiSiteMatchOut(plate=m.plate, windows=list(m.windows)) for m in response.plates]
    )


GROUPINGS = {
    "camera_hour": search_pb2.STATS_GROUPING_CAMERA_HOUR,
    "shift": search_pb2.STATS_GROUPING_SHIFT,
    "agency": search_pb2.STATS_GROUPING_AGENCY,
}


@router.get("/dashboard", response_model=DashboardOut, responses=ERRORS)
async def dashboard(
    search: SearchDep,
    context: AnalyticsContextDep,
    governance: GovernanceDep,
    from_: Annotated[datetime, Query(alias="from")],
    to: Annotated[datetime, Query()],
    group_by: Annotated[Literal["camera_hour", "shift", "agency"], Query()] = "camera_hour",
    camera_id: Annotated[list[str] | None, Query(description="Repeat for several; default all")] = None,
    shift_start_hour: Annotated[
        list[int] | None, Query(description="UTC shift start hours, ascending (default 6, 14, 22)")
    ] = None,
) -> DashboardOut:
    """Reads and hotlist hits per camera per hour, per shift or per agency (counts, no reads)."""
    message = search_pb2.DashboardRequest(
        agency_ids=context.agency_ids,
        camera_ids=camera_id or [],
        group_by=GROUPINGS[group_by],
        shift_start_hours=shift_start_hour or [],
    )
    _set_window(message, from_, to)
    response: search_pb2.DashboardResponse = await search.call("DashboardStats", message)
    await _audit(governance, context, "dashboard statistics", len(response.rows), {"group_by": group_by})
    return DashboardOut(
        group_by=group_by,
        truncated=response.truncated,
        rows=[
            StatsRowOut(
                agency_id=row.agency_id,
                camera_id=row.camera_id or None,
                period_start=timestamp_to_datetime(row, "period_start"),
                reads=row.reads,
                hits=row.hits,
            )
            for row in response.rows
        ],
    )
