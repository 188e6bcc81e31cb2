"""Exports (`/api/v1/exports/...`): a plate search's result set (CSV or JSON), a vehicle timeline
(CSV, JSON or GeoJSON) and the evidence package of one read (zip: read JSON, crop and frame JPEG,
manifest with SHA-256 of each file).

Rules (issue 6), the same as a search plus the export's own:
* role: `reads.export` (analyst, supervisor). Officers search and view images but do not take data
  out in bulk; auditors, admins and oversight (aggregate statistics only) export no rows.
* purpose: `X-Purpose-Code` and `X-Case-Number` as for a search (refused and audited otherwise).
* agency scope: the caller's agency plus the agencies sharing the `reads` data class with it for
  that purpose; an evidence package carries images, so the read's agency must also share `images`.
* data age: the policy's tier applies as for a search (an approval for older reads).
* size: at most `PLATEWATCH_EXPORT_MAX_ROWS` rows (a smaller `limit` may be asked for); the
  `X-Export-Rows` and `X-Export-Truncated` headers say what was cut.
* audit: one entry of kind "export" (format, filters, row count, purpose, case) on the caller's side
  and one of kind "sharing" on the side of every other agency whose data was queried.

The rows are gathered (bounded by the row limit) before the first byte is sent, so the audit entry
records the exact row count and nothing leaves unaudited (503 when the audit log is down); the body
is then streamed out row by row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from services.api.analytics_routes import SearchDep, TimelineOut, timeline_geojson
from services.api.backends import Backend, BackendError
from services.api.models import API_PREFIX, ErrorOut, ReadOut, datetime_to_timestamp
from services.api.read_filters import ReadFilters, data_age_bound, plate_query
from services.api.security import (
    GovernanceDep,
    SearchContext,
    audit_data_access,
    export_context,
    refuse_rule,
)
from services.common.pb.platewatch.v1 import search_pb2, search_pb2_grpc
from services.common.settings import CommonSettings

router = APIRouter(prefix=f"{API_PREFIX}/exports", tags=["exports"])
ExportContextDep = Annotated[SearchContext, Depends(export_context)]

CSV = "text/csv"
JSON = "application/json"
GEOJSON = "application/geo+json"
ZIP = "application/zip"
READ_COLUMNS = (
    "read_id",
    "plate",
    "region",
    "confidence",
    "camera_id",
    "agency_id",
    "captured_at",
    "direction",
    "lat",
    "lon",
    "vehicle_color",
    "vehicle_make",
    "vehicle_type",
)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated"},
    403: {"model": ErrorOut, "description": "Refused by a role, agency, approval or policy rule"},
    404: {"model": ErrorOut, "description": "Not found"},
    422: {"description": "Invalid parameters or missing purpose, with the reason"},
    503: {"model": ErrorOut, "description": "The search service or the audit log is unavailable"},
}


class ExportSettings(CommonSettings):
    """Limits of the export routes (`PLATEWATCH_EXPORT_...`)."""

    # Hard cap on the rows of one export (a request's `limit` can only lower it).
    export_max_rows: int = 10_000
    # Rows asked of the search service per page while gathering an export.
    export_page_size: int = 1000


class ReadsExportOut(BaseModel):
    """The JSON form of a reads export."""

    exported_at: datetime
    purpose_code: str
    case_number: str
    agency_ids: list[str]
    rows: int
    truncated: bool
    reads: list[ReadOut]


class TimelineExportOut(TimelineOut):
    exported_at: datetime
    purpose_code: str
    case_number: str


def get_export_settings(request: Request) -> ExportSettings:
    """The app's export settings (read from the environment on first use; tests may set
    `app.state.export_settings`)."""
    settings: ExportSettings | None = getattr(request.app.state, "export_settings", None)
    if settings is None:
        settings = request.app.state.export_settings = ExportSettings()
    return settings


ExportSettingsDep = Annotated[ExportSettings, Depends(get_export_settings)]
LimitQuery = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="At most this many rows (capped by PLATEWATCH_EXPORT_MAX_ROWS)."),
]


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:64] or "export"


def _filename(stem: str, context: SearchContext, now: datetime, extension: str) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_safe_name(stem)}-{_safe_name(context.case_number)}-{stamp}.{extension}"


def _cell(value: Any) -> Any:
    """Spreadsheets run cells starting with = + - @ as formulas: quote such text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _read_row(read: ReadOut) -> list[Any]:
    vehicle = read.vehicle
    values = [
        read.read_id,
        read.plate,
        read.region,
        read.confidence,
        read.camera_id,
        read.agency_id,
        read.captured_at.isoformat() if read.captured_at else "",
        read.direction,
        read.lat,
        read.lon,
        vehicle.color if vehicle else "",
        vehicle.make if vehicle else "",
        vehicle.type if vehicle else "",
    ]
    return [_cell(value) for value in values]


