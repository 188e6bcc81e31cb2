"""The FastAPI application: `/api/v1` over the search and hotlist gRPC services plus live alerts.

The API holds no data of its own except the in-memory alert buffer; it never opens ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from services.api.alert_workflow import InvalidAction, TransitionRefused, apply_action, is_update
from services.api.analytics_routes import router as analytics_router
from services.api.audit_routes import router as audit_router
from services.api.auth_routes import approvals_router
from services.api.auth_routes import router as auth_router
from services.api.backends import Backend, BackendError, Backends
from services.api.broker import AlertBroker
from services.api.console_routes import install_console
from services.api.docs_routes import install_offline_docs
from services.api.export_routes import router as export_router
from services.api.hotlist_import import router as hotlist_import_router
from services.api.models import (
    API_PREFIX,
    AlertActionIn,
    AlertOut,
    AlertsOut,
    CountOut,
    EntriesIn,
    EntriesOut,
    EntryOut,
    ErrorOut,
    HotlistIn,
    HotlistOut,
    HotlistsOut,
    ReadinessOut,
    ReadOut,
    SearchReadsOut,
)
from services.api.publisher import AlertPublisher, PublishError
from services.api.read_filters import ReadFilters, data_age_bound, plate_query
from services.api.security import (
    AuditSink,
    AuditUnavailable,
    Governance,
    GovernanceDep,
    ImageContextDep,
    Principal,
    RuleRefused,
    SearchContext,
    SearchContextDep,
    audit_action,
    audit_data_access,
    refuse_policy,
    refuse_rule,
    require,
)
from services.api.settings import ApiSettings
from services.audit.client import AuditEvent
from services.common.metrics import ALERT_ACTIONS
from services.common.pb.platewatch.v1 import (
    alerts_pb2,
    hotlist_pb2,
    hotlist_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from services.governance.policy import PolicyRefusal

log = logging.getLogger(__name__)

JPEG = "image/jpeg"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not authenticated"},
    403: {"model": ErrorOut, "description": "Refused by a role, agency or policy rule (named in the body)"},
    404: {"model": ErrorOut, "description": "Not found"},
    422: {"description": "Invalid parameters"},
    503: {"model": ErrorOut, "description": "A backend service is unavailable"},
}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {JPEG: {}}, "description": "JPEG image"},
    **ERRORS,
}


# Dependencies -----------------------------------------------------------------------------------


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_backends(request: Request) -> Backends:
    backends: Backends | None = request.app.state.backends
    if backends is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "API is starting: no gRPC connections yet")
    return backends


def get_search(
    backends: Annotated[Backends, Depends(get_backends)],
) -> Backend[search_pb2_grpc.SearchServiceStub]:
    return backends.search


def get_hotlist(
    backends: Annotated[Backends, Depends(get_backends)],
) -> Backend[hotlist_pb2_grpc.HotlistServiceStub]:
    return backends.hotlist


def get_broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker


def get_publisher(request: Request) -> AlertPublisher:
    publisher: AlertPublisher | None = request.app.state.publisher
    if publisher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "API is starting: no Kafka producer yet")
    return publisher


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
SearchDep = Annotated[Backend[search_pb2_grpc.SearchServiceStub], Depends(get_search)]
HotlistDep = Annotated[Backend[hotlist_pb2_grpc.HotlistServiceStub], Depends(get_hotlist)]
BrokerDep = Annotated[AlertBroker, Depends(get_broker)]
PublisherDep = Annotated[AlertPublisher, Depends(get_publisher)]


StatsReader = Annotated[Principal, Depends(require("stats.read"))]
HotlistReader = Annotated[Principal, Depends(require("hotlists.read"))]
HotlistWriter = Annotated[Principal, Depends(require("hotlists.write"))]
AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
AlertActor = Annotated[Principal, Depends(require("alerts.act"))]


def _with_agencies(message: Any, agency_ids: tuple[str, ...] | list[str]) -> Any:
    """Fill the request's `agency_ids` (contract 2) where the message has that field."""
    if "agency_ids" in message.DESCRIPTOR.fields_by_name:
        del message.agency_ids[:]
        message.agency_ids.extend(agency_ids)
    return message


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


# Reads ------------------------------------------------------------------------------------------

reads_router = APIRouter(prefix=API_PREFIX, tags=["reads"])


