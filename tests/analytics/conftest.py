"""Fixtures for the analytics correctness tests: a small generated data set with planted answers,
stored through the writer's row mapping into embedded ClickHouse, and the search service running
in this process on the same client."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from services.common.health import HealthState
from services.common.net import free_port
from services.common.pb.platewatch.v1 import common_pb2, reads_pb2, search_pb2_grpc
from services.search.client import SearchClient
from services.search.main import serve
from services.writer.rows import READ_IMAGES_COLUMNS, READS_COLUMNS, read_rows

BASE = datetime(2025, 3, 1, tzinfo=UTC)
CAMERAS = [f"cam-{i:02d}" for i in range(20)]


def camera_agency(camera: str) -> str:
    return "pd-a" if int(camera[-2:]) < 15 else "pd-b"


def camera_position(camera: str) -> tuple[float, float]:
    """(lat, lon): cameras 1 km apart on a line of latitude."""
    return 51.5, -0.1 + int(camera[-2:]) * 0.0144


@dataclass(frozen=True)
class Sighting:
    """A stored read as the brute-force checks see it."""

    read_id: str
    plate: str
    camera_id: str
    agency_id: str
    at: datetime
    direction: str
    color: str
    confidence: float

    @property
    def ts(self) -> int:
        """Epoch seconds, truncated as the camera-ordered copy stores them."""
        return int(self.at.timestamp())


@dataclass
class Dataset:
    sightings: list[Sighting]
    alerts: list[tuple[str, str, str, datetime]]  # alert_id, agency, camera, raised_at


def generate(seed: int = 5) -> Dataset:
    """~2,000 background reads over 10 days plus planted convoys, visits and multi-site plates."""
    rng = random.Random(seed)
    out: list[Sighting] = []

    def add(plate: str, camera: str, at: datetime) -> None:
        out.append(
            Sighting(
                read_id=f"{int(at.timestamp() * 1000):012x}{len(out):020x}",
                plate=plate,
                camera_id=camera,
                agency_id=camera_agency(camera),
                at=at,
                direction=rng.choice(["northbound", "southbound"]),
                color=rng.choice(["white", "black", "red"]),
                confidence=round(rng.uniform(0.5, 1.0), 3),
            )
        )

    letters = "ABCDEFGHJKMNPRTUVWXY"
    plates = [
        f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(10, 99)}{rng.choice(letters)}"
        for _ in range(80)
    ]
    for _ in range(2000):
        # Skewed popularity: low indexes are read far more often.
        plate = plates[min(int(rng.paretovariate(1.2)) - 1, len(plates) - 1)]
        add(plate, rng.choice(CAMERAS), BASE + timedelta(seconds=rng.randint(0, 10 * 86400)))
    for plate in ("7X2ABC", "AB7X2", "0DB125", "ODB12S"):
        for _ in range(3):
            add(plate, rng.choice(CAMERAS), BASE + timedelta(seconds=rng.randint(0, 10 * 86400)))
    # Convoy: CVY100 passes 12 times; CVY200 trails 20 s behind at 8 passes (several cameras), CVY300
    # trails 50 s behind at 2 passes of one camera, NOISE1 is 200 s behind (outside any delta used).
    for i in range(12):
        camera = CAMERAS[1 + i % 6]
        # Some passes sit just before a 60 s bucket boundary, so followers land in the next bucket.
        at = BASE + timedelta(days=i % 9, hours=8, seconds=59 * 60 + 45 + (i % 3))
        add("CVY100", camera, at)
        if i < 8:
            add("CVY200", camera, at + timedelta(seconds=20))
        if i in (0, 6):
            add("CVY300", camera, at + timedelta(seconds=50))
        add("NOISE1", camera, at + timedelta(seconds=200))
    # Visits: YRD047 makes 7 visits to the site (cam-10 entry, cam-11 exit 25-40 min later) and one
    # single-camera visit; the reverse query should find it with >= 8 visits.
    for v in range(7):
        entry = BASE + timedelta(days=v, hours=14)
        add("YRD047", "cam-10", entry)
        add("YRD047", "cam-11", entry + timedelta(minutes=25 + 2 * v))
        add("YRD047", "cam-10", entry + timedelta(minutes=10))
    add("YRD047", "cam-11", BASE + timedelta(days=8, hours=3))
    # Multi-site: MLT003 in all three incident windows, MLT002 in two of them.
    for camera, day in (("cam-03", 2), ("cam-07", 4), ("cam-12", 6)):
        add("MLT003", camera, BASE + timedelta(days=day, hours=1, minutes=10))
    for camera, day in (("cam-03", 2), ("cam-12", 6)):
        add("MLT002", camera, BASE + timedelta(days=day, hours=1, minutes=20))
    # A plate only pd-b reads: invisible to pd-a.
    add("BONLY1", "cam-17", BASE + timedelta(days=1))
    alerts = [(f"al-{i}", s.agency_id, s.camera_id, s.at) for i, s in enumerate(rng.sample(out, 40))]
    return Dataset(out, alerts)


def to_read(s: Sighting) -> reads_pb2.Read:
    lat, lon = camera_position(s.camera_id)
    read = reads_pb2.Read(
        read_id=s.read_id,
        plate=s.plate,
        region="GB",
        confidence=s.confidence,
        camera=common_pb2.CameraInfo(camera_id=s.camera_id, agency_id=s.agency_id, lat=lat, lon=lon),
        direction=s.direction,
        vehicle=common_pb2.Vehicle(color=s.color),
        crop_jpeg=b"\xff\xd8crop",
    )
    read.captured_at.FromDatetime(s.at)
    return read


def store(client: Client, data: Dataset) -> None:
    now = datetime.now(UTC)
    rows = [read_rows(to_read(s), now) for s in data.sightings]
    # Several inserts, as the writer makes them, so the derived tables see several blocks.
    for start in range(0, len(rows), 700):
        chunk = rows[start : start + 700]
        client.insert("read_images", [r.image_row for r in chunk], column_names=list(READ_IMAGES_COLUMNS))
        client.insert("reads", [r.read_row for r in chunk], column_names=list(READS_COLUMNS))
    client.insert(
        "alerts",
        [
            [a, f"r-{a}", "P", "hl", "list", "e", "EXACT", False, False, "UNCONFIRMED", at, agency, cam, at]
            for a, agency, cam, at in data.alerts
        ]
        + [
            [
                data.alerts[0][0],
                "r",
                "P",
                "hl",
                "list",
                "e",
                "EXACT",
                False,
                False,
                "CONFIRMED",
                data.alerts[0][3],
                data.alerts[0][1],
                data.alerts[0][2],
                now,
            ]
        ],  # a second version of one alert
        column_names=[
            "alert_id",
            "read_id",
            "plate",
            "hotlist_id",
            "hotlist_name",
            "entry_id",
            "match_kind",
            "region_mismatch",
            "stale",
            "status",
            "raised_at",
            "agency_id",
            "camera_id",
            "updated_at",
        ],
    )


@dataclass
class Analytics:
    data: Dataset
    stub: search_pb2_grpc.SearchServiceStub
    db: Client


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate()


@pytest.fixture
async def analytics(
    clickhouse_client: Client, dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Analytics]:
    store(clickhouse_client, dataset)
    port = free_port()
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_PORT", str(port))
    monkeypatch.setenv("PLATEWATCH_SEARCH_GRPC_HOST", "127.0.0.1")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop, HealthState()))
    client = SearchClient(f"127.0.0.1:{port}")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await client.wait_serving(within=30)
        yield Analytics(dataset, search_pb2_grpc.SearchServiceStub(channel), clickhouse_client)
    finally:
        stop.set()
        await channel.close()
        await client.close()
        await asyncio.wait_for(task, timeout=30)