def _csv_line(values: Iterable[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


async def _csv_body(reads: list[ReadOut]) -> AsyncIterator[bytes]:
    yield _csv_line(READ_COLUMNS)
    for read in reads:
        yield _csv_line(_read_row(read))


async def _json_body(head: dict[str, Any], key: str, reads: list[ReadOut]) -> AsyncIterator[bytes]:
    """`head` as a JSON object whose `key` holds the reads, one read per chunk."""
    opening = json.dumps(head, default=str)[:-1]
    yield f'{opening}, "{key}": ['.encode() if head else f'{{"{key}": ['.encode()
    for index, read in enumerate(reads):
        yield (b"," if index else b"") + read.model_dump_json().encode()
    yield b"]}"


def _export_headers(filename: str, rows: int, truncated: bool) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
        "X-Export-Rows": str(rows),
        "X-Export-Truncated": "true" if truncated else "false",
    }


def _row_limit(settings: ExportSettings, limit: int | None) -> int:
    return max(1, min(limit or settings.export_max_rows, settings.export_max_rows))


async def _gather_reads(
    search: Backend[search_pb2_grpc.SearchServiceStub],
    query: search_pb2.PlateQuery,
    limit: int,
    page_size: int,
) -> tuple[list[search_pb2.StoredRead], bool]:
    """Page through the search service until `limit` reads or the last page; (reads, truncated)."""
    reads: list[search_pb2.StoredRead] = []
    page = search_pb2.PlateQuery()
    page.CopyFrom(query)
    while True:
        page.page_size = max(1, min(page_size, limit - len(reads)))
        response: search_pb2.SearchReadsResponse = await search.call("SearchReads", page)
        reads.extend(response.reads)
        if len(reads) >= limit:
            return reads[:limit], len(reads) > limit or bool(response.next_page_token)
        if not response.next_page_token or not response.reads:
            return reads, False
        page.page_token = response.next_page_token


# Routes ------------------------------------------------------------------------------------------


@router.get(
    "/reads",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The reads, newest first, as CSV or JSON (attachment)",
            "model": ReadsExportOut,
            "content": {CSV: {"schema": {"type": "string"}}},
        },
        **ERRORS,
    },
)
async def export_reads(
    request: Request,
    search: SearchDep,
    context: ExportContextDep,
    governance: GovernanceDep,
    settings: ExportSettingsDep,
    filters: Annotated[ReadFilters, Depends()],
    format: Annotated[Literal["csv", "json"], Query(description="csv or json")] = "csv",
    limit: LimitQuery = None,
) -> StreamingResponse:
    """The result set of a plate search (the same filters as `GET /api/v1/reads`, every page, up to
    the row limit) as a CSV or JSON attachment. Needs the export role, the purpose headers, and the
    approval a search would need for old reads; audited with the filters and the row count."""
    rows_limit = _row_limit(settings, limit)
    scoped = await plate_query(request, governance, context, filters, page_size=settings.export_page_size)
    found, truncated = await _gather_reads(search, scoped.query, rows_limit, settings.export_page_size)
    reads = [ReadOut.from_proto(read) for read in found]
    await audit_data_access(
        governance,
        context,
        kind="export",
        action="export reads",
        result_count=len(reads),
        details={
            **scoped.audit_details(),
            "format": format,
            "limit": rows_limit,
            "truncated": truncated,
            "fuzzy": filters.fuzzy,
            "directions": filters.direction,
            "vehicle_colors": filters.vehicle_color,
            "near": filters.near,
            "within": filters.within,
            "min_confidence": filters.min_confidence,
        },
        agencies_returned={read.agency_id for read in reads},
    )
    now = governance.clock()
    headers = _export_headers(_filename("reads", context, now, format), len(reads), truncated)
    if format == "csv":
        return StreamingResponse(_csv_body(reads), media_type=CSV, headers=headers)
    head = {
        "exported_at": now.isoformat(),
        "purpose_code": context.purpose_code,
        "case_number": context.case_number,
        "agency_ids": scoped.agencies,
        "rows": len(reads),
        "truncated": truncated,
    }
    return StreamingResponse(_json_body(head, "reads", reads), media_type=JSON, headers=headers)


