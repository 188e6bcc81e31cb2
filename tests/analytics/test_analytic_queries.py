"""Every analytic query against a brute-force Python computation over the same generated reads
(tests/analytics/conftest.py), including the planted convoy, visit and multi-site answers."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.common.pb.platewatch.v1 import search_pb2
from tests.analytics.conftest import BASE, Analytics, Sighting, camera_position

AGENCIES = ["pd-a"]
BOTH = ["pd-a", "pd-b"]


def _window(message: object, start: datetime, end: datetime) -> None:
    getattr(message, "from").FromDatetime(start)
    message.to.FromDatetime(end)  # type: ignore[attr-defined]


def visible(analytics: Analytics, agencies: list[str]) -> list[Sighting]:
    return [s for s in analytics.data.sightings if s.agency_id in agencies]


def brute_visits(times: list[tuple[int, str]], gap: int) -> list[tuple[int, int, set[str], int]]:
    visits: list[tuple[int, int, set[str], int]] = []
    for ts, camera in sorted(times):
        if visits and ts - visits[-1][1] <= gap:
            start, _, cameras, count = visits[-1]
            visits[-1] = (start, ts, cameras | {camera}, count + 1)
        else:
            visits.append((ts, ts, {camera}, 1))
    return visits


async def test_plate_search_exact_partial_fuzzy_and_filters(analytics: Analytics) -> None:
    reads = visible(analytics, BOTH)

    async def plates(plate: str, **fields: object) -> list[tuple[str, str]]:
        query = search_pb2.PlateQuery(plate=plate, agency_ids=BOTH, page_size=500, **fields)  # type: ignore[arg-type]
        response = await analytics.stub.SearchReads(query)
        return [(r.plate, r.read_id) for r in response.reads]

    def expect(keep: object) -> list[tuple[str, str]]:
        rows = sorted((s for s in reads if keep(s)), key=lambda s: (s.at, s.read_id), reverse=True)  # type: ignore[operator]
        return [(s.plate, s.read_id) for s in rows]

    assert await plates("CVY100") == expect(lambda s: s.plate == "CVY100")
    assert await plates("*7X2*") == expect(lambda s: "7X2" in s.plate)
    assert {p for p, _ in await plates("*7X2*")} == {"7X2ABC", "AB7X2"}
    assert await plates("CVY?00") == expect(
        lambda s: s.plate[:3] == "CVY" and s.plate[4:] == "00" and len(s.plate) == 6
    )
    # Fuzzy: O/0/D and 5/S fold together.
    assert {p for p, _ in await plates("ODB125", fuzzy=True)} == {"0DB125", "ODB12S"}
    assert {p for p, _ in await plates("0D8*", fuzzy=True)} == {"0DB125", "ODB12S"}
    # Filters: confidence, direction, colour, geo circle around cam-03 (1 km apart: only cam-03).
    assert await plates("YRD047", min_confidence=0.8) == expect(
        lambda s: s.plate == "YRD047" and s.confidence >= 0.8
    )
    assert await plates("YRD047", directions=["northbound"], vehicle_colors=["red"]) == expect(
        lambda s: s.plate == "YRD047" and s.direction == "northbound" and s.color == "red"
    )
    lat, lon = camera_position("cam-03")
    circle = search_pb2.GeoCircle(lat=lat, lon=lon, radius_m=300)
    assert await plates("MLT003", circle=circle) == expect(
        lambda s: s.plate == "MLT003" and s.camera_id == "cam-03"
    )
    ring = [
        (lat - 0.01, lon - 0.005),
        (lat - 0.01, lon + 0.005),
        (lat + 0.01, lon + 0.005),
        (lat + 0.01, lon - 0.005),
    ]
    ring.append(ring[0])
    polygon = search_pb2.GeoPolygon(points=[search_pb2.GeoPoint(lat=a, lon=o) for a, o in ring])
    assert await plates("MLT003", polygon=polygon) == expect(
        lambda s: s.plate == "MLT003" and s.camera_id == "cam-03"
    )
    # Agency scope: pd-a never sees pd-b reads.
    response = await analytics.stub.SearchReads(search_pb2.PlateQuery(plate="BONLY1", agency_ids=AGENCIES))
    assert list(response.reads) == []


async def test_broad_pattern_pages_walk_every_match_newest_first(analytics: Analytics) -> None:
    """The first page takes only the most recently seen plates; later pages take all of them."""
    got: list[str] = []
    token = ""
    while True:
        query = search_pb2.PlateQuery(plate="*A*", agency_ids=AGENCIES, page_size=7, page_token=token)
        page = await analytics.stub.SearchReads(query)
        got += [r.read_id for r in page.reads]
        token = page.next_page_token
        if not token:
            break
    reads = [s for s in visible(analytics, AGENCIES) if "A" in s.plate]
    assert got == [s.read_id for s in sorted(reads, key=lambda s: (s.at, s.read_id), reverse=True)]
    first = await analytics.stub.SearchReads(
        search_pb2.PlateQuery(plate="*A*", agency_ids=AGENCIES, page_size=7)
    )
    assert [r.read_id for r in first.reads] == got[:7]


async def test_timeline_is_every_sighting_in_order(analytics: Analytics) -> None:
    response = await analytics.stub.VehicleTimeline(
        search_pb2.TimelineRequest(plate="YRD047", agency_ids=AGENCIES)
    )
    expected = sorted(
        (s for s in visible(analytics, AGENCIES) if s.plate == "YRD047"), key=lambda s: (s.at, s.read_id)
    )
    assert [r.read_id for r in response.sightings] == [s.read_id for s in expected]
    assert [r.direction for r in response.sightings] == [s.direction for s in expected]
    assert not response.truncated


async def test_visit_frequency_and_frequent_visitors(analytics: Analytics) -> None:
    site = search_pb2.Place(camera_ids=["cam-10", "cam-11"])
    start, end = BASE, BASE + timedelta(days=11)
    request = search_pb2.VisitsRequest(plate="YRD047", agency_ids=AGENCIES, site=site, gap_seconds=3600)
    _window(request, start, end)
    response = await analytics.stub.VisitFrequency(request)
    times = [
        (s.ts, s.camera_id)
        for s in visible(analytics, AGENCIES)
        if s.plate == "YRD047" and s.camera_id in ("cam-10", "cam-11")
    ]
    expected = brute_visits(times, 3600)
    assert response.visit_count == len(expected) == 8
    got = [(v.start.seconds, v.end.seconds, set(v.camera_ids), v.sightings) for v in response.visits]
    assert got == expected
    assert [v.dwell_seconds for v in response.visits] == [
        e - s if len(c) > 1 else 0 for s, e, c, _ in expected
    ]
    assert [v.dwell_known for v in response.visits] == [True] * 7 + [False]

    reverse = search_pb2.FrequentVisitorsRequest(
        agency_ids=AGENCIES, site=site, gap_seconds=3600, min_visits=3
    )
    _window(reverse, start, end)
    visitors = await analytics.stub.FrequentVisitors(reverse)
    by_plate: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for s in visible(analytics, AGENCIES):
        if s.camera_id in ("cam-10", "cam-11") and start <= s.at < end:
            by_plate[s.plate].append((s.ts, s.camera_id))
    counts = {p: len(brute_visits(t, 3600)) for p, t in by_plate.items()}
    want = sorted(((p, n) for p, n in counts.items() if n >= 3), key=lambda pn: (-pn[1], pn[0]))
    assert [(v.plate, v.visits) for v in visitors.visitors] == want[:100]
    assert ("YRD047", 8) in want


async def test_convoy_ranks_planted_followers(analytics: Analytics) -> None:
    start, end = BASE, BASE + timedelta(days=11)
    for delta, min_cameras in ((30, 2), (60, 1), (60, 2), (150, 2)):
        request = search_pb2.ConvoyRequest(
            plate="CVY100", agency_ids=AGENCIES, delta_seconds=delta, min_cameras=min_cameras
        )
        _window(request, start, end)
        response = await analytics.stub.Convoy(request)
        reads = visible(analytics, AGENCIES)
        targets = [s for s in reads if s.plate == "CVY100" and start <= s.at < end]
        matches: dict[str, tuple[set[tuple[str, int]], set[str]]] = defaultdict(lambda: (set(), set()))
        for t in targets:
            for r in reads:
                if r.plate != "CVY100" and r.camera_id == t.camera_id and abs(r.ts - t.ts) <= delta:
                    matches[r.plate][0].add((t.camera_id, t.ts))
                    matches[r.plate][1].add(r.camera_id)
        want = sorted(
            (
                (p, len(sights), len(cams))
                for p, (sights, cams) in matches.items()
                if len(cams) >= min_cameras
            ),
            key=lambda x: (-x[2], -x[1], x[0]),
        )
        got = [(a.plate, a.co_sightings, a.cameras) for a in response.associates]
        assert got == want[:100], (delta, min_cameras)
        assert response.target_sightings == len(targets)
    # With a 30 s delta only the close follower qualifies at 2+ cameras; the 20 s lag crosses
    # bucket boundaries, which the explicitly typed bucket array must still match.
    request = search_pb2.ConvoyRequest(plate="CVY100", agency_ids=AGENCIES, delta_seconds=30, min_cameras=2)
    _window(request, start, end)
    top = (await analytics.stub.Convoy(request)).associates[0]
    assert (top.plate, top.co_sightings) == ("CVY200", 8)


async def test_multisite_all_and_at_least_k(analytics: Analytics) -> None:
    windows = [("cam-03", 2), ("cam-07", 4), ("cam-12", 6)]

    def request(min_windows: int) -> search_pb2.MultiSiteRequest:
        out = search_pb2.MultiSiteRequest(agency_ids=AGENCIES, min_windows=min_windows)
        for camera, day in windows:
            window = out.windows.add(place=search_pb2.Place(camera_ids=[camera]))
            _window(window, BASE + timedelta(days=day, hours=1), BASE + timedelta(days=day, hours=2))
        return out

    seen: dict[str, set[int]] = defaultdict(set)
    for s in visible(analytics, AGENCIES):
        for index, (camera, day) in enumerate(windows):
            if s.camera_id == camera and BASE + timedelta(days=day, hours=1) <= s.at < BASE + timedelta(
                days=day, hours=2
            ):
                seen[s.plate].add(index)
    for k in (0, 2):
        need = k or len(windows)
        want = sorted(
            ((p, sorted(w)) for p, w in seen.items() if len(w) >= need), key=lambda x: (-len(x[1]), x[0])
        )
        response = await analytics.stub.MultiSite(request(k))
        assert [(m.plate, list(m.windows)) for m in response.plates] == want
    assert [m.plate for m in (await analytics.stub.MultiSite(request(0))).plates] == ["MLT003"]


async def test_dashboard_per_camera_hour_shift_and_agency(analytics: Analytics) -> None:
    start, end = BASE, BASE + timedelta(days=11)

    def hour(at: datetime) -> int:
        return int(at.replace(minute=0, second=0, microsecond=0).timestamp())

    def shift(at: datetime) -> int:
        starts = [6, 14, 22]
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        earlier = [h for h in starts if h <= at.hour]
        begin = (
            day + timedelta(hours=earlier[-1])
            if earlier
            else day - timedelta(days=1) + timedelta(hours=starts[-1])
        )
        return int(begin.timestamp())

    alerts = [a for a in analytics.data.alerts if a[1] in BOTH]
    for grouping, key in (
        (search_pb2.STATS_GROUPING_CAMERA_HOUR, lambda agency, cam, at: (agency, cam, hour(at))),
        (search_pb2.STATS_GROUPING_SHIFT, lambda agency, cam, at: (agency, "", shift(at))),
        (search_pb2.STATS_GROUPING_AGENCY, lambda agency, cam, at: (agency, "", 0)),
    ):
        counts: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
        for s in visible(analytics, BOTH):
            counts[key(s.agency_id, s.camera_id, s.at)][0] += 1
        for _, agency, camera, at in alerts:
            counts[key(agency, camera, at)][1] += 1
        request = search_pb2.DashboardRequest(agency_ids=BOTH, group_by=grouping)
        _window(request, start, end)
        response = await analytics.stub.DashboardStats(request)
        got = {(r.agency_id, r.camera_id, r.period_start.seconds): [r.reads, r.hits] for r in response.rows}
        assert got == dict(counts), grouping


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("SearchReads", search_pb2.PlateQuery(plate="", agency_ids=AGENCIES)),
        ("SearchReads", search_pb2.PlateQuery(plate="**??", agency_ids=AGENCIES)),
        ("SearchReads", search_pb2.PlateQuery(plate="ABC123")),  # no agencies
        (
            "SearchReads",
            search_pb2.PlateQuery(
                plate="ABC",
                agency_ids=AGENCIES,
                polygon=search_pb2.GeoPolygon(
                    points=[
                        search_pb2.GeoPoint(lat=1, lon=1),
                        search_pb2.GeoPoint(lat=1, lon=2),
                        search_pb2.GeoPoint(lat=2, lon=2),
                        search_pb2.GeoPoint(lat=2, lon=1),
                    ]
                ),
            ),
        ),
        ("VehicleTimeline", search_pb2.TimelineRequest(plate="AB*", agency_ids=AGENCIES)),
        (
            "FrequentVisitors",
            search_pb2.FrequentVisitorsRequest(agency_ids=AGENCIES, site=search_pb2.Place()),
        ),
        ("Convoy", search_pb2.ConvoyRequest(plate="CVY100", agency_ids=AGENCIES)),  # no window
        ("MultiSite", search_pb2.MultiSiteRequest(agency_ids=AGENCIES)),
        ("DashboardStats", search_pb2.DashboardRequest(agency_ids=AGENCIES)),
    ],
)
async def test_bad_requests_are_invalid_arguments(
    analytics: Analytics, method: str, request_: object
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(analytics.stub, method)(request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_absurd_time_ranges_are_refused(analytics: Analytics) -> None:
    reversed_search = search_pb2.PlateQuery(plate="CVY100", agency_ids=AGENCIES)
    _window(reversed_search, BASE, BASE - timedelta(days=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await analytics.stub.SearchReads(reversed_search)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for start, end in (
        (BASE, BASE - timedelta(hours=1)),
        (datetime(1970, 1, 2, tzinfo=UTC), BASE),
        (BASE - timedelta(days=3000), BASE),
    ):
        request = search_pb2.ConvoyRequest(plate="CVY100", agency_ids=AGENCIES)
        _window(request, start, end)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await analytics.stub.Convoy(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bucket_array_literal_needs_its_cast(clickhouse_client: object) -> None:
    """The ClickHouse 26.9 trap the convoy query avoids: an untyped [b - 1, b, b + 1] over a UInt32
    is an Array(Variant(...)); the query casts it to Array(UInt32), which matches in IN."""
    client = clickhouse_client
    buckets = (
        "SELECT arrayJoin(CAST([b - 1, b, b + 1] AS Array(UInt32))) AS bucket FROM (SELECT toUInt32(8) AS b)"
    )
    rows = client.query(  # type: ignore[attr-defined]
        f"SELECT toTypeName(bucket), toUInt32(7) IN ({buckets}), toUInt32(10) IN ({buckets}) "
        f"FROM ({buckets}) LIMIT 1"
    ).result_rows
    assert rows == [("UInt32", 1, 0)]