@reads_router.get("/reads", response_model=SearchReadsOut, responses=ERRORS)
async def search_reads(
    request: Request,
    search: SearchDep,
    context: SearchContextDep,
    governance: GovernanceDep,
    filters: Annotated[ReadFilters, Depends()],
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[str, Query(description="next_page_token of the previous page.")] = "",
) -> SearchReadsOut:
    """Stored reads of a plate, newest first as the search service orders them. Patterns are passed
    to the search service unchanged (upper-cased).

    Needs `X-Purpose-Code` and `X-Case-Number`; searches only the caller's agency and agencies sharing
    reads with it for that purpose. Reads older than the policy's data-age tier need an approval
    (`X-Approval-Id`); without one, a search with no `from` is limited to the tier."""
    scoped = await plate_query(
        request, governance, context, filters, page_size=page_size, page_token=page_token
    )
    response: search_pb2.SearchReadsResponse = await search.call("SearchReads", scoped.query)
    await audit_data_access(
        governance,
        context,
        kind="search",
        action="search reads",
        result_count=len(response.reads),
        details={**scoped.audit_details(), "page_token": page_token},
        agencies_returned={read.agency_id for read in response.reads},
    )
    return SearchReadsOut(
        reads=[ReadOut.from_proto(read) for read in response.reads],
        next_page_token=response.next_page_token or None,
    )


# The analytics routes apply the same data-age rule (they import it from here).
_data_age_bound = data_age_bound


async def _read_image(
    request: Request,
    search: Backend[search_pb2_grpc.SearchServiceStub],
    governance: Governance,
    context: SearchContext,
    read_id: str,
    kind: str,
) -> Response:
    image_request = _with_agencies(
        search_pb2.GetReadImageRequest(read_id=read_id, kind=kind), context.agency_ids
    )
    response: search_pb2.GetReadImageResponse = await search.call("GetReadImage", image_request)
    if not response.jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"read {read_id} has no {kind} image")
    await audit_data_access(
        governance,
        context,
        kind="image_view",
        action=f"view {kind} image",
        result_count=1,
        details={"read_id": read_id, "image": kind},
    )
    # Evidence images never change, but they are personal data: private caches only.
    return Response(response.jpeg, media_type=JPEG, headers={"Cache-Control": "private, max-age=3600"})


@reads_router.get("/reads/{read_id}/crop.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def read_crop(
    request: Request, search: SearchDep, governance: GovernanceDep, context: ImageContextDep, read_id: str
) -> Response:
    """The plate crop of a stored read (needs the purpose headers, like a search)."""
    return await _read_image(request, search, governance, context, read_id, "crop")


@reads_router.get("/reads/{read_id}/frame.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def read_frame(
    request: Request, search: SearchDep, governance: GovernanceDep, context: ImageContextDep, read_id: str
) -> Response:
    """The frame thumbnail of a stored read (needs the purpose headers, like a search)."""
    return await _read_image(request, search, governance, context, read_id, "frame")


@reads_router.get("/stats/count", response_model=CountOut, responses=ERRORS)
async def count_reads(
    request: Request,
    search: SearchDep,
    governance: GovernanceDep,
    principal: StatsReader,
    agency_id: Annotated[list[str] | None, Query(description="Repeat to count several agencies.")] = None,
) -> CountOut:
    """How many reads are stored (rows, and distinct read ids) for the caller's agency and agencies
    sharing statistics with it. Aggregate only: the one data endpoint the oversight role may use."""
    allowed = [
        principal.agency_id,
        *governance.policy.owners_sharing(principal.agency_id, "statistics", governance.clock()),
    ]
    outside = sorted(set(agency_id or []) - set(allowed))
    if outside:
        raise await refuse_rule(
            governance,
            "agency.not_shared",
            f"agencies {outside} do not share statistics with {principal.agency_id}",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=_route(request),
        )
    response: search_pb2.CountReadsResponse = await search.call(
        "CountReads", search_pb2.CountReadsRequest(agency_ids=sorted(set(agency_id or allowed)))
    )
    return CountOut(reads=response.reads, distinct_read_ids=response.distinct_read_ids)


# Hotlists ---------------------------------------------------------------------------------------

hotlists_router = APIRouter(prefix=API_PREFIX, tags=["hotlists"])