@router.get(
    "/timeline",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Every sighting of the plate, oldest first, as CSV, JSON or GeoJSON",
            "model": TimelineExportOut,
            "content": {CSV: {"schema": {"type": "string"}}, GEOJSON: {"schema": {"type": "object"}}},
        },
        **ERRORS,
    },
)
async def export_timeline(
    request: Request,
    search: SearchDep,
    context: ExportContextDep,
    governance: GovernanceDep,
    settings: ExportSettingsDep,
    plate: Annotated[str, Query(min_length=1, max_length=32)],
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    format: Annotated[Literal["csv", "json", "geojson"], Query()] = "csv",
    limit: LimitQuery = None,
) -> StreamingResponse:
    """A vehicle timeline (as `GET /api/v1/analytics/timeline`) as an attachment; audited."""
    if from_ is not None and to is not None and from_ > to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must not be after 'to'")
    rows_limit = _row_limit(settings, limit)
    start = await data_age_bound(request, governance, context, from_)
    message = search_pb2.TimelineRequest(
        agency_ids=context.agency_ids, plate=plate.strip().upper(), limit=rows_limit
    )
    if start is not None:
        getattr(message, "from").CopyFrom(datetime_to_timestamp(start))
    if to is not None:
        message.to.CopyFrom(datetime_to_timestamp(to))
    response: search_pb2.TimelineResponse = await search.call("VehicleTimeline", message)
    sightings = [ReadOut.from_proto(read) for read in response.sightings][:rows_limit]
    truncated = response.truncated or len(response.sightings) > rows_limit
    await audit_data_access(
        governance,
        context,
        kind="export",
        action="export vehicle timeline",
        result_count=len(sightings),
        details={
            "plate": message.plate,
            "queried_agency_ids": list(context.agency_ids),
            "from": start.isoformat() if start else None,
            "to": to.isoformat() if to else None,
            "format": format,
            "limit": rows_limit,
            "truncated": truncated,
        },
        agencies_returned={read.agency_id for read in sightings},
    )
    now = governance.clock()
    headers = _export_headers(
        _filename(f"timeline-{message.plate}", context, now, format), len(sightings), truncated
    )
    if format == "csv":
        return StreamingResponse(_csv_body(sightings), media_type=CSV, headers=headers)
    if format == "geojson":
        body = json.dumps(timeline_geojson(message.plate, sightings)).encode()
        return StreamingResponse(iter([body]), media_type=GEOJSON, headers=headers)
    head = {
        "plate": message.plate,
        "truncated": truncated,
        "exported_at": now.isoformat(),
        "purpose_code": context.purpose_code,
        "case_number": context.case_number,
    }
    return StreamingResponse(_json_body(head, "sightings", sightings), media_type=JSON, headers=headers)


