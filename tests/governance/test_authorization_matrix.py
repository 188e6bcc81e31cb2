"""Authorization matrix: every endpoint x every role x two agencies, without a sharing agreement and
with agreements sharing some or all data classes. Only what an agreement allows crosses agencies.

The expectations are written out here (ROLE_CAN, `shared`), independently of the implementation's
permission table, so a change to either shows up as a mismatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.governance.conftest import (
    AGENCIES,
    ALERT_ID,
    HOTLIST_ID,
    PLATE,
    READ_ID,
    A,
    B,
    World,
    open_world,
    sharing_policy,
)
from tests.governance.helpers import auth_headers

ROLES = ("officer", "analyst", "supervisor", "auditor", "admin", "oversight")
ROLE_CAN: dict[str, set[str]] = {
    "officer": {"search", "image", "stats", "hotlists.read", "alerts.read", "alerts.act", "approvals"},
    "analyst": {"search", "image", "stats", "hotlists.read", "alerts.read", "approvals"},
    "supervisor": {
        "search",
        "image",
        "stats",
        "hotlists.read",
        "hotlists.write",
        "alerts.read",
        "alerts.act",
        "approvals",
    },
    "auditor": {"stats"},
    "admin": {"stats", "hotlists.read", "hotlists.write"},
    "oversight": {"stats"},
}
ALL_CLASSES = ["reads", "images", "alerts", "hotlists", "statistics"]
# Policy variants: which data classes agency-b shares with agency-a (for purpose stolen-vehicle).
SHARING = {"none": [], "reads-only": ["reads"], "everything": ALL_CLASSES}


def other(agency: str) -> str:
    return B if agency == A else A


@dataclass
class Case:
    name: str
    call: Callable[[httpx.AsyncClient, dict[str, str], str], Awaitable[httpx.Response]]
    # (role abilities, caller agency, shared classes) -> (expected status, expected agencies or None)
    expect: Callable[[set[str], str, set[str]], tuple[int, set[str] | None]]
    # Agencies found in a 200 response (None: nothing to compare).
    agencies: Callable[[httpx.Response], set[str]] | None = None


def shared(caller: str, data_class: str, classes: set[str]) -> bool:
    """Only agency-b shares, only with agency-a."""
    return caller == A and data_class in classes


def visible(caller: str, data_class: str, classes: set[str]) -> set[str]:
    return {caller} | ({B} if shared(caller, data_class, classes) else set())


def gate(ability: str, can: set[str], ok: tuple[int, set[str] | None]) -> tuple[int, set[str] | None]:
    return ok if ability in can else (403, None)


def read_agencies(response: httpx.Response) -> set[str]:
    return {r["agency_id"] for r in response.json()["reads"]}


def hotlist_agencies(response: httpx.Response) -> set[str]:
    return {h["agency_id"] for h in response.json()["hotlists"]}


def alert_agencies(response: httpx.Response) -> set[str]:
    agency_of_read = {read_id: agency for agency, read_id in READ_ID.items()}
    return {agency_of_read[a["read_id"]] for a in response.json()["alerts"]}


CSV = {"Content-Type": "text/csv"}


def _cases() -> list[Case]:
    return [
        Case(
            "search reads",
            lambda c, h, x: c.get("/api/v1/reads", params={"plate": PLATE}, headers=h),
            lambda can, x, s: gate("search", can, (200, visible(x, "reads", s))),
            read_agencies,
        ),
        Case(
            "search reads for a purpose the agreement does not cover",
            lambda c, h, x: c.get(
                "/api/v1/reads", params={"plate": PLATE}, headers={**h, "X-Purpose-Code": "homicide"}
            ),
            lambda can, x, s: gate("search", can, (200, {x})),
            read_agencies,
        ),
        Case(
            "search the other agency explicitly",
            lambda c, h, x: c.get("/api/v1/reads", params={"plate": PLATE, "agency_id": other(x)}, headers=h),
            lambda can, x, s: gate("search", can, (200, {B}) if shared(x, "reads", s) else (403, None)),
            read_agencies,
        ),
        Case(
            "own read crop",
            lambda c, h, x: c.get(f"/api/v1/reads/{READ_ID[x]}/crop.jpg", headers=h),
            lambda can, x, s: gate("image", can, (200, None)),
        ),
        Case(
            "count reads",
            lambda c, h, x: c.get("/api/v1/stats/count", headers=h),
            lambda can, x, s: gate("stats", can, (200, visible(x, "statistics", s))),
            lambda r: {A, B} if r.json()["reads"] == 2 else {"own only"},
        ),
        Case(
            "list hotlists",
            lambda c, h, x: c.get("/api/v1/hotlists", headers=h),
            lambda can, x, s: gate("hotlists.read", can, (200, visible(x, "hotlists", s))),
            hotlist_agencies,
        ),
        Case(
            "other agency's hotlist entries",
            lambda c, h, x: c.get(f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries", headers=h),
            lambda can, x, s: gate(
                "hotlists.read", can, (200, None) if shared(x, "hotlists", s) else (404, None)
            ),
        ),
        Case(
            "create a hotlist",
            lambda c, h, x: c.post("/api/v1/hotlists", json={"name": "New list"}, headers=h),
            lambda can, x, s: gate("hotlists.write", can, (201, None)),
        ),
        Case(
            "add entries to the other agency's hotlist",
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries",
                json={"entries": [{"plate": "ZZZ999"}]},
                headers=h,
            ),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "remove an entry of the other agency's hotlist",
            lambda c, h, x: c.delete(f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries/e1", headers=h),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "import into the other agency's hotlist",
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/import",
                content=b"plate,reason\nZZZ999,V\n",
                headers={**h, **CSV},
            ),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "import into own hotlist",
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[x]}/import",
                content=b"plate,reason\nZZZ999,V\n",
                headers={**h, **CSV},
            ),
            lambda can, x, s: gate("hotlists.write", can, (200, None)),
        ),
        Case(
            "list alerts",
            lambda c, h, x: c.get("/api/v1/alerts", headers=h),
            lambda can, x, s: gate("alerts.read", can, (200, visible(x, "alerts", s))),
            alert_agencies,
        ),
        Case(
            "other agency's alert crop",
            lambda c, h, x: c.get(f"/api/v1/alerts/{ALERT_ID[other(x)]}/crop.jpg", headers=h),
            lambda can, x, s: gate("image", can, (200, None) if shared(x, "alerts", s) else (404, None)),
        ),
        Case(
            "act on the other agency's alert",
            lambda c, h, x: c.post(
                f"/api/v1/alerts/{ALERT_ID[other(x)]}/actions",
                json={"action": "confirm_visual", "actor": "x"},
                headers=h,
            ),
            lambda can, x, s: gate("alerts.act", can, (404, None)),
        ),
        Case(
            "act on own alert",
            lambda c, h, x: c.post(
                f"/api/v1/alerts/{ALERT_ID[x]}/actions",
                json={"action": "confirm_visual", "actor": "x"},
                headers=h,
            ),
            lambda can, x, s: gate("alerts.act", can, (200, None)),
        ),
        Case(
            "request an approval",
            lambda c, h, x: c.post(
                "/api/v1/approvals",
                json={"kind": "data_age", "case_number": "CASE-1", "purpose_code": "stolen-vehicle"},
                headers=h,
            ),
            lambda can, x, s: gate("approvals", can, (201, None)),
        ),
        Case("who am I", lambda c, h, x: c.get("/auth/me", headers=h), lambda can, x, s: (200, None)),
    ]


CASES = _cases()


async def _run_matrix(world: World, role: str, classes: set[str]) -> list[str]:
    mismatches: list[str] = []
    for caller in AGENCIES:
        headers = auth_headers(world.governance, role, caller)
        for case in CASES:
            response = await case.call(world.client, headers, caller)
            want_status, want_agencies = case.expect(ROLE_CAN[role], caller, classes)
            got: Any = response.status_code
            if response.status_code == 200 and case.agencies is not None and want_agencies is not None:
                got = (response.status_code, case.agencies(response))
                want: Any = (want_status, want_agencies)
                if case.name == "count reads":
                    want = (want_status, {A, B} if want_agencies == {A, B} else {"own only"})
            else:
                want = want_status
            if got != want:
                mismatches.append(
                    f"{role}@{caller} {case.name}: expected {want}, got {got}: {response.text[:160]}"
                )
    return mismatches


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sharing", list(SHARING))
async def test_matrix(sharing: str, role: str) -> None:
    classes = set(SHARING[sharing])
    policy = sharing_policy(SHARING[sharing]) if classes else None
    async with open_world(policy) as world:
        mismatches = await _run_matrix(world, role, classes)
    assert mismatches == [], "\n".join(mismatches)


@pytest.mark.parametrize("sharing", ["none", "reads-only", "everything"])
async def test_other_agencys_read_images_only_under_an_images_agreement(sharing: str) -> None:
    classes = set(SHARING[sharing])
    async with open_world(sharing_policy(SHARING[sharing]) if classes else None) as world:
        for caller in AGENCIES:
            headers = auth_headers(world.governance, "officer", caller)
            response = await world.client.get(
                f"/api/v1/reads/{READ_ID[other(caller)]}/frame.jpg", headers=headers
            )
            expected = 200 if shared(caller, "images", classes) else 404
            assert response.status_code == expected, (caller, sharing, response.text)


async def test_every_endpoint_requires_authentication(world: World) -> None:
    for case in CASES:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "pwk_nope_secret"}):
            response = await case.call(world.client, headers, A)
            assert response.status_code == 401, (case.name, headers, response.text)
    stream = await world.client.get("/api/v1/alerts/stream")
    assert stream.status_code == 401
    refused = [e for e in world.audit.of_kind("login") if e.outcome == "refused"]
    assert len(refused) == 3 * len(CASES) + 1


async def test_shared_search_is_audited_on_both_sides() -> None:
    async with open_world(sharing_policy(["reads"])) as world:
        headers = auth_headers(world.governance, "analyst", A, subject="analyst-1")
        response = await world.client.get("/api/v1/reads", params={"plate": PLATE}, headers=headers)
        assert response.status_code == 200 and read_agencies(response) == {A, B}
        (search,) = world.audit.of_kind("search")
        assert search.agency_id == A and search.actor == "analyst-1" and search.result_count == 2
        assert search.purpose_code == "stolen-vehicle" and search.case_number == "CASE-2024-001"
        assert search.details["agency_ids"] == [A, B] and search.details["agreement_ids"] == ["b-to-a"]
        (shared_side,) = world.audit.of_kind("sharing")
        assert shared_side.agency_id == B and shared_side.details["partner_agency_id"] == A
        assert shared_side.actor == "analyst-1" and shared_side.case_number == "CASE-2024-001"
        # The query the search service got was scoped to both agencies, nothing more.
        assert list(world.search.queries[-1].agency_ids) == [A, B]


async def test_expired_agreement_shares_nothing() -> None:
    policy = sharing_policy(ALL_CLASSES, expires_at="2020-01-01T00:00:00Z")
    async with open_world(policy) as world:
        headers = auth_headers(world.governance, "supervisor", A)
        reads = await world.client.get("/api/v1/reads", params={"plate": PLATE}, headers=headers)
        assert read_agencies(reads) == {A}
        alerts = await world.client.get("/api/v1/alerts", headers=headers)
        assert alert_agencies(alerts) == {A}
        assert world.audit.of_kind("sharing") == []


@pytest.mark.parametrize("sharing", ["none", "everything"])
async def test_alert_stream_carries_only_visible_alerts(sharing: str) -> None:
    from tests.governance.conftest import make_alert
    from tests.unit.test_api_alerts import open_stream

    classes = set(SHARING[sharing])
    async with open_world(sharing_policy(SHARING[sharing]) if classes else None) as world:
        app = world.client.app  # type: ignore[attr-defined]
        refused = await open_stream(
            app, "/api/v1/alerts/stream", auth_headers(world.governance, "oversight", A)
        )
        assert refused.start["status"] == 403
        await refused.close()
        # An officer of agency-b never sees agency-a's alerts; agency-a sees b's only when shared.
        stream = await open_stream(app, "/api/v1/alerts/stream", auth_headers(world.governance, "officer", B))
        stream_a = await open_stream(
            app, "/api/v1/alerts/stream", auth_headers(world.governance, "officer", A)
        )
        try:
            assert stream.start["status"] == 200
            world.broker.publish(make_alert(A, alert_id="live-a"))
            world.broker.publish(make_alert(B, alert_id="live-b"))
            _, event_id, _ = await stream.next_event()
            assert event_id == "live-b"
            _, first_for_a, _ = await stream_a.next_event()
            expected = "live-a"
            assert first_for_a == expected
            if shared(A, "alerts", classes):
                _, second_for_a, _ = await stream_a.next_event()
                assert second_for_a == "live-b"
        finally:
            await stream.close()
            await stream_a.close()
