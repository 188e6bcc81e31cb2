"""A small two-agency world for the governance tests: the real API (create_app) over in-process fake
search and hotlist gRPC services that honour the agency scope they are given (contract 2), an alert
buffer holding one alert per agency, a recording publisher and an in-memory audit sink."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from services.api.app import create_app
from services.api.backends import Backends
from services.api.broker import AlertBroker
from services.api.publisher import AlertPublisher
from services.api.security import Governance, MemoryAuditSink
from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import (
    alerts_pb2,
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    hotlist_pb2,
    hotlist_pb2_grpc,
    reads_pb2,
    search_pb2,
    search_pb2_grpc,
)
from tests.governance.helpers import default_policy_dict, make_governance

A, B = "agency-a", "agency-b"
AGENCIES = (A, B)
PLATE = "ABC123"
JPEG = b"\xff\xd8\xff\xe0image\xff\xd9"
READ_ID = {A: "read-a", B: "read-b"}
HOTLIST_ID = {A: "list-a", B: "list-b"}
ALERT_ID = {A: "alert-a", B: "alert-b"}
# Plates that only one agency's analytics answers contain (so a response tells whose data it holds).
AGENCY_PLATE = {A: "AAA111", B: "BBB222"}
HOLD_ID = {A: "hold-a", B: "hold-b"}


class FakeSearch(search_pb2_grpc.SearchServiceServicer):
    """One read per agency; every query is answered only from the agencies it names."""

    def __init__(self) -> None:
        self.queries: list[Any] = []
        self.reads: dict[str, search_pb2.StoredRead] = {}
        for agency in AGENCIES:
            read = search_pb2.StoredRead(
                read_id=READ_ID[agency], plate=PLATE, camera_id=f"cam-{agency}", agency_id=agency
            )
            read.captured_at.FromDatetime(datetime.now(UTC) - timedelta(days=1))
            self.reads[read.read_id] = read

    async def SearchReads(self, request, context):  # type: ignore[no-untyped-def]
        self.queries.append(request)
        if not request.agency_ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agency_ids required")
        found = [r for r in self.reads.values() if r.agency_id in request.agency_ids]
        # Pages as the real service does: page_size reads, then an opaque token for the rest.
        if request.page_token and not request.page_token.isdigit():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: not a token of this search")
        offset = int(request.page_token or 0)
        size = request.page_size or len(found)
        page = found[offset : offset + size]
        more = offset + size < len(found)
        return search_pb2.SearchReadsResponse(reads=page, next_page_token=str(offset + size) if more else "")

    async def CountReads(self, request, context):  # type: ignore[no-untyped-def]
        self.queries.append(request)
        if not request.agency_ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agency_ids required")
        count = sum(1 for r in self.reads.values() if r.agency_id in request.agency_ids)
        return search_pb2.CountReadsResponse(reads=count, distinct_read_ids=count)

    async def GetReadImage(self, request, context):  # type: ignore[no-untyped-def]
        self.queries.append(request)
        read = self.reads.get(request.read_id)
        if read is None or read.agency_id not in request.agency_ids:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no read {request.read_id}")
        return search_pb2.GetReadImageResponse(jpeg=JPEG)

    async def GetAlert(self, request, context):  # type: ignore[no-untyped-def]
        await context.abort(grpc.StatusCode.NOT_FOUND, f"alert {request.alert_id} not found")

    # Analytics: every answer holds one item per agency in scope, marked with that agency.

    async def _scope(self, request, context) -> list[str]:  # type: ignore[no-untyped-def]
        self.queries.append(request)
        if not request.agency_ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agency_ids required")
        return [agency for agency in AGENCIES if agency in request.agency_ids]

    async def VehicleTimeline(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        sightings = [r for r in self.reads.values() if r.agency_id in scope and r.plate == request.plate]
        return search_pb2.TimelineResponse(sightings=sightings)

    async def VisitFrequency(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        visits = []
        for agency in scope:
            visit = search_pb2.Visit(camera_ids=[f"cam-{agency}"], sightings=1)
            visit.start.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
            visit.end.FromDatetime(datetime.now(UTC))
            visits.append(visit)
        return search_pb2.VisitsResponse(visit_count=len(visits), visits=visits)

    async def FrequentVisitors(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        visitors = []
        for agency in scope:
            visitor = search_pb2.VisitorCount(plate=AGENCY_PLATE[agency], visits=2, sightings=2)
            visitor.first_seen.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
            visitor.last_seen.FromDatetime(datetime.now(UTC))
            visitors.append(visitor)
        return search_pb2.FrequentVisitorsResponse(visitors=visitors)

    async def Convoy(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        associates = [
            search_pb2.Associate(
                plate=AGENCY_PLATE[agency], co_sightings=2, cameras=1, camera_ids=[f"cam-{agency}"]
            )
            for agency in scope
        ]
        return search_pb2.ConvoyResponse(target_sightings=len(scope), associates=associates)

    async def MultiSite(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        plates = [search_pb2.MultiSiteMatch(plate=AGENCY_PLATE[agency], windows=[0, 1]) for agency in scope]
        return search_pb2.MultiSiteResponse(plates=plates)

    async def DashboardStats(self, request, context):  # type: ignore[no-untyped-def]
        scope = await self._scope(request, context)
        return search_pb2.DashboardResponse(
            rows=[search_pb2.StatsRow(agency_id=agency, reads=1, hits=0) for agency in scope]
        )


class FakeAudit(audit_pb2_grpc.AuditServiceServicer):
    """One audit entry and one legal hold per agency. Like the real AuditService it filters by the
    agency the request names and lists every agency when it names none, so a route that forgets the
    caller's agency shows up as a leak."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.entries = []
        self.holds: dict[str, audit_pb2.LegalHold] = {}
        for sequence, agency in enumerate(AGENCIES, start=1):
            event = audit_pb2.AuditEvent(
                event_id=f"event-{agency}",
                kind="search",
                actor=f"{agency}-officer",
                agency_id=agency,
                action="search reads",
                outcome="allowed",
                details_json=json.dumps({"plate": PLATE}),
            )
            event.occurred_at.GetCurrentTime()
            entry = audit_pb2.AuditEntry(
                sequence=sequence, prev_hash="0" * 64, entry_hash=f"{sequence:064x}", event=event
            )
            entry.chained_at.GetCurrentTime()
            self.entries.append(entry)
            self.holds[HOLD_ID[agency]] = audit_pb2.LegalHold(
                hold_id=HOLD_ID[agency], agency_id=agency, case_number="CASE-1", read_ids=[READ_ID[agency]]
            )

    async def ListEntries(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        for entry in self.entries:
            if not request.agency_id or entry.event.agency_id == request.agency_id:
                yield entry

    async def GetCheckpoint(self, request, context):  # type: ignore[no-untyped-def]
        checkpoint = audit_pb2.AuditCheckpoint(
            sequence=2, entry_hash=f"{2:064x}", key_id="0" * 16, signature=b"s" * 64, public_key=b"k" * 32
        )
        checkpoint.created_at.GetCurrentTime()
        return checkpoint

    async def VerifyChain(self, request, context):  # type: ignore[no-untyped-def]
        report = {
            "ok": True,
            "entries": len(self.entries),
            "first_sequence": 1,
            "last_sequence": len(self.entries),
            "head_hash": self.entries[-1].entry_hash,
            "checkpoints_checked": 0,
            "findings": [],
            "verified_at": datetime.now(UTC).isoformat(),
        }
        return audit_pb2.JsonReport(json=json.dumps(report))

    async def RetentionReport(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        agencies = [request.agency_id] if request.agency_id else list(AGENCIES)
        return audit_pb2.JsonReport(json=json.dumps({"agencies": agencies, "classes": []}))

    async def TransparencyData(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        agencies = [request.agency_id] if request.agency_id else list(AGENCIES)
        return audit_pb2.JsonReport(json=json.dumps({"agencies": agencies, "reads": len(agencies)}))

    async def ListLegalHolds(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        holds = [
            h
            for h in self.holds.values()
            if (not request.agency_id or h.agency_id == request.agency_id)
            and (request.include_released or not h.released)
        ]
        return audit_pb2.ListLegalHoldsResponse(holds=holds)

    async def PlaceLegalHold(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        hold = audit_pb2.LegalHold(
            hold_id=f"hold-{len(self.holds) + 1}",
            agency_id=request.agency_id,
            case_number=request.case_number,
            read_ids=request.read_ids,
            reason=request.reason,
            placed_by=request.actor,
        )
        hold.placed_at.GetCurrentTime()
        self.holds[hold.hold_id] = hold
        return hold

    async def ReleaseLegalHold(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        hold = self.holds.get(request.hold_id)
        if hold is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hold {request.hold_id}")
        hold.released = True
        hold.released_by = request.actor
        return hold


@dataclass
class FakeHotlists(hotlist_pb2_grpc.HotlistServiceServicer):
    lists: dict[str, hotlist_pb2.Hotlist] = field(default_factory=dict)
    entries: dict[str, dict[str, hotlist_pb2.HotlistEntry]] = field(default_factory=dict)
    imports: list[hotlist_pb2.ImportCsvRequest] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        for agency in AGENCIES:
            hotlist_id = HOTLIST_ID[agency]
            self.lists[hotlist_id] = hotlist_pb2.Hotlist(
                hotlist_id=hotlist_id, name=f"Stolen ({agency})", agency_id=agency
            )
            self.entries[hotlist_id] = {
                "e1": hotlist_pb2.HotlistEntry(
                    entry_id="e1", hotlist_id=hotlist_id, plate=PLATE, agency_id=agency
                )
            }

    async def CreateHotlist(self, request, context):  # type: ignore[no-untyped-def]
        self.counter += 1
        created = hotlist_pb2.Hotlist()
        created.CopyFrom(request.hotlist)
        created.hotlist_id = f"new-{self.counter}"
        self.lists[created.hotlist_id] = created
        self.entries[created.hotlist_id] = {}
        return created

    async def ListHotlists(self, request, context):  # type: ignore[no-untyped-def]
        found = [h for h in self.lists.values() if not request.agency_id or h.agency_id == request.agency_id]
        return hotlist_pb2.ListHotlistsResponse(hotlists=found)

    async def AddEntries(self, request, context):  # type: ignore[no-untyped-def]
        added = []
        for entry in request.entries:
            self.counter += 1
            stored = hotlist_pb2.HotlistEntry()
            stored.CopyFrom(entry)
            stored.entry_id = f"e{self.counter}"
            self.entries[request.hotlist_id][stored.entry_id] = stored
            added.append(stored)
        return hotlist_pb2.AddEntriesResponse(entries=added)

    async def ListEntries(self, request, context):  # type: ignore[no-untyped-def]
        return hotlist_pb2.ListEntriesResponse(entries=list(self.entries[request.hotlist_id].values()))

    async def RemoveEntry(self, request, context):  # type: ignore[no-untyped-def]
        removed = self.entries.get(request.hotlist_id, {}).pop(request.entry_id, None)
        return hotlist_pb2.RemoveEntryResponse(removed=removed is not None)

    async def ImportCsv(self, request, context):  # type: ignore[no-untyped-def]
        self.imports.append(request)
        return hotlist_pb2.ImportCsvResponse(applied=True, rows=1, imported=1)


class RecordingPublisher(AlertPublisher):
    def __init__(self) -> None:
        super().__init__("unused:9092")
        self.published: list[alerts_pb2.Alert] = []

    async def publish(self, alert: alerts_pb2.Alert) -> None:
        self.published.append(alert)


def make_alert(agency: str, alert_id: str | None = None) -> alerts_pb2.Alert:
    read = reads_pb2.Read(
        read_id=READ_ID[agency],
        plate=PLATE,
        camera=common_pb2.CameraInfo(camera_id=f"cam-{agency}", agency_id=agency),
        crop_jpeg=JPEG,
    )
    alert = alerts_pb2.Alert(
        alert_id=alert_id or ALERT_ID[agency],
        read=read,
        entry=hotlist_pb2.HotlistEntry(
            entry_id="e1", hotlist_id=HOTLIST_ID[agency], plate=PLATE, agency_id=agency
        ),
        hotlist_name=f"Stolen ({agency})",
        status=alerts_pb2.ALERT_STATUS_UNCONFIRMED,
    )
    alert.raised_at.GetCurrentTime()
    return alert


def sharing_policy(
    data_classes: list[str], purposes: list[str] | None = None, **agreement: Any
) -> dict[str, Any]:
    """The default policy plus one agreement: agency-b shares `data_classes` with agency-a."""
    policy = default_policy_dict()
    policy["sharing"]["agreements"] = [
        {
            "id": "b-to-a",
            "owner": B,
            "partner": A,
            "purposes": purposes or ["stolen-vehicle"],
            "data_classes": data_classes,
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            **agreement,
        }
    ]
    return policy


@dataclass
class World:
    client: httpx.AsyncClient
    governance: Governance
    search: FakeSearch
    hotlists: FakeHotlists
    broker: AlertBroker
    publisher: RecordingPublisher
    audit_service: FakeAudit

    @property
    def audit(self) -> MemoryAuditSink:
        sink = self.governance.audit_sink
        assert isinstance(sink, MemoryAuditSink)
        return sink


async def _serve(add: Callable[..., None], servicer: object) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    add(servicer, server)
    # SERVING for the whole server, so /readyz is ready.
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@asynccontextmanager
async def open_world(
    policy: dict[str, Any] | None = None, clock: Callable[[], datetime] | None = None, **overrides: Any
) -> AsyncIterator[World]:
    # Built first: an invalid policy raises before any server is started.
    governance = make_governance(
        ApiSettings(), policy=policy or default_policy_dict(), clock=clock, **overrides
    )
    search, hotlists = FakeSearch(), FakeHotlists()
    search_server, search_port = await _serve(search_pb2_grpc.add_SearchServiceServicer_to_server, search)
    hotlist_server, hotlist_port = await _serve(
        hotlist_pb2_grpc.add_HotlistServiceServicer_to_server, hotlists
    )
    audit_service = FakeAudit()
    audit_server, audit_port = await _serve(audit_pb2_grpc.add_AuditServiceServicer_to_server, audit_service)
    audit_channel = grpc.aio.insecure_channel(f"127.0.0.1:{audit_port}")
    settings = ApiSettings(
        search_grpc_target=f"127.0.0.1:{search_port}",
        hotlist_grpc_target=f"127.0.0.1:{hotlist_port}",
        grpc_timeout_seconds=5,
    )
    backends = Backends.connect(settings)
    broker = AlertBroker()
    for agency in AGENCIES:
        broker.publish(make_alert(agency))
    publisher = RecordingPublisher()
    app = create_app(
        settings,
        backends=backends,
        broker=broker,
        publisher=publisher,
        alert_consumer_ready=lambda: True,
        governance=governance,
    )
    # The audit routes' AuditService (a test may replace it with a real one).
    app.state.audit_stub = audit_pb2_grpc.AuditServiceStub(audit_channel)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            client.app = app  # type: ignore[attr-defined]
            yield World(client, governance, search, hotlists, broker, publisher, audit_service)
    finally:
        await backends.close()
        await audit_channel.close()
        await search_server.stop(None)
        await hotlist_server.stop(None)
        await audit_server.stop(None)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened
