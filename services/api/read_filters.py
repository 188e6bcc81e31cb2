"""The filters of a plate search, declared once and shared by `GET /api/v1/reads` and the exports.

`ReadFilters` is a FastAPI dependency holding the query parameters; `plate_query` turns it, with the
caller's purpose-checked `SearchContext`, into the search service's `PlateQuery`: the agencies the
context allows (or a requested subset, 403 naming the rule otherwise), the policy's data-age tier
(an approval for older reads, else a missing `from` is set to the tier) and the geographic filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import HTTPException, Query, Request, status

from services.api.analytics_routes import polygon_proto
from services.api.models import datetime_to_timestamp
from services.api.security import Governance, SearchContext, refuse_policy, refuse_rule
from services.common.pb.platewatch.v1 import search_pb2
from services.governance.policy import PolicyRefusal


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


class ReadFilters:
    """Query parameters of a plate search (everything but paging)."""

    def __init__(
        self,
        plate: Annotated[
            str,
            Query(
                min_length=1,
                max_length=32,
                description="Exact plate, or a pattern with '?' (one character) and '*' (any run).",
            ),
        ],
        camera_id: Annotated[list[str] | None, Query(description="Repeat to match any of several.")] = None,
        agency_id: Annotated[
            list[str] | None,
            Query(description="Repeat to match any of several; default: every agency the caller may search."),
        ] = None,
        from_: Annotated[
            datetime | None, Query(alias="from", description="Captured at or after (ISO 8601).")
        ] = None,
        to: Annotated[datetime | None, Query(description="Captured before (ISO 8601).")] = None,
        min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
        fuzzy: Annotated[
            bool, Query(description="Confusables match: 0/O/D/Q, 1/I/L, 8/B, 5/S, 2/Z.")
        ] = False,
        direction: Annotated[list[str] | None, Query(description="Repeat to match any of several.")] = None,
        vehicle_color: Annotated[
            list[str] | None, Query(description="Repeat to match any of several.")
        ] = None,
        near: Annotated[
            str | None, Query(description="Circle 'lat,lon,radius_m': reads taken within it.", max_length=80)
        ] = None,
        within: Annotated[
            str | None,
            Query(description="Closed polygon 'lat,lon;lat,lon;...' (last point = first).", max_length=8000),
        ] = None,
    ) -> None:
        self.plate = plate
        self.camera_id = camera_id or []
        self.agency_id = agency_id or []
        self.from_ = from_
        self.to = to
        self.min_confidence = min_confidence
        self.fuzzy = fuzzy
        self.direction = direction or []
        self.vehicle_color = vehicle_color or []
        self.near = near
        self.within = within


@dataclass(frozen=True)
class ScopedQuery:
    """A PlateQuery ready to send, with what the audit entry records about it."""

    query: search_pb2.PlateQuery
    agencies: list[str]
    from_: datetime | None
    to: datetime | None

    def audit_details(self) -> dict[str, object]:
        return {
            "plate": self.query.plate,
            "camera_ids": list(self.query.camera_ids),
            "queried_agency_ids": self.agencies,
            "from": self.from_.isoformat() if self.from_ else None,
            "to": self.to.isoformat() if self.to else None,
        }


async def plate_query(
    request: Request,
    governance: Governance,
    context: SearchContext,
    filters: ReadFilters,
    *,
    page_size: int,
    page_token: str = "",
) -> ScopedQuery:
    """The search service query for `filters` under `context` (422 / 403 naming the rule when the
    filters or the policy refuse it)."""
    if filters.from_ is not None and filters.to is not None and filters.from_ > filters.to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must not be after 'to'")
    agencies = await scoped_agencies(request, governance, context, filters.agency_id)
    from_ = await data_age_bound(request, governance, context, filters.from_)
    query = search_pb2.PlateQuery(
        plate=filters.plate.strip().upper(),
        camera_ids=filters.camera_id,
        agency_ids=agencies,
        min_confidence=filters.min_confidence,
        page_size=page_size,
        page_token=page_token,
        fuzzy=filters.fuzzy,
        directions=filters.direction,
        vehicle_colors=filters.vehicle_color,
    )
    geo_filters(query, filters.near, filters.within)
    if from_ is not None:
        # `from` is a Python keyword, hence getattr.
        getattr(query, "from").CopyFrom(datetime_to_timestamp(from_))
    if filters.to is not None:
        query.to.CopyFrom(datetime_to_timestamp(filters.to))
    return ScopedQuery(query=query, agencies=agencies, from_=from_, to=filters.to)


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}: not numbers") from None


def geo_filters(query: search_pb2.PlateQuery, near: str | None, within: str | None) -> None:
    """`near=lat,lon,radius_m` and `within=lat,lon;lat,lon;...` (the search service checks ranges
    and that the polygon closes)."""
    if near:
        values = _numbers(near, "near")
        if len(values) != 3:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "near: lat,lon,radius_m")
        query.circle.CopyFrom(search_pb2.GeoCircle(lat=values[0], lon=values[1], radius_m=values[2]))
    if within:
        points = [_numbers(point, "within") for point in within.split(";")]
        if any(len(point) != 2 for point in points):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "within: lat,lon;lat,lon;...")
        query.polygon.CopyFrom(polygon_proto([(point[0], point[1]) for point in points]))


async def scoped_agencies(
    request: Request, governance: Governance, context: SearchContext, requested: list[str] | None
) -> list[str]:
    """The agencies to query: all the context allows, or the requested subset (403 naming the rule
    when a requested agency is neither the caller's nor sharing with it for this purpose)."""
    if not requested:
        return list(context.agency_ids)
    outside = sorted(set(requested) - set(context.agency_ids))
    if outside:
        raise await refuse_rule(
            governance,
            "agency.not_shared",
            f"agencies {outside} do not share {context.data_class} with {context.principal.agency_id} "
            f"for purpose {context.purpose_code!r}",
            status.HTTP_403_FORBIDDEN,
            principal=context.principal,
            action=_route(request),
        )
    return sorted(set(requested))


async def data_age_bound(
    request: Request, governance: Governance, context: SearchContext, from_: datetime | None
) -> datetime | None:
    """Apply the policy's data-age tier: with a usable approval the search may reach back freely;
    without one an explicit `from` beyond the tier is refused and a missing one is set to the tier."""
    now = governance.clock()
    tier = governance.policy.data_age_tier(context.principal.agency_id, from_, now)
    if tier is None:
        return from_
    if from_ is None and context.approval_id is None:
        return now - tier.older_than
    try:
        governance.approvals.require(
            context.approval_id,
            agency_id=context.principal.agency_id,
            subject=context.principal.subject,
            kind="data_age",
            scope="",
            case_number=context.case_number,
            now=now,
            rule="data_age.approval_required",
            what=f"searching reads older than {tier.older_than.days} days",
        )
    except PolicyRefusal as exc:
        raise await refuse_policy(
            governance,
            exc,
            principal=context.principal,
            action=_route(request),
            purpose_code=context.purpose_code,
            case_number=context.case_number,
        ) from exc
    return from_