def _hotlist_agencies(governance: Governance, principal: Principal) -> list[str]:
    """Agencies whose hotlists the caller may read: its own and those sharing hotlists with it."""
    shared = governance.policy.owners_sharing(principal.agency_id, "hotlists", governance.clock())
    return [principal.agency_id, *[a for a in shared if a != principal.agency_id]]


async def _find_hotlist(
    hotlist: Backend[hotlist_pb2_grpc.HotlistServiceStub], hotlist_id: str, agencies: list[str]
) -> hotlist_pb2.Hotlist:
    """The hotlist among those of `agencies`; 404 otherwise (another agency's list does not exist
    for the caller)."""
    for agency in agencies:
        response: hotlist_pb2.ListHotlistsResponse = await hotlist.call(
            "ListHotlists", hotlist_pb2.ListHotlistsRequest(agency_id=agency)
        )
        for found in response.hotlists:
            if found.hotlist_id == hotlist_id and found.agency_id == agency:
                return found
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"hotlist {hotlist_id} not found")


async def _check_sources(
    request: Request, governance: Governance, principal: Principal, *labels: str
) -> None:
    """403 naming the rule when a list name / entry source matches a forbidden hotlist source."""
    try:
        governance.policy.check_hotlist_source(principal.agency_id, *[label for label in labels if label])
    except PolicyRefusal as exc:
        raise await refuse_policy(governance, exc, principal=principal, action=_route(request)) from exc


async def _audit_hotlist_change(
    governance: Governance, principal: Principal, action: str, hotlist_id: str, **details: Any
) -> None:
    await audit_action(
        governance,
        AuditEvent(
            kind="hotlist_change",
            actor=principal.subject,
            agency_id=principal.agency_id,
            action=action,
            result_count=int(details.pop("count", 1)),
            details={"hotlist_id": hotlist_id, **details},
        ),
    )


@hotlists_router.get("/hotlists", response_model=HotlistsOut, responses=ERRORS)
async def list_hotlists(
    request: Request,
    hotlist: HotlistDep,
    governance: GovernanceDep,
    principal: HotlistReader,
    agency_id: str = "",
) -> HotlistsOut:
    """Hotlists of the caller's agency and of agencies sharing hotlists with it (or of `agency_id`,
    one of those)."""
    allowed = _hotlist_agencies(governance, principal)
    if agency_id and agency_id not in allowed:
        raise await refuse_rule(
            governance,
            "agency.not_shared",
            f"agency {agency_id!r} does not share hotlists with {principal.agency_id}",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=_route(request),
        )
    hotlists: list[HotlistOut] = []
    for agency in [agency_id] if agency_id else allowed:
        response: hotlist_pb2.ListHotlistsResponse = await hotlist.call(
            "ListHotlists", hotlist_pb2.ListHotlistsRequest(agency_id=agency)
        )
        hotlists += [HotlistOut.from_proto(h) for h in response.hotlists if h.agency_id == agency]
    return HotlistsOut(hotlists=hotlists)


@hotlists_router.post(
    "/hotlists", response_model=HotlistOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
async def create_hotlist(
    request: Request,
    hotlist: HotlistDep,
    governance: GovernanceDep,
    principal: HotlistWriter,
    body: HotlistIn,
) -> HotlistOut:
    """Create a hotlist of the caller's agency (`agency_id` empty or the caller's own). The policy's
    hotlist source rules apply to its name."""
    if body.agency_id and body.agency_id != principal.agency_id:
        raise await refuse_rule(
            governance,
            "agency.write_own",
            f"hotlists can only be created for your own agency ({principal.agency_id})",
            status.HTTP_403_FORBIDDEN,
            principal=principal,
            action=_route(request),
        )
    await _check_sources(request, governance, principal, body.name)
    body = body.model_copy(update={"agency_id": principal.agency_id})
    created: hotlist_pb2.Hotlist = await hotlist.call(
        "CreateHotlist", hotlist_pb2.CreateHotlistRequest(hotlist=body.to_proto())
    )
    await _audit_hotlist_change(
        governance, principal, "create hotlist", created.hotlist_id, name=created.name
    )
    return HotlistOut.from_proto(created)


@hotlists_router.get("/hotlists/{hotlist_id}/entries", response_model=EntriesOut, responses=ERRORS)
async def list_entries(
    hotlist: HotlistDep, governance: GovernanceDep, principal: HotlistReader, hotlist_id: str
) -> EntriesOut:
    await _find_hotlist(hotlist, hotlist_id, _hotlist_agencies(governance, principal))
    response: hotlist_pb2.ListEntriesResponse = await hotlist.call(
        "ListEntries", hotlist_pb2.ListEntriesRequest(hotlist_id=hotlist_id)
    )
    return EntriesOut(entries=[EntryOut.from_proto(e) for e in response.entries])


@hotlists_router.post(
    "/hotlists/{hotlist_id}/entries",
    response_model=EntriesOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
async def add_entries(
    request: Request,
    hotlist: HotlistDep,
    governance: GovernanceDep,
    principal: HotlistWriter,
    hotlist_id: str,
    body: EntriesIn,
) -> EntriesOut:
    """Add entries to a hotlist of the caller's agency; the reply holds them with their assigned
    entry ids. Entries whose source is a forbidden hotlist source are refused (nothing is added)."""
    target = await _find_hotlist(hotlist, hotlist_id, [principal.agency_id])
    await _check_sources(
        request, governance, principal, target.name, *[entry.source for entry in body.entries]
    )
    entries = [entry.model_copy(update={"agency_id": principal.agency_id}) for entry in body.entries]
    grpc_request = hotlist_pb2.AddEntriesRequest(
        hotlist_id=hotlist_id, entries=[entry.to_proto(hotlist_id) for entry in entries]
    )
    response: hotlist_pb2.AddEntriesResponse = await hotlist.call("AddEntries", grpc_request)
    await _audit_hotlist_change(
        governance,
        principal,
        "add entries",
        hotlist_id,
        count=len(response.entries),
        entry_ids=[e.entry_id for e in response.entries],
    )
    return EntriesOut(entries=[EntryOut.from_proto(e) for e in response.entries])


@hotlists_router.delete(
    "/hotlists/{hotlist_id}/entries/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=ERRORS,
)
async def remove_entry(
    hotlist: HotlistDep, governance: GovernanceDep, principal: HotlistWriter, hotlist_id: str, entry_id: str
) -> Response:
    await _find_hotlist(hotlist, hotlist_id, [principal.agency_id])
    response: hotlist_pb2.RemoveEntryResponse = await hotlist.call(
        "RemoveEntry", hotlist_pb2.RemoveEntryRequest(hotlist_id=hotlist_id, entry_id=entry_id)
    )
    if not response.removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"entry {entry_id} not in hotlist {hotlist_id}")
    await _audit_hotlist_change(governance, principal, "remove entry", hotlist_id, entry_id=entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def guard_hotlist_import(
    request: Request, governance: GovernanceDep, principal: HotlistWriter, hotlist_id: str
) -> Principal:
    """Router dependency of the CSV import: the list must be the caller's agency's, and neither the
    list, the file name nor a source column of the file may name a forbidden hotlist source. The
    body is read here (bounded) and cached on the request for the import route. Audited."""
    backends = get_backends(request)
    target = await _find_hotlist(backends.hotlist, hotlist_id, [principal.agency_id])
    filename = request.query_params.get("filename", "")
    body = await _read_limited_body(request)
    await _check_sources(request, governance, principal, target.name, filename, *_csv_sources(body))
    await _audit_hotlist_change(
        governance,
        principal,
        "import csv",
        hotlist_id,
        filename=filename,
        bytes=len(body),
        replace=request.query_params.get("replace", "false"),
    )
    return principal


async def _read_limited_body(request: Request) -> bytes:
    from services.hotlist.csv_import import MAX_CSV_BYTES

    declared = request.headers.get("content-length")
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the file may be at most {MAX_CSV_BYTES} bytes"
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_CSV_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette's Request.stream() replays a cached body, so the import route reads it again.
    request._body = body
    return body


def _csv_sources(body: bytes) -> list[str]:
    """Values of source-like columns (source, list, list_type, file) of a CSV extract."""
    import csv
    import io

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return []
    wanted = {"source", "list", "list_type", "file", "source_file"}
    columns = [i for i, name in enumerate(header) if name.strip().lower().replace(" ", "_") in wanted]
    if not columns:
        return []
    values: set[str] = set()
    try:
        for row in reader:
            values.update(row[i] for i in columns if i < len(row) and row[i])
    except csv.Error:
        return sorted(values)
    return sorted(values)


# Alerts -----------------------------------------------------------------------------------------

alerts_router = APIRouter(prefix=API_PREFIX, tags=["alerts"])


def _alert_agencies(governance: Governance, principal: Principal) -> frozenset[str]:
    """Agencies whose alerts the caller sees: its own (the agency of the read's camera) and those
    sharing alerts with it under an active agreement."""
    shared = governance.policy.owners_sharing(principal.agency_id, "alerts", governance.clock())
    return frozenset([principal.agency_id, *shared])


def _alert_visible(alert: alerts_pb2.Alert, agencies: frozenset[str]) -> bool:
    return alert.read.camera.agency_id in agencies


@alerts_router.get("/alerts", response_model=AlertsOut, responses=ERRORS)
async def recent_alerts(
    broker: BrokerDep,
    governance: GovernanceDep,
    principal: AlertReader,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AlertsOut:
    """Alerts seen since this API process started (plus the preloaded history), newest first, one per
    alert id; only alerts on reads of the caller's agency or of agencies sharing alerts with it."""
    agencies = _alert_agencies(governance, principal)
    visible = [alert for alert in broker.recent(10_000) if _alert_visible(alert, agencies)]
    return AlertsOut(alerts=[AlertOut.from_proto(alert) for alert in visible[:limit]])


def _alert_event(alert: alerts_pb2.Alert) -> ServerSentEvent:
    return ServerSentEvent(
        data=AlertOut.from_proto(alert).model_dump_json(),
        event="alert_update" if is_update(alert) else "alert",
        id=alert.alert_id,
    )


@alerts_router.get(
    "/alerts/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}, **ERRORS},
)
async def alert_stream(
    broker: BrokerDep,
    settings: SettingsDep,
    governance: GovernanceDep,
    principal: AlertReader,
    last_event_id: Annotated[str | None, Header(description="Resume after this alert id.")] = None,
) -> EventSourceResponse:
    """Server-Sent Events: one `alert` event (JSON as in GET /alerts, id = alert_id) per new alert,
    one `alert_update` event (same JSON) per workflow step on an alert (confirmed, dispatched,
    dismissed, outcome recorded), and a comment line every ~15 s as heartbeat. A client that falls
    behind loses its oldest undelivered alerts rather than slowing anyone else down. Only alerts the
    caller may see (as GET /alerts). Browsers' EventSource cannot send headers: the token may be
    passed as `?access_token=` on this route only."""
    agencies = _alert_agencies(governance, principal)
    # Subscribe before the response starts so nothing published meanwhile is missed.
    subscription = broker.subscribe()
    backlog = broker.since(last_event_id) if last_event_id else []

    async def events() -> AsyncIterator[ServerSentEvent]:
        with subscription:
            for alert in backlog:
                if _alert_visible(alert, agencies):
                    yield _alert_event(alert)
            async for alert in subscription:
                if _alert_visible(alert, agencies):
                    yield _alert_event(alert)

    return EventSourceResponse(
        events(),
        ping=settings.sse_heartbeat_seconds,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(subscription.close),
    )


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorOut, "description": "Not allowed in the alert's current status"},
    503: {"model": ErrorOut, "description": "Kafka or the search service is unavailable"},
}


async def _current_alert(request: Request, broker: AlertBroker, alert_id: str) -> alerts_pb2.Alert:
    """The latest known state: the buffer, else the stored alert from the search service."""
    alert = broker.get(alert_id)
    if alert is not None:
        return alert
    backends = get_backends(request)
    stored: alerts_pb2.Alert = await backends.search.call(
        "GetAlert", search_pb2.GetAlertRequest(alert_id=alert_id)
    )
    return stored


@alerts_router.post("/alerts/{alert_id}/actions", response_model=AlertOut, responses=ACTION_RESPONSES)
async def alert_action(
    request: Request,
    broker: BrokerDep,
    publisher: PublisherDep,
    governance: GovernanceDep,
    principal: AlertActor,
    alert_id: str,
    body: AlertActionIn,
) -> AlertOut:
    """Apply one operator step to an alert and return its new state.

    `confirm_visual` (UNCONFIRMED -> CONFIRMED_VISUAL), `confirm_dispatch` (only from CONFIRMED_VISUAL:
    nothing is actionable without a recorded visual confirmation), `dismiss_misread` (from UNCONFIRMED
    or CONFIRMED_VISUAL), `record_outcome` with `outcome` stop|arrest|none (once, after a
    confirmation). Refused steps answer 409 naming the status and the allowed actions. The new version
    is acknowledged by Kafka (ALERTS topic) before the reply; live streams get an `alert_update`.
    Only alerts on reads of the caller's own agency; the step is recorded under the authenticated
    caller (`actor` in the body is kept for compatibility and ignored), and audited."""
    locks: dict[str, tuple[asyncio.Lock, int]] = request.app.state.alert_locks
    lock, users = locks.get(alert_id, (asyncio.Lock(), 0))
    locks[alert_id] = (lock, users + 1)
    try:
        # One step at a time per alert in this process, so two operators cannot both confirm.
        async with lock:
            current = await _current_alert(request, broker, alert_id)
            if current.read.camera.agency_id != principal.agency_id:
                # Another agency's alert does not exist for the caller.
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
            try:
                updated = apply_action(
                    current,
                    body.action,
                    principal.subject,
                    datetime.now(UTC),
                    outcome=body.outcome,
                    note=body.note,
                )
            except InvalidAction as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
            except TransitionRefused as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
            try:
                await publisher.publish(updated)
            except PublishError as exc:
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
            # Read-your-writes: the consumer's copy of this version is then a duplicate.
            broker.publish(updated)
            ALERT_ACTIONS.labels(str(body.action), str(body.outcome or "")).inc()
    finally:
        lock, users = locks[alert_id]
        if users <= 1:
            del locks[alert_id]
        else:
            locks[alert_id] = (lock, users - 1)
    log.info(
        "alert workflow step",
        extra={
            "alert_id": alert_id,
            "action": str(body.action),
            "actor": principal.subject,
            "status": int(updated.status),
        },
    )
    await audit_action(
        governance,
        AuditEvent(
            kind="alert_action",
            actor=principal.subject,
            agency_id=principal.agency_id,
            action=str(body.action),
            details={
                "alert_id": alert_id,
                "status": alerts_pb2.AlertStatus.Name(updated.status),
                "outcome": body.outcome,
                "note": body.note,
            },
        ),
    )
    return AlertOut.from_proto(updated)


@alerts_router.get("/alerts/{alert_id}/crop.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def alert_crop(
    broker: BrokerDep, governance: GovernanceDep, context: ImageContextDep, alert_id: str
) -> Response:
    """The plate crop embedded in a buffered alert (an image view: needs the purpose headers). Another
    agency's crop needs an agreement sharing both its alerts and its images (for this purpose)."""
    alert = broker.get(alert_id)
    if (
        alert is None
        or not _alert_visible(alert, _alert_agencies(governance, context.principal))
        or alert.read.camera.agency_id not in context.agency_ids
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} is not in the recent-alert buffer")
    if not alert.read.crop_jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} has no crop image")
    await audit_data_access(
        governance,
        context,
        kind="image_view",
        action="view alert crop",
        result_count=1,
        details={"alert_id": alert_id, "read_id": alert.read.read_id},
    )
    return Response(alert.read.crop_jpeg, media_type=JPEG, headers={"Cache-Control": "private, max-age=3600"})