@router.get(
    "/reads/{read_id}/evidence.zip",
    response_class=Response,
    responses={
        200: {"content": {ZIP: {}}, "description": "Zip: read.json, crop.jpg, frame.jpg, manifest.json"},
        **ERRORS,
    },
)
async def export_evidence(
    request: Request,
    search: SearchDep,
    context: ExportContextDep,
    governance: GovernanceDep,
    settings: ExportSettingsDep,
    read_id: str,
    plate: Annotated[
        str, Query(min_length=1, max_length=32, description="The read's plate (as the search showed it).")
    ],
) -> Response:
    """The evidence package of one read: its JSON, its crop and frame images and a manifest (who,
    when, purpose, case, SHA-256 of every file). The read's agency must share both reads and images
    with the caller for the purpose. Audited (kind "export")."""
    principal = context.principal
    if not principal.may("reads.image"):
        raise await refuse_rule(
            governance,
            "role.reads.image",
            f"roles {sorted(principal.roles)} do not allow reads.image (an evidence package holds images)",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=_route(request),
        )
    start = await data_age_bound(request, governance, context, None)
    query = search_pb2.PlateQuery(plate=plate.strip().upper(), agency_ids=context.agency_ids)
    if start is not None:
        getattr(query, "from").CopyFrom(datetime_to_timestamp(start))
    found, _ = await _gather_reads(search, query, settings.export_max_rows, settings.export_page_size)
    stored = next((read for read in found if read.read_id == read_id), None)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"read {read_id} with plate {query.plate} not found")
    image_agencies = {
        principal.agency_id,
        *(
            a.owner
            for a in governance.policy.agreements_for(
                principal.agency_id, context.purpose_code, "images", governance.clock()
            )
        ),
    }
    if stored.agency_id not in image_agencies:
        raise await refuse_rule(
            governance,
            "agency.not_shared",
            f"agency {stored.agency_id} does not share images with {principal.agency_id} "
            f"for purpose {context.purpose_code!r}",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=_route(request),
        )
    read = ReadOut.from_proto(stored)
    files: dict[str, bytes] = {"read.json": read.model_dump_json(indent=2).encode()}
    for kind in ("crop", "frame"):
        image = await _image(search, read_id, kind, sorted(image_agencies))
        if image:
            files[f"{kind}.jpg"] = image
    now = governance.clock()
    manifest = {
        "read_id": read_id,
        "read_agency_id": read.agency_id,
        "exported_at": now.isoformat(),
        "exported_by": principal.subject,
        "exporting_agency_id": principal.agency_id,
        "purpose_code": context.purpose_code,
        "case_number": context.case_number,
        "purpose_note": context.purpose_note,
        "agreement_ids": list(context.agreement_ids),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    await audit_data_access(
        governance,
        context,
        kind="export",
        action="export evidence package",
        result_count=1,
        details={
            "format": "zip",
            "read_id": read_id,
            "plate": query.plate,
            "read_agency_id": read.agency_id,
            "files": manifest["files"],
        },
        agencies_returned={read.agency_id},
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    filename = _filename(f"evidence-{read_id}", context, now, "zip")
    return Response(buffer.getvalue(), media_type=ZIP, headers=_export_headers(filename, 1, False))


async def _image(
    search: Backend[search_pb2_grpc.SearchServiceStub], read_id: str, kind: str, agencies: list[str]
) -> bytes:
    """The read's `kind` image, or b"" when it has none."""
    try:
        response: search_pb2.GetReadImageResponse = await search.call(
            "GetReadImage", search_pb2.GetReadImageRequest(read_id=read_id, kind=kind, agency_ids=agencies)
        )
    except BackendError as exc:
        if exc.http_status == status.HTTP_404_NOT_FOUND:
            return b""
        raise
    return bytes(response.jpeg)
