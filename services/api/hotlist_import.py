"""`POST /api/v1/hotlists/{hotlist_id}/import`: import a CSV extract into a hotlist.

The CSV is the raw request body (`Content-Type: text/csv`; the format is documented in
services/hotlist/csv_import.py). The call goes to the hotlist service's `ImportCsv` through the
app's `Backends` (`request.app.state.backends`), like every other hotlist route, so a failing
backend becomes the same HTTP errors (404 unknown list, 503 unavailable, ...).

- 200: the import was applied; the body is the summary (with allow_partial it also lists the rows
  that were skipped).
- 422: nothing was applied; the body lists every row error (line, column, message).
- 413: the body is larger than the hotlist service accepts.

Include with `app.include_router(router)`; this module does not import services.api.app, so it can
be imported from there.
"""

from __future__ import annotations

from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.api.backends import Backend, BackendError, Backends
from services.api.models import API_PREFIX, ErrorOut
from services.common.pb.platewatch.v1 import hotlist_pb2, hotlist_pb2_grpc
from services.hotlist.csv_import import MAX_CSV_BYTES

# Publishing and applying a large extract takes longer than the API's usual gRPC deadline.
IMPORT_TIMEOUT_S = 120.0
CSV_MEDIA_TYPE = "text/csv"

router = APIRouter(prefix=API_PREFIX, tags=["hotlists"])


def get_hotlist_backend(request: Request) -> Backend[hotlist_pb2_grpc.HotlistServiceStub]:
    """The app's hotlist backend (as services.api.app's `get_hotlist`); 503 while starting."""
    backends: Backends | None = request.app.state.backends
    if backends is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "API is starting: no gRPC connections yet")
    return backends.hotlist


HotlistBackendDep = Annotated[Backend[hotlist_pb2_grpc.HotlistServiceStub], Depends(get_hotlist_backend)]


class RowErrorOut(BaseModel):
    line: int = Field(description="1-based line; the header is line 1, 0 = the file as a whole.")
    column: str = Field(description="Column as named in the header; empty for the whole row or file.")
    message: str


class ImportOut(BaseModel):
    applied: bool = Field(description="True when the changes were made and the list marked refreshed.")
    rows: int = Field(description="Data rows read, good and bad.")
    imported: int = Field(description="New entries.")
    updated: int = Field(description="Existing entries (same record id) that changed.")
    unchanged: int = Field(description="Existing entries that were already the same.")
    removed: int = Field(description="Entries removed because `replace` was set.")
    error_count: int = Field(description="All errors; `errors` holds at most the first 10 000.")
    errors: list[RowErrorOut]

    @classmethod
    def from_proto(cls, response: hotlist_pb2.ImportCsvResponse) -> ImportOut:
        return cls(
            applied=response.applied,
            rows=response.rows,
            imported=response.imported,
            updated=response.updated,
            unchanged=response.unchanged,
            removed=response.removed,
            error_count=response.error_count,
            errors=[RowErrorOut(line=e.line, column=e.column, message=e.message) for e in response.errors],
        )


class ImportRefusedOut(ImportOut):
    detail: str


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Applied."},
    404: {"model": ErrorOut, "description": "No such hotlist"},
    413: {"model": ErrorOut, "description": "The file is too large"},
    422: {"model": ImportRefusedOut, "description": "Nothing applied: the file or some rows are bad"},
    503: {"model": ErrorOut, "description": "The hotlist service is unavailable"},
}
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The CSV file as the raw body, UTF-8. Header row required; columns (any order, "
            "case-insensitive): plate, reason (required); state or region, priority (1-9), expires "
            "(ISO date or date-time), notes, vehicle, nic or record_id. Reasons: V, LP, W, MP, AMBER, "
            "SILVER, CUSTOM (or their long names). Full description: services/hotlist/csv_import.py."
        ),
        "content": {
            CSV_MEDIA_TYPE: {
                "schema": {"type": "string"},
                "example": "plate,state,reason,nic\nABC123,CA,V,V123456789\n",
            }
        },
    }
}


@router.post(
    "/hotlists/{hotlist_id}/import",
    response_model=ImportOut,
    responses=RESPONSES,
    openapi_extra=REQUEST_BODY,
)
async def import_csv(
    request: Request,
    hotlist: HotlistBackendDep,
    hotlist_id: str,
    allow_partial: Annotated[
        bool, Query(description="Apply the good rows even when some rows are bad (they are still listed).")
    ] = False,
    replace: Annotated[
        bool, Query(description="The file is the full extract: remove the list's entries it does not hold.")
    ] = False,
    filename: Annotated[
        str, Query(max_length=200, description="Recorded as the entries' source, 'csv:<filename>'.")
    ] = "upload.csv",
) -> ImportOut | JSONResponse:
    """Import a CSV extract into the hotlist: all or nothing unless `allow_partial`. Re-importing the
    same extract updates entries rather than duplicating them; an applied import marks the list
    refreshed (what keeps its alerts from being STALE)."""
    data = await _read_body(request, MAX_CSV_BYTES)
    grpc_request = hotlist_pb2.ImportCsvRequest(
        hotlist_id=hotlist_id, filename=filename, csv=data, allow_partial=allow_partial, replace=replace
    )
    try:
        response: hotlist_pb2.ImportCsvResponse = await hotlist.stub.ImportCsv(
            grpc_request, timeout=IMPORT_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, exc.details() or "file too large") from exc
        details = exc.details() or ""
        raise BackendError(hotlist.name, hotlist.target, "ImportCsv", exc.code(), details) from exc
    summary = ImportOut.from_proto(response)
    if response.applied:
        return summary
    refused = ImportRefusedOut(
        detail=f"nothing imported: {response.error_count} errors", **summary.model_dump()
    )
    return JSONResponse(refused.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body; 413 as soon as it exceeds `limit` bytes (without reading the rest)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file may be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