# Health and landing page ------------------------------------------------------------------------

system_router = APIRouter(tags=["system"])


@system_router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """Liveness: the process serves HTTP."""
    return {"alive": True}


@system_router.get("/readyz", response_model=ReadinessOut, responses={503: {"model": ReadinessOut}})
async def readyz(request: Request, backends: BackendsDep) -> JSONResponse:
    """Ready when both gRPC services report SERVING, the alert consumer has its partitions and the
    replicas' shared approvals and lockouts are replayed (`governance_state`)."""
    search_ok, hotlist_ok = await asyncio.gather(backends.search.healthy(), backends.hotlist.healthy())
    consumer_ready: Callable[[], bool] | None = request.app.state.alert_consumer_ready
    governance: Governance = request.app.state.governance
    checks = {
        "search": search_ok,
        "hotlist": hotlist_ok,
        "alert_consumer": bool(consumer_ready is not None and consumer_ready()),
        "governance_state": governance.state_ready(),
    }
    ready = all(checks.values())
    body = ReadinessOut(ready=ready, checks=checks).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)


@system_router.get("/", include_in_schema=False)
async def landing() -> RedirectResponse:
    """People start at the web console."""
    return RedirectResponse("/console/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


# Application ------------------------------------------------------------------------------------


async def _backend_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackendError)
    level = logging.WARNING if exc.http_status >= 500 else logging.INFO
    log.log(
        level,
        "backend call failed",
        extra={
            "backend": exc.backend,
            "method": exc.method,
            "grpc_code": exc.code.name,
            "path": request.url.path,
        },
    )
    return JSONResponse({"detail": exc.detail}, status_code=exc.http_status)


