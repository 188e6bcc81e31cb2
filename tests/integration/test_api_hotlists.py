"""Hotlist endpoints of the API against the real hotlist gRPC service (and its Kafka change log)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.api.app import create_app
from services.api.backends import Backends
from services.api.settings import ApiSettings
from services.common.health import HealthState
from services.common.net import free_port
from services.hotlist.main import serve as serve_hotlist
from services.hotlist.settings import HotlistSettings
from tests.governance.helpers import audit_events, auth_headers, make_governance

WAIT_S = 60


@pytest.fixture
async def api(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    hotlist_settings = HotlistSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        hotlist_grpc_host="127.0.0.1",
        hotlist_grpc_port=port,
        hotlist_consumer_group=f"hotlist-{topic_prefix}",
    )
    stop = asyncio.Event()
    hotlist = asyncio.create_task(serve_hotlist(stop, HealthState(), hotlist_settings))
    settings = ApiSettings(
        hotlist_grpc_target=f"127.0.0.1:{port}", search_grpc_target=f"127.0.0.1:{free_port()}"
    )
    backends = Backends.connect(settings)
    try:
        for _ in range(WAIT_S * 10):
            if await backends.hotlist.healthy(timeout_seconds=1):
                break
            assert not hotlist.done(), "hotlist service exited during start-up"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("hotlist service never reported SERVING")
        governance = make_governance(settings)
        app = create_app(
            settings, backends=backends, alert_consumer_ready=lambda: True, governance=governance
        )
        headers = auth_headers(governance, "supervisor", "agency-a")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers
        ) as client:
            client.governance = governance  # type: ignore[attr-defined]
            yield client
    finally:
        stop.set()
        await backends.close()
        await asyncio.wait_for(hotlist, 30)


async def test_hotlist_crud_through_the_api(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/hotlists", json={"name": "Stolen", "agency_id": "agency-a"})
    assert created.status_code == 201, created.text
    hotlist_id = created.json()["hotlist_id"]
    assert hotlist_id

    added = await api.post(
        f"/api/v1/hotlists/{hotlist_id}/entries",
        json={"entries": [{"plate": "abc123", "reason": "stolen_vehicle", "agency_id": "agency-a"}]},
    )
    assert added.status_code == 201, added.text
    (entry,) = added.json()["entries"]
    assert entry["plate"] == "ABC123" and entry["entry_id"]

    listed = await api.get(f"/api/v1/hotlists/{hotlist_id}/entries")
    assert [e["entry_id"] for e in listed.json()["entries"]] == [entry["entry_id"]]
    lists = await api.get("/api/v1/hotlists", params={"agency_id": "agency-a"})
    assert hotlist_id in [h["hotlist_id"] for h in lists.json()["hotlists"]]

    removed = await api.delete(f"/api/v1/hotlists/{hotlist_id}/entries/{entry['entry_id']}")
    assert removed.status_code == 204
    listed = await api.get(f"/api/v1/hotlists/{hotlist_id}/entries")
    assert listed.json()["entries"] == []

    missing = await api.get("/api/v1/hotlists/no-such-list/entries")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    # The list belongs to the caller's agency; another agency's is refused, naming the rule.
    own = await api.post("/api/v1/hotlists", json={"name": "No agency given"})
    assert own.status_code == 201 and own.json()["agency_id"] == "agency-a"
    other = await api.post("/api/v1/hotlists", json={"name": "Theirs", "agency_id": "agency-b"})
    assert other.status_code == 403 and other.json()["rule"] == "agency.write_own"
    changes = audit_events(api.governance).of_kind("hotlist_change")  # type: ignore[attr-defined]
    assert [e.action for e in changes] == ["create hotlist", "add entries", "remove entry", "create hotlist"]
