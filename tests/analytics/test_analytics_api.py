"""The analytics REST routes over the real search service and the generated data set: answers
match the gRPC answers, bad questions are 4xx with the reason, convoy needs the policy's second
approver, and each analysis is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from services.api.backends import Backends
from services.api.settings import ApiSettings
from tests.analytics.conftest import BASE, Analytics, camera_agency
from tests.governance.helpers import audit_events, auth_headers, default_policy_dict, make_governance


def _iso(delta: timedelta) -> str:
    return (BASE + delta).isoformat()


@pytest.fixture
async def api(
    analytics: Analytics, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    import os

    port = os.environ["PLATEWATCH_SEARCH_GRPC_PORT"]
    settings = ApiSettings(search_grpc_target=f"127.0.0.1:{port}", grpc_timeout_seconds=30)
    policy = default_policy_dict()
    policy["defaults"]["second_approver_analytics"] = []
    policy["defaults"]["data_age_tiers"] = []
    governance = make_governance(settings, policy=policy, clock=lambda: BASE + timedelta(days=12))
    backends = Backends.connect(settings)
    app = create_app(settings, backends=backends, alert_consumer_ready=lambda: True, governance=governance)
    headers = auth_headers(governance, "analyst", "pd-a")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
        yield client, governance
    await backends.close()


async def test_analytics_routes_answer_for_the_callers_agency(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, governance = api
    timeline = await client.get("/api/v1/analytics/timeline", params={"plate": "yrd047"})
    assert timeline.status_code == 200, timeline.text
    sightings = timeline.json()["sightings"]
    assert len(sightings) == 22 and all(camera_agency(s["camera_id"]) == "pd-a" for s in sightings)
    assert sightings[0]["crop_url"] == f"/api/v1/reads/{sightings[0]['read_id']}/crop.jpg"
    geo = (
        await client.get("/api/v1/analytics/timeline", params={"plate": "YRD047", "format": "geojson"})
    ).json()
    assert geo["type"] == "FeatureCollection" and geo["features"][0]["geometry"]["type"] == "LineString"
    assert len(geo["features"]) == 1 + 22

    site = {"camera_ids": ["cam-10", "cam-11"]}
    visits = await client.post(
        "/api/v1/analytics/visits",
        json={
            "plate": "YRD047",
            "site": site,
            "from": _iso(timedelta()),
            "to": _iso(timedelta(days=11)),
            "gap_seconds": 3600,
        },
    )
    assert visits.status_code == 200, visits.text
    assert visits.json()["visit_count"] == 8
    assert visits.json()["visits"][-1]["dwell_seconds"] is None

    window = {"from": _iso(timedelta()), "to": _iso(timedelta(days=11))}
    convoy = await client.post(
        "/api/v1/analytics/convoy", json={"plate": "CVY100", "delta_seconds": 30, **window}
    )
    assert convoy.status_code == 200, convoy.text
    assert convoy.json()["associates"][0]["plate"] == "CVY200"

    multi = await client.post(
        "/api/v1/analytics/multi-site",
        json={
            "windows": [
                {
                    "site": {"camera_ids": [cam]},
                    "from": _iso(timedelta(days=d, hours=1)),
                    "to": _iso(timedelta(days=d, hours=2)),
                }
                for cam, d in (("cam-03", 2), ("cam-07", 4), ("cam-12", 6))
            ]
        },
    )
    assert multi.status_code == 200, multi.text
    assert [p["plate"] for p in multi.json()["plates"]] == ["MLT003"]

    stats = await client.get("/api/v1/analytics/dashboard", params={**window, "group_by": "agency"})
    assert stats.status_code == 200, stats.text
    assert [row["agency_id"] for row in stats.json()["rows"]] == ["pd-a"]

    # Extended plate search on /reads: fuzzy, and a geo circle.
    fuzzy = await client.get("/api/v1/reads", params={"plate": "ODB125", "fuzzy": "true"})
    assert fuzzy.status_code == 200, fuzzy.text
    assert {r["plate"] for r in fuzzy.json()["reads"]} <= {"0DB125", "ODB12S"}

    kinds = [e.action for e in audit_events(governance).events]
    for action in ("vehicle timeline", "visit frequency", "convoy analysis", "multi-site analysis"):
        assert action in kinds


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "/api/v1/reads", {"plate": "**"}),
        ("get", "/api/v1/reads", {"plate": "ABC", "within": "1,1;1,2;2,2;2,1"}),  # does not close
        ("get", "/api/v1/analytics/timeline", {"plate": "AB*"}),
        (
            "post",
            "/api/v1/analytics/convoy",
            {"plate": "CVY100", "from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"},
        ),
        (
            "post",
            "/api/v1/analytics/convoy",
            {"plate": "CVY100", "from": "2001-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"},
        ),
        (
            "post",
            "/api/v1/analytics/frequent-visitors",
            {"site": {}, "from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"},
        ),
        (
            "get",
            "/api/v1/analytics/dashboard",
            {"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"},
        ),
    ],
)
async def test_bad_questions_are_4xx_with_the_reason(
    api: tuple[httpx.AsyncClient, Any], method: str, path: str, payload: dict[str, Any]
) -> None:
    client, _ = api
    if method == "get":
        response = await client.get(path, params=payload)
    else:
        response = await client.post(path, json=payload)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


async def test_convoy_needs_the_second_approver_the_policy_names(analytics: Analytics) -> None:
    import os

    settings = ApiSettings(search_grpc_target=f"127.0.0.1:{os.environ['PLATEWATCH_SEARCH_GRPC_PORT']}")
    governance = make_governance(settings, clock=lambda: BASE + timedelta(days=12))
    backends = Backends.connect(settings)
    app = create_app(settings, backends=backends, alert_consumer_ready=lambda: True, governance=governance)
    transport = httpx.ASGITransport(app=app)
    headers = auth_headers(governance, "analyst", "pd-a")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client:
            response = await client.post(
                "/api/v1/analytics/convoy",
                json={"plate": "CVY100", "from": _iso(timedelta()), "to": _iso(timedelta(days=11))},
            )
    finally:
        await backends.close()
    assert response.status_code == 403
    assert "analytics.second_approver_required" in response.text