async def _rule_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RuleRefused)
    return JSONResponse(
        {"detail": exc.detail, "rule": exc.rule}, status_code=exc.status_code, headers=exc.headers
    )


async def _audit_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"audit log unavailable, request not served: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


PUBLIC_PATHS = ("/healthz", "/readyz", "/auth/dev/", "/console")


def _document_security(app: FastAPI) -> None:
    """Post-process the OpenAPI schema once: bearer / API-key security on every protected
    operation with its 401 and 403 answers, and 422 answers documented as either a validation error
    or a refusal ({"detail": str, "rule"?}) since policy rules refuse some requests with 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(
            {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        )
        error_ref = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if not path.startswith(PUBLIC_PATHS):
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
                    responses.setdefault("401", {"description": "Not authenticated"})
                    responses.setdefault("403", {"description": "Refused by a rule (named in the body)"})
                    for code in ("401", "403"):
                        responses[code]["content"] = {"application/json": {"schema": error_ref}}
                if "422" in responses:
                    content = responses["422"].setdefault("content", {}).setdefault("application/json", {})
                    options = [content["schema"]] if "schema" in content else []
                    content["schema"] = {"anyOf": [*options, error_ref]}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: ApiSettings,
    *,
    backends: Backends | None = None,
    broker: AlertBroker | None = None,
    alert_consumer_ready: Callable[[], bool] | None = None,
    publisher: AlertPublisher | None = None,
    governance: Governance | None = None,
    audit: AuditSink | None = None,
) -> FastAPI:
    """Build the API.

    `backends`: gRPC connections owned by the caller; when None the app opens them from `settings`
    at startup and closes them at shutdown (needs an ASGI server that runs the lifespan).
    `broker`: the alert buffer fed by the alert consumer (a fresh empty one when None).
    `alert_consumer_ready`: readiness of that consumer; /readyz is not ready without one.
    `publisher`: writes workflow steps to ALERTS; when None the app makes one from `settings` at
    startup (it connects on first use) and closes it at shutdown.
    `governance`: identity, policy and audit (services/api/security.py); when None it is built from
    `settings` (policy and identity files; an invalid one raises here, so the API does not start),
    recording audit events to `audit` or, when that is None too, to the AUDIT topic.
    """
    governance = governance or Governance.build(settings, audit=audit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Replays the replicas' shared approvals and lockouts: the API serves only once caught up.
        await governance.start_state()
        owned = None
        owned_publisher = None
        if app.state.backends is None:
            owned = app.state.backends = Backends.connect(settings)
        if app.state.publisher is None:
            owned_publisher = app.state.publisher = AlertPublisher(
                settings.kafka_bootstrap, settings.topic_prefix, settings.publish_timeout_seconds
            )
        try:
            yield
        finally:
            await governance.close()
            if owned_publisher is not None:
                app.state.publisher = None
                await owned_publisher.close()
            if owned is not None:
                app.state.backends = None
                await owned.close()

    app = FastAPI(
        title="platewatch API",
        version="1",
        summary="Plate search, hotlists and live hotlist alerts.",
        lifespan=lifespan,
        # /docs is served from vendored assets (install_offline_docs); ReDoc would load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.backends = backends
    app.state.broker = (
        broker if broker is not None else AlertBroker(settings.alert_buffer_size, settings.sse_queue_size)
    )
    app.state.alert_consumer_ready = alert_consumer_ready
    app.state.publisher = publisher
    app.state.alert_locks = {}
    app.state.governance = governance
    app.add_exception_handler(BackendError, _backend_error)
    app.add_exception_handler(RuleRefused, _rule_refused)
    app.add_exception_handler(AuditUnavailable, _audit_unavailable)
    for router in (reads_router, hotlists_router, alerts_router, system_router, approvals_router):
        app.include_router(router)
    app.include_router(analytics_router)
    app.include_router(export_router)
    app.include_router(hotlist_import_router, dependencies=[Depends(guard_hotlist_import)])
    app.include_router(auth_router, include_in_schema=True)
    app.include_router(audit_router)
    _document_security(app)
    install_console(app)
    install_offline_docs(app)
    return app
