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
from fastapi.responses import HTMLResponse, JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from services.api.alert_workflow import InvalidAction, TransitionRefused, apply_action, is_update
from services.api.backends import Backend, BackendError, Backends
from services.api.broker import AlertBroker
from services.api.console_routes import install_console
from services.api.hotlist_import import router as hotlist_import_router
from services.api.landing import LANDING_HTML
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
    datetime_to_timestamp,
)
from services.api.publisher import AlertPublisher, PublishError
from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import (
    alerts_pb2,
    hotlist_pb2,
    hotlist_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

log = logging.getLogger(__name__)

JPEG = "image/jpeg"
ERRORS: dict[int | str, dict[str, Any]] = {
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


# Reads ------------------------------------------------------------------------------------------

reads_router = APIRouter(prefix=API_PREFIX, tags=["reads"])


@reads_router.get("/reads", response_model=SearchReadsOut, responses=ERRORS)
async def search_reads(
    search: SearchDep,
    plate: Annotated[
        str,
        Query(
            min_length=1,
            max_length=32,
            description="Exact plate, or a pattern with '?' (one character) and '*' (any run).",
        ),
    ],
    camera_id: Annotated[list[str] | None, Query(description="Repeat to match any of several.")] = None,
    agency_id: Annotated[list[str] | None, Query(description="Repeat to match any of several.")] = None,
    from_: Annotated[
        datetime | None, Query(alias="from", description="Captured at or after (ISO 8601).")
    ] = None,
    to: Annotated[datetime | None, Query(description="Captured before (ISO 8601).")] = None,
    min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[str, Query(description="next_page_token of the previous page.")] = "",
) -> SearchReadsOut:
    """Stored reads of a plate, newest first as the search service orders them. Patterns are passed
    to the search service unchanged (upper-cased)."""
    if from_ is not None and to is not None and from_ > to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must not be after 'to'")
    query = search_pb2.PlateQuery(
        plate=plate.strip().upper(),
        camera_ids=camera_id or [],
        agency_ids=agency_id or [],
        min_confidence=min_confidence,
        page_size=page_size,
        page_token=page_token,
    )
    if from_ is not None:
        # `from` is a Python keyword, hence getattr.
        getattr(query, "from").CopyFrom(datetime_to_timestamp(from_))
    if to is not None:
        query.to.CopyFrom(datetime_to_timestamp(to))
    response: search_pb2.SearchReadsResponse = await search.call("SearchReads", query)
    return SearchReadsOut(
        reads=[ReadOut.from_proto(read) for read in response.reads],
        next_page_token=response.next_page_token or None,
    )


async def _read_image(
    search: Backend[search_pb2_grpc.SearchServiceStub], read_id: str, kind: str
) -> Response:
    response: search_pb2.GetReadImageResponse = await search.call(
        "GetReadImage", search_pb2.GetReadImageRequest(read_id=read_id, kind=kind)
    )
    if not response.jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"read {read_id} has no {kind} image")
    # Evidence images never change, but they are personal data: private caches only.
    return Response(response.jpeg, media_type=JPEG, headers={"Cache-Control": "private, max-age=3600"})


@reads_router.get("/reads/{read_id}/crop.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def read_crop(search: SearchDep, read_id: str) -> Response:
    """The plate crop of a stored read."""
    return await _read_image(search, read_id, "crop")


@reads_router.get("/reads/{read_id}/frame.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def read_frame(search: SearchDep, read_id: str) -> Response:
    """The frame thumbnail of a stored read."""
    return await _read_image(search, read_id, "frame")


@reads_router.get("/stats/count", response_model=CountOut, responses=ERRORS)
async def count_reads(
    search: SearchDep,
    agency_id: Annotated[list[str] | None, Query(description="Repeat to count several agencies.")] = None,
) -> CountOut:
    """How many reads are stored (rows, and distinct read ids)."""
    response: search_pb2.CountReadsResponse = await search.call(
        "CountReads", search_pb2.CountReadsRequest(agency_ids=agency_id or [])
    )
    return CountOut(reads=response.reads, distinct_read_ids=response.distinct_read_ids)


# Hotlists ---------------------------------------------------------------------------------------

hotlists_router = APIRouter(prefix=API_PREFIX, tags=["hotlists"])


@hotlists_router.get("/hotlists", response_model=HotlistsOut, responses=ERRORS)
async def list_hotlists(hotlist: HotlistDep, agency_id: str = "") -> HotlistsOut:
    response: hotlist_pb2.ListHotlistsResponse = await hotlist.call(
        "ListHotlists", hotlist_pb2.ListHotlistsRequest(agency_id=agency_id)
    )
    return HotlistsOut(hotlists=[HotlistOut.from_proto(h) for h in response.hotlists])


@hotlists_router.post(
    "/hotlists", response_model=HotlistOut, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
async def create_hotlist(hotlist: HotlistDep, body: HotlistIn) -> HotlistOut:
    created: hotlist_pb2.Hotlist = await hotlist.call(
        "CreateHotlist", hotlist_pb2.CreateHotlistRequest(hotlist=body.to_proto())
    )
    return HotlistOut.from_proto(created)


@hotlists_router.get("/hotlists/{hotlist_id}/entries", response_model=EntriesOut, responses=ERRORS)
async def list_entries(hotlist: HotlistDep, hotlist_id: str) -> EntriesOut:
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
async def add_entries(hotlist: HotlistDep, hotlist_id: str, body: EntriesIn) -> EntriesOut:
    """Add entries to a hotlist; the reply holds them with their assigned entry ids."""
    request = hotlist_pb2.AddEntriesRequest(
        hotlist_id=hotlist_id, entries=[entry.to_proto(hotlist_id) for entry in body.entries]
    )
    response: hotlist_pb2.AddEntriesResponse = await hotlist.call("AddEntries", request)
    return EntriesOut(entries=[EntryOut.from_proto(e) for e in response.entries])


@hotlists_router.delete(
    "/hotlists/{hotlist_id}/entries/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=ERRORS,
)
async def remove_entry(hotlist: HotlistDep, hotlist_id: str, entry_id: str) -> Response:
    response: hotlist_pb2.RemoveEntryResponse = await hotlist.call(
        "RemoveEntry", hotlist_pb2.RemoveEntryRequest(hotlist_id=hotlist_id, entry_id=entry_id)
    )
    if not response.removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"entry {entry_id} not in hotlist {hotlist_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Alerts -----------------------------------------------------------------------------------------

alerts_router = APIRouter(prefix=API_PREFIX, tags=["alerts"])


@alerts_router.get("/alerts", response_model=AlertsOut)
async def recent_alerts(broker: BrokerDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> AlertsOut:
    """Alerts seen since this API process started (plus the preloaded history), newest first, one per
    alert id."""
    return AlertsOut(alerts=[AlertOut.from_proto(alert) for alert in broker.recent(limit)])


def _alert_event(alert: alerts_pb2.Alert) -> ServerSentEvent:
    return ServerSentEvent(
        data=AlertOut.from_proto(alert).model_dump_json(),
        event="alert_update" if is_update(alert) else "alert",
        id=alert.alert_id,
    )


@alerts_router.get(
    "/alerts/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def alert_stream(
    broker: BrokerDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(description="Resume after this alert id.")] = None,
) -> EventSourceResponse:
    """Server-Sent Events: one `alert` event (JSON as in GET /alerts, id = alert_id) per new alert,
    one `alert_update` event (same JSON) per workflow step on an alert (confirmed, dispatched,
    dismissed, outcome recorded), and a comment line every ~15 s as heartbeat. A client that falls
    behind loses its oldest undelivered alerts rather than slowing anyone else down."""
    # Subscribe before the response starts so nothing published meanwhile is missed.
    subscription = broker.subscribe()
    backlog = broker.since(last_event_id) if last_event_id else []

    async def events() -> AsyncIterator[ServerSentEvent]:
        with subscription:
            for alert in backlog:
                yield _alert_event(alert)
            async for alert in subscription:
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
    request: Request, broker: BrokerDep, publisher: PublisherDep, alert_id: str, body: AlertActionIn
) -> AlertOut:
    """Apply one operator step to an alert and return its new state.

    `confirm_visual` (UNCONFIRMED -> CONFIRMED_VISUAL), `confirm_dispatch` (only from CONFIRMED_VISUAL:
    nothing is actionable without a recorded visual confirmation), `dismiss_misread` (from UNCONFIRMED
    or CONFIRMED_VISUAL), `record_outcome` with `outcome` stop|arrest|none (once, after a
    confirmation). Refused steps answer 409 naming the status and the allowed actions. The new version
    is acknowledged by Kafka (ALERTS topic) before the reply; live streams get an `alert_update`."""
    locks: dict[str, tuple[asyncio.Lock, int]] = request.app.state.alert_locks
    lock, users = locks.get(alert_id, (asyncio.Lock(), 0))
    locks[alert_id] = (lock, users + 1)
    try:
        # One step at a time per alert in this process, so two operators cannot both confirm.
        async with lock:
            current = await _current_alert(request, broker, alert_id)
            try:
                updated = apply_action(
                    current,
                    body.action,
                    body.actor,
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
            "actor": body.actor,
            "status": int(updated.status),
        },
    )
    return AlertOut.from_proto(updated)


@alerts_router.get("/alerts/{alert_id}/crop.jpg", response_class=Response, responses=IMAGE_RESPONSES)
async def alert_crop(broker: BrokerDep, alert_id: str) -> Response:
    """The plate crop embedded in a buffered alert."""
    alert = broker.get(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} is not in the recent-alert buffer")
    if not alert.read.crop_jpeg:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} has no crop image")
    return Response(alert.read.crop_jpeg, media_type=JPEG, headers={"Cache-Control": "private, max-age=3600"})


# Health and landing page ------------------------------------------------------------------------

system_router = APIRouter(tags=["system"])


@system_router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """Liveness: the process serves HTTP."""
    return {"alive": True}


@system_router.get("/readyz", response_model=ReadinessOut, responses={503: {"model": ReadinessOut}})
async def readyz(request: Request, backends: BackendsDep) -> JSONResponse:
    """Ready when both gRPC services report SERVING and the alert consumer has its partitions."""
    search_ok, hotlist_ok = await asyncio.gather(backends.search.healthy(), backends.hotlist.healthy())
    consumer_ready: Callable[[], bool] | None = request.app.state.alert_consumer_ready
    checks = {
        "search": search_ok,
        "hotlist": hotlist_ok,
        "alert_consumer": bool(consumer_ready is not None and consumer_ready()),
    }
    ready = all(checks.values())
    body = ReadinessOut(ready=ready, checks=checks).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)


