"""HTTP API over in-process fake search and hotlist gRPC servers (our own services' test doubles)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.api.app import create_app
from services.api.backends import Backends
from services.api.models import Reason
from services.api.security import Governance
from services.api.settings import ApiSettings
from services.common.pb.platewatch.v1 import (
    common_pb2,
    hotlist_pb2,
    hotlist_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from tests.governance.helpers import auth_headers, make_governance

# The API's clock: the fake reads of 2024-05-01 are within the default policy's 90-day tier.
NOW = datetime(2024, 5, 3, tzinfo=UTC)
CROP = b"\xff\xd8\xff\xe0crop-bytes\xff\xd9"
FRAME = b"\xff\xd8\xff\xe0frame-bytes\xff\xd9"


class FakeSearch(search_pb2_grpc.SearchServiceServicer):
    """Answers from a fixed set of reads and records every query it gets."""

    def __init__(self) -> None:
        self.queries: list[search_pb2.PlateQuery] = []
        self.read = search_pb2.StoredRead(
            read_id="r1",
            plate="ABC123",
            region="US-CA",
            confidence=0.93,
            camera_id="cam-1",
            agency_id="agency-a",
            direction="northbound",
            vehicle=common_pb2.Vehicle(color="red", color_confidence=0.8),
            box=common_pb2.Box(x=1, y=2, width=30, height=10),
        )
        self.read.captured_at.FromDatetime(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))

    async def SearchReads(self, request, context):  # type: ignore[no-untyped-def]
        self.queries.append(request)
        if request.plate == "INVALID":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "plate pattern is not valid")
        if request.plate == "BROKEN":
            await context.abort(grpc.StatusCode.INTERNAL, "storage exploded")
        return search_pb2.SearchReadsResponse(reads=[self.read], next_page_token="cursor-2")

    async def CountReads(self, request, context):  # type: ignore[no-untyped-def]
        return search_pb2.CountReadsResponse(reads=7 + len(request.agency_ids), distinct_read_ids=5)

    async def GetReadImage(self, request, context):  # type: ignore[no-untyped-def]
        if request.read_id != "r1":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no read {request.read_id}")
        if request.kind == "crop":
            return search_pb2.GetReadImageResponse(jpeg=CROP)
        if request.kind == "frame":
            return search_pb2.GetReadImageResponse(jpeg=FRAME)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown kind {request.kind}")


@dataclass
class FakeHotlists(hotlist_pb2_grpc.HotlistServiceServicer):
    """A dict-backed hotlist store with server-assigned ids."""

    lists: dict[str, hotlist_pb2.Hotlist] = field(default_factory=dict)
    entries: dict[str, dict[str, hotlist_pb2.HotlistEntry]] = field(default_factory=dict)
    counter: int = 0

    async def CreateHotlist(self, request, context):  # type: ignore[no-untyped-def]
        if not request.hotlist.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name required")
        self.counter += 1
        hotlist = hotlist_pb2.Hotlist()
        hotlist.CopyFrom(request.hotlist)
        hotlist.hotlist_id = f"h{self.counter}"
        self.lists[hotlist.hotlist_id] = hotlist
        self.entries[hotlist.hotlist_id] = {}
        return hotlist

    async def ListHotlists(self, request, context):  # type: ignore[no-untyped-def]
        found = [h for h in self.lists.values() if not request.agency_id or h.agency_id == request.agency_id]
        for hotlist in found:
            hotlist.entry_count = len(self.entries[hotlist.hotlist_id])
        return hotlist_pb2.ListHotlistsResponse(hotlists=found)

    async def AddEntries(self, request, context):  # type: ignore[no-untyped-def]
        if request.hotlist_id not in self.lists:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hotlist {request.hotlist_id}")
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
        if request.hotlist_id not in self.lists:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hotlist {request.hotlist_id}")
        return hotlist_pb2.ListEntriesResponse(entries=list(self.entries[request.hotlist_id].values()))

    async def RemoveEntry(self, request, context):  # type: ignore[no-untyped-def]
        removed = self.entries.get(request.hotlist_id, {}).pop(request.entry_id, None)
        return hotlist_pb2.RemoveEntryResponse(removed=removed is not None)


@dataclass
class Stack:
    client: httpx.AsyncClient
    search: FakeSearch
    hotlists: FakeHotlists
    search_health: health.HealthServicer
    consumer_assigned: list[bool]
    governance: Governance


async def _start_server(
    add: object, servicer: object, health_servicer: health.HealthServicer
) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    add(servicer, server)  # type: ignore[operator]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def _closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    search, hotlists = FakeSearch(), FakeHotlists()
    search_health, hotlist_health = health.HealthServicer(), health.HealthServicer()
    search_server, search_port = await _start_server(
        search_pb2_grpc.add_SearchServiceServicer_to_server, search, search_health
    )
    hotlist_server, hotlist_port = await _start_server(
        hotlist_pb2_grpc.add_HotlistServiceServicer_to_server, hotlists, hotlist_health
    )
    settings = ApiSettings(
        search_grpc_target=f"127.0.0.1:{search_port}",
        hotlist_grpc_target=f"127.0.0.1:{hotlist_port}",
        grpc_timeout_seconds=5,
    )
    backends = Backends.connect(settings)
    assigned = [True]
    governance = make_governance(settings, clock=lambda: NOW)
    app = create_app(
        settings, backends=backends, alert_consumer_ready=lambda: assigned[0], governance=governance
    )
    transport = httpx.ASGITransport(app=app)
    # A supervisor of agency-a searching for a permitted purpose: may use every route tested here.
    headers = auth_headers(governance, "supervisor", "agency-a")
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
        yield Stack(client, search, hotlists, search_health, assigned, governance)
    await backends.close()
    await search_server.stop(None)
    await hotlist_server.stop(None)


async def test_search_maps_every_parameter(stack: Stack) -> None:
    params = [
        ("plate", " abc123 "),
        ("camera_id", "cam-1"),
        ("camera_id", "cam-2"),
        ("agency_id", "agency-a"),
        ("from", "2024-05-01T00:00:00Z"),
        ("to", "2024-05-02T00:00:00+02:00"),
        ("min_confidence", "0.5"),
        ("page_size", "20"),
        ("page_token", "cursor-1"),
    ]
    response = await stack.client.get("/api/v1/reads", params=params)
    assert response.status_code == 200, response.text
    (query,) = stack.search.queries
    assert query.plate == "ABC123"
    assert list(query.camera_ids) == ["cam-1", "cam-2"]
    assert list(query.agency_ids) == ["agency-a"]
    assert getattr(query, "from").ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, tzinfo=UTC)
    assert query.to.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, 22, tzinfo=UTC)
    assert query.min_confidence == pytest.approx(0.5)
    assert query.page_size == 20
    assert query.page_token == "cursor-1"

    body = response.json()
    assert body["next_page_token"] == "cursor-2"
    (read,) = body["reads"]
    assert read["read_id"] == "r1"
    assert read["plate"] == "ABC123"
    assert read["captured_at"].startswith("2024-05-01T12:00:00")
    assert read["vehicle"]["color"] == "red"
    assert read["box"] == {"x": 1, "y": 2, "width": 30, "height": 10}
    assert read["crop_url"] == "/api/v1/reads/r1/crop.jpg"
    assert read["frame_url"] == "/api/v1/reads/r1/frame.jpg"


async def test_search_defaults_and_unset_times(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/reads", params={"plate": "ABC123"})
    assert response.status_code == 200
    (query,) = stack.search.queries
    # No `from`: limited to the policy's data-age tier (90 days) since no approval was sent.
    assert getattr(query, "from").ToDatetime(tzinfo=UTC) == NOW - timedelta(days=90)
    assert not query.HasField("to")
    assert query.page_size == 50 and query.page_token == "" and list(query.camera_ids) == []


@pytest.mark.parametrize("pattern", ["AB?12?", "*123", "A*B?C"])
async def test_wildcards_pass_through(stack: Stack, pattern: str) -> None:
    response = await stack.client.get("/api/v1/reads", params={"plate": pattern.lower()})
    assert response.status_code == 200
    assert stack.search.queries[-1].plate == pattern


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"plate": ""},
        {"plate": "ABC", "page_size": "0"},
        {"plate": "ABC", "min_confidence": "1.5"},
        {"plate": "ABC", "from": "not-a-time"},
        {"plate": "ABC", "from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"},
    ],
)
async def test_invalid_query_is_422_without_calling_search(stack: Stack, params: dict[str, str]) -> None:
    response = await stack.client.get("/api/v1/reads", params=params)
    assert response.status_code == 422
    assert stack.search.queries == []


async def test_grpc_invalid_argument_is_422_with_detail(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/reads", params={"plate": "invalid"})
    assert response.status_code == 422
    assert response.json() == {"detail": "plate pattern is not valid"}


async def test_other_grpc_failures_are_502(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/reads", params={"plate": "BROKEN"})
    assert response.status_code == 502
    assert "storage exploded" in response.json()["detail"]


async def test_unavailable_backend_is_503_naming_it(stack: Stack) -> None:
    port = _closed_port()
    settings = ApiSettings(
        search_grpc_target=f"127.0.0.1:{port}",
        hotlist_grpc_target=f"127.0.0.1:{port}",
        grpc_timeout_seconds=5,
    )
    backends = Backends.connect(settings)
    governance = make_governance(settings)
    app = create_app(settings, backends=backends, alert_consumer_ready=lambda: True, governance=governance)
    headers = auth_headers(governance, "supervisor", "agency-a")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers
        ) as client:
            search = await client.get("/api/v1/reads", params={"plate": "ABC"})
            hotlists = await client.get("/api/v1/hotlists")
            ready = await client.get("/readyz")
    finally:
        await backends.close()
    assert search.status_code == 503
    assert search.json()["detail"].startswith(f"search service unavailable at 127.0.0.1:{port}")
    assert hotlists.status_code == 503
    assert "hotlist service unavailable" in hotlists.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "search": False,
        "hotlist": False,
        "alert_consumer": True,
        "governance_state": True,
    }


async def test_read_images_are_jpeg(stack: Stack) -> None:
    crop = await stack.client.get("/api/v1/reads/r1/crop.jpg")
    frame = await stack.client.get("/api/v1/reads/r1/frame.jpg")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg" and crop.content == CROP
    assert (
        frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg" and frame.content == FRAME
    )


async def test_missing_read_image_is_404(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/reads/nope/crop.jpg")
    assert response.status_code == 404
    assert response.json() == {"detail": "no read nope"}


async def test_count(stack: Stack) -> None:
    response = await stack.client.get("/api/v1/stats/count", params=[("agency_id", "agency-a")])
    assert response.status_code == 200
    assert response.json() == {"reads": 8, "distinct_read_ids": 5}
    # Without a filter: the caller's own agency (no agreements in the default policy).
    response = await stack.client.get("/api/v1/stats/count")
    assert response.json() == {"reads": 8, "distinct_read_ids": 5}


async def test_hotlist_max_age_beyond_int64_is_a_clear_422(stack: Stack) -> None:
    response = await stack.client.post(
        "/api/v1/hotlists", json={"name": "Stolen", "agency_id": "agency-a", "max_age_seconds": 2**63}
    )
    assert response.status_code == 422
    assert "max_age_seconds" in response.text
    assert stack.hotlists.lists == {}


async def test_hotlist_crud(stack: Stack) -> None:
    client = stack.client
    created = await client.post(
        "/api/v1/hotlists", json={"name": "Stolen", "agency_id": "agency-a", "max_age_seconds": 86400}
    )
    assert created.status_code == 201, created.text
    hotlist = created.json()
    assert hotlist["name"] == "Stolen" and hotlist["max_age_seconds"] == 86400
    hotlist_id = hotlist["hotlist_id"]

    added = await client.post(
        f"/api/v1/hotlists/{hotlist_id}/entries",
        json={
            "entries": [
                {
                    "plate": "abc123",
                    "reason": "stolen_vehicle",
                    "priority": 1,
                    "expires_at": "2030-01-01T00:00:00Z",
                },
                {"plate": "XY?12*", "reason": "amber_alert", "priority": 2, "notes": "blue van"},
            ]
        },
    )
    assert added.status_code == 201, added.text
    first, second = added.json()["entries"]
    assert first["plate"] == "ABC123" and first["reason"] == "stolen_vehicle"
    assert first["expires_at"].startswith("2030-01-01T00:00:00")
    assert (
        second["plate"] == "XY?12*" and second["notes"] == "blue van" and second["hotlist_id"] == hotlist_id
    )
    stored = stack.hotlists.entries[hotlist_id][first["entry_id"]]
    assert stored.reason == hotlist_pb2.REASON_CODE_STOLEN_VEHICLE

    listed = await client.get(f"/api/v1/hotlists/{hotlist_id}/entries")
    assert [e["entry_id"] for e in listed.json()["entries"]] == [first["entry_id"], second["entry_id"]]
    lists = await client.get("/api/v1/hotlists", params={"agency_id": "agency-a"})
    assert [(h["hotlist_id"], h["entry_count"]) for h in lists.json()["hotlists"]] == [(hotlist_id, 2)]

    removed = await client.delete(f"/api/v1/hotlists/{hotlist_id}/entries/{first['entry_id']}")
    assert removed.status_code == 204
    again = await client.delete(f"/api/v1/hotlists/{hotlist_id}/entries/{first['entry_id']}")
    assert again.status_code == 404
    listed = await client.get(f"/api/v1/hotlists/{hotlist_id}/entries")
    assert [e["entry_id"] for e in listed.json()["entries"]] == [second["entry_id"]]


async def test_hotlist_errors(stack: Stack) -> None:
    missing = await stack.client.get("/api/v1/hotlists/nope/entries")
    assert missing.status_code == 404 and missing.json()["detail"] == "hotlist nope not found"
    bad_reason = await stack.client.post(
        "/api/v1/hotlists/h1/entries", json={"entries": [{"plate": "A", "reason": "x"}]}
    )
    assert bad_reason.status_code == 422
    empty = await stack.client.post("/api/v1/hotlists/h1/entries", json={"entries": []})
    assert empty.status_code == 422
    nameless = await stack.client.post("/api/v1/hotlists", json={"name": ""})
    assert nameless.status_code == 422


def test_reason_names_cover_the_proto_enum() -> None:
    for number in hotlist_pb2.ReasonCode.values():
        assert Reason.from_proto(number).to_proto() == number
    assert len(Reason) == len(hotlist_pb2.ReasonCode.values())


async def test_openapi_schema_renders(stack: Stack) -> None:
    response = await stack.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/reads",
        "/api/v1/reads/{read_id}/crop.jpg",
        "/api/v1/reads/{read_id}/frame.jpg",
        "/api/v1/stats/count",
        "/api/v1/hotlists",
        "/api/v1/hotlists/{hotlist_id}/entries",
        "/api/v1/hotlists/{hotlist_id}/entries/{entry_id}",
        "/api/v1/alerts",
        "/api/v1/alerts/stream",
        "/api/v1/alerts/{alert_id}/crop.jpg",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert {p["name"] for p in paths["/api/v1/reads"]["get"]["parameters"]} >= {
        "plate",
        "from",
        "to",
        "page_token",
    }
    docs = await stack.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_health_and_readiness(stack: Stack) -> None:
    assert (await stack.client.get("/healthz")).json() == {"alive": True}
    ready = await stack.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "checks": {"search": True, "hotlist": True, "alert_consumer": True, "governance_state": True},
    }

    stack.consumer_assigned[0] = False
    stack.search_health.set("platewatch.v1.SearchService", health_pb2.HealthCheckResponse.NOT_SERVING)
    not_ready = await stack.client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {
        "search": False,
        "hotlist": True,
        "alert_consumer": False,
        "governance_state": True,
    }


async def test_not_ready_while_the_shared_governance_state_is_not_replayed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack.governance, "state_ready", lambda: False)
    ready = await stack.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["governance_state"] is False


async def test_root_sends_people_to_the_console(stack: Stack) -> None:
    response = await stack.client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/console/"


async def test_docs_are_served_without_a_cdn(stack: Stack) -> None:
    page = await stack.client.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = await stack.client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 10_000
    assert (await stack.client.get("/redoc")).status_code == 404
