"""Search gRPC service against embedded ClickHouse: exact and wildcard plates, filters, keyset
pagination, images, counts and argument errors. The service runs in this process (`serve`), on the
same process-wide client the test inserts through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from services.common.health import HealthState
from services.common.net import free_port
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2
from services.search.client import SearchClient
from services.search.main import serve
from services.writer.rows import READ_IMAGES_COLUMNS, READS_COLUMNS, read_rows

BASE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CROP = b"\xff\xd8\xff\xe0crop-of-"


def make_read(read_id: str, plate: str, minutes: float, **overrides: object) -> reads_pb2.Read:
    read = reads_pb2.Read(
        read_id=read_id,
        plate=plate,
        region="US-CA",
        confidence=float(overrides.get("confidence", 0.9)),  # type: ignore[arg-type]
        camera=common_pb2.CameraInfo(
            camera_id=str(overrides.get("camera", "cam-1")),
            agency_id=str(overrides.get("agency", "pd-a")),
            lat=37.5,
            lon=-122.25,
        ),
        direction="northbound",
        box=common_pb2.Box(x=10, y=20, width=30, height=15),
        vehicle=common_pb2.Vehicle(color="blue", color_confidence=0.7),
        crop_jpeg=CROP + read_id.encode(),
        frames=3,
    )
    read.captured_at.FromDatetime(BASE + timedelta(minutes=minutes))
    return read


def store(client: Client, reads: list[reads_pb2.Read]) -> None:
    now = datetime.now(UTC)
    rows = [read_rows(r, now) for r in reads]
    client.insert("read_images", [r.image_row for r in rows], column_names=list(READ_IMAGES_COLUMNS))
    client.insert("reads", [r.read_row for r in rows], column_names=list(READS_COLUMNS))


@dataclass
class RunningSearch:
    client: SearchClient
    db: Client


@pytest.fixture
async def search(clickhouse_client: Client, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningSearch]:
    port = free_port()
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_PORT", str(port))
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_HOST", "127.0.0.1")
    stop = asyncio.Event()
    health = HealthState()
    task = asyncio.create_task(serve(stop, health))
    client = SearchClient(f"127.0.0.1:{port}")
    try:
        await client.wait_serving(within=30)
        assert health.readiness() == {"search": True}
        yield RunningSearch(client, clickhouse_client)
    finally:
        stop.set()
        await client.close()
        await asyncio.wait_for(task, timeout=30)


# Every query names the caller's agencies (contract 2); these tests see both.
AGENCIES = ["pd-a", "pd-b"]


async def plates(client: SearchClient, pattern: str, **filters: Any) -> list[str]:
    return [r.plate async for r in client.iter_reads(pattern, agency_ids=AGENCIES, **filters)]


async def test_exact_and_wildcard_plate_search(search: RunningSearch) -> None:
    names = ["7XY2AB", "7XZ2", "7XY3", "AX2B", "X2", "7X2", "A%B", "AXB"]
    store(search.db, [make_read(f"r{i}", plate, i) for i, plate in enumerate(names)])
    client = search.client

    exact = await client.search_reads("7XY2AB", agency_ids=AGENCIES)
    assert [r.plate for r in exact.reads] == ["7XY2AB"]
    got = exact.reads[0]
    assert (got.read_id, got.camera_id, got.agency_id, got.region) == ("r0", "cam-1", "pd-a", "US-CA")
    assert got.captured_at.ToDatetime(tzinfo=UTC) == BASE
    assert (got.box.width, got.vehicle.color, got.direction) == (30, "blue", "northbound")
    assert got.confidence == pytest.approx(0.9)

    assert await plates(client, "7x y2ab") == ["7XY2AB"]  # normalized like stored plates
    assert sorted(await plates(client, "7X?2*")) == ["7XY2AB", "7XZ2"]
    assert sorted(await plates(client, "*X2*")) == ["7X2", "AX2B", "X2"]
    # LIKE metacharacters in the query are literal.
    assert await plates(client, "A%B") == ["A%B"]
    assert await plates(client, "A%*") == ["A%B"]
    assert await plates(client, "A_B") == []
    assert await plates(client, "NOPE*") == []


async def test_filters_narrow_the_results(search: RunningSearch) -> None:
    store(
        search.db,
        [
            make_read("a1", "FLT1", 0, agency="pd-a", camera="cam-1", confidence=0.95),
            make_read("a2", "FLT1", 10, agency="pd-a", camera="cam-2", confidence=0.5),
            make_read("b1", "FLT1", 20, agency="pd-b", camera="cam-9", confidence=0.99),
        ],
    )
    client = search.client

    async def ids(**filters: Any) -> list[str]:
        filters.setdefault("agency_ids", AGENCIES)
        return [r.read_id async for r in client.iter_reads("FLT1", **filters)]

    assert await ids() == ["b1", "a2", "a1"]
    assert await ids(agency_ids=["pd-a"]) == ["a2", "a1"]
    assert await ids(camera_ids=["cam-2", "cam-9"]) == ["b1", "a2"]
    assert await ids(min_confidence=0.9) == ["b1", "a1"]
    assert await ids(since=BASE + timedelta(minutes=10)) == ["b1", "a2"]
    assert await ids(until=BASE + timedelta(minutes=10)) == ["a1"]
    assert (await client.count_reads(agency_ids=["pd-b"])).reads == 1


async def test_keyset_pagination_walks_every_read_once_newest_first(search: RunningSearch) -> None:
    # Two reads share a capture time: the read_id breaks the tie, so none is skipped or repeated.
    reads = [make_read(f"p{i}", "PAGE1", i) for i in range(6)] + [make_read("p5b", "PAGE1", 5)]
    store(search.db, reads)
    client = search.client

    pages: list[list[str]] = []
    token = ""
    while True:
        page = await client.search_reads("PAGE*", agency_ids=AGENCIES, page_size=3, page_token=token)
        pages.append([r.read_id for r in page.reads])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["p5b", "p5", "p4"], ["p3", "p2", "p1"], ["p0"]]

    # A token only continues the query it came from.
    first = await client.search_reads("PAGE*", agency_ids=AGENCIES, page_size=3)
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await client.search_reads(
            "OTHER*", agency_ids=AGENCIES, page_size=3, page_token=first.next_page_token
        )
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_invalid_queries_are_invalid_arguments(search: RunningSearch) -> None:
    for pattern in ("", "*", "??*", "X" * 40):
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await search.client.search_reads(pattern, agency_ids=AGENCIES)
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT, pattern
    for query in (search.client.search_reads("ABC"), search.client.count_reads()):  # no agencies
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await query
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await search.client.search_reads("ABC", agency_ids=AGENCIES, page_token="not-a-token")
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_read_images_and_counts(search: RunningSearch) -> None:
    store(search.db, [make_read("img1", "IMG1", 0), make_read("img2", "IMG2", 1)])
    client = search.client

    assert await client.get_read_image("img1", agency_ids=AGENCIES) == CROP + b"img1"
    assert await client.get_read_image("img2", kind="crop", agency_ids=AGENCIES) == CROP + b"img2"
    assert await client.get_read_image("img1", kind="frame", agency_ids=AGENCIES) is None  # no frame
    assert await client.get_read_image("missing", agency_ids=AGENCIES) is None
    # Another agency's read image does not exist for the caller.
    assert await client.get_read_image("img1", agency_ids=["someone-else"]) is None
    for bad in (
        client.get_read_image("img1", kind="thumbnail", agency_ids=AGENCIES),
        client.get_read_image("img1"),  # no agencies
    ):
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await bad
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    counts = await client.count_reads(agency_ids=AGENCIES)
    assert (counts.reads, counts.distinct_read_ids) == (2, 2)