@system_router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def landing() -> HTMLResponse:
    return HTMLResponse(LANDING_HTML)


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


def create_app(
    settings: ApiSettings,
    *,
    backends: Backends | None = None,
    broker: AlertBroker | None = None,
    alert_consumer_ready: Callable[[], bool] | None = None,
    publisher: AlertPublisher | None = None,
) -> FastAPI:
    """Build the API.

    `backends`: gRPC connections owned by the caller; when None the app opens them from `settings`
    at startup and closes them at shutdown (needs an ASGI server that runs the lifespan).
    `broker`: the alert buffer fed by the alert consumer (a fresh empty one when None).
    `alert_consumer_ready`: readiness of that consumer; /readyz is not ready without one.
    `publisher`: writes workflow steps to ALERTS; when None the app makes one from `settings` at
    startup (it connects on first use) and closes it at shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    )
    app.state.settings = settings
    app.state.backends = backends
    app.state.broker = (
        broker if broker is not None else AlertBroker(settings.alert_buffer_size, settings.sse_queue_size)
    )
    app.state.alert_consumer_ready = alert_consumer_ready
    app.state.publisher = publisher
    app.state.alert_locks = {}
    app.add_exception_handler(BackendError, _backend_error)
    for router in (reads_router, hotlists_router, hotlist_import_router, alerts_router, system_router):
        app.include_router(router)
    install_console(app)
    return app
