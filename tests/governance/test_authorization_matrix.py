"""Authorization matrix: every endpoint x every role x two agencies, without a sharing agreement and
with agreements sharing some or all data classes. Only what an agreement allows crosses agencies.

The expectations are written out here (ROLE_CAN, `shared`), independently of the implementation's
permission table, so a change to either shows up as a mismatch. `test_every_route_is_in_the_matrix`
fails when a route of the app is neither in the matrix nor on the short list of public routes, so a
new endpoint cannot be forgotten.

A refusal is compared with its rule: "403 role" for a role refusal (rule `role.*`), "403 <rule>"
for any other (e.g. "403 agency.not_shared"), so a route refusing for the wrong reason is a mismatch.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from tests.governance.conftest import (
    AGENCIES,
    AGENCY_PLATE,
    ALERT_ID,
    HOLD_ID,
    HOTLIST_ID,
    PLATE,
    READ_ID,
    A,
    B,
    World,
    open_world,
    sharing_policy,
)
from tests.governance.helpers import auth_headers, default_policy_dict

ROLES = ("officer", "analyst", "supervisor", "auditor", "admin", "oversight")
ROLE_CAN: dict[str, set[str]] = {
    "officer": {
        "search",
        "image",
        "stats",
        "hotlists.read",
        "alerts.read",
        "alerts.act",
        "approvals",
        "cameras",
    },
    "analyst": {
        "search",
        "image",
        "stats",
        "hotlists.read",
        "alerts.read",
        "approvals",
        "analytics",
        "export",
        "cameras",
    },
    "supervisor": {
        "search",
        "image",
        "stats",
        "hotlists.read",
        "hotlists.write",
        "alerts.read",
        "alerts.act",
        "approvals",
        "approvals.decide",
        "analytics",
        "export",
        "holds",
        "cameras",
    },
    "auditor": {"stats", "audit", "audit.entries"},
    "admin": {"stats", "hotlists.read", "hotlists.write", "holds", "cameras"},
    "oversight": {"stats", "audit"},
}
ALL_CLASSES = ["reads", "images", "alerts", "hotlists", "statistics"]
# Policy variants: which data classes agency-b shares with agency-a (for purpose stolen-vehicle).
SHARING = {"none": [], "reads-only": ["reads"], "everything": ALL_CLASSES}
DENIED = "403 role"
NOW = datetime.now(UTC)
WINDOW = {"from": (NOW - timedelta(days=2)).isoformat(), "to": NOW.isoformat()}
SITE = {"camera_ids": ["cam-agency-a", "cam-agency-b"]}

# Routes that need no authentication (or only serve static, agency-free content).
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/auth/dev/jwks.json"),
    ("POST", "/auth/dev/token"),
    ("GET", "/console"),
    ("GET", "/console/config.json"),
}
# Routes whose agency scope is checked by a dedicated test below rather than a matrix case.
COVERED_ELSEWHERE = {
    ("GET", "/api/v1/alerts/stream"): "test_alert_stream_carries_only_visible_alerts",
}


def other(agency: str) -> str:
    return B if agency == A else A


Expectation = tuple[int | str, set[str] | None]


@dataclass
class Case:
    name: str
    # (method, path template) of the route the case calls (see test_every_route_is_in_the_matrix).
    route: tuple[str, str]
    call: Callable[[httpx.AsyncClient, dict[str, str], str], Awaitable[httpx.Response]]
    # (role abilities, caller agency, shared classes) -> (expected status, expected agencies or None)
    expect: Callable[[set[str], str, set[str]], Expectation]
    # Agencies found in a 2xx response (None: nothing to compare).
    agencies: Callable[[httpx.Response], set[str]] | None = None


def shared(caller: str, data_class: str, classes: set[str]) -> bool:
    """Only agency-b shares, only with agency-a."""
    return caller == A and data_class in classes


def visible(caller: str, data_class: str, classes: set[str]) -> set[str]:
    return {caller} | ({B} if shared(caller, data_class, classes) else set())


def gate(ability: str, can: set[str], ok: Expectation) -> Expectation:
    return ok if ability in can else (DENIED, None)


def read_agencies(response: httpx.Response) -> set[str]:
    return {r["agency_id"] for r in response.json()["reads"]}


def csv_agencies(response: httpx.Response) -> set[str]:
    return {row["agency_id"] for row in csv.DictReader(io.StringIO(response.text))}


def sighting_agencies(response: httpx.Response) -> set[str]:
    return {r["agency_id"] for r in response.json()["sightings"]}


def hotlist_agencies(response: httpx.Response) -> set[str]:
    return {h["agency_id"] for h in response.json()["hotlists"]}


def alert_agencies(response: httpx.Response) -> set[str]:
    agency_of_read = {read_id: agency for agency, read_id in READ_ID.items()}
    return {agency_of_read[a["read_id"]] for a in response.json()["alerts"]}


def camera_agencies(cameras: list[str]) -> set[str]:
    return {camera.removeprefix("cam-") for camera in cameras}


def plate_agencies(plates: list[str]) -> set[str]:
    agency_of_plate = {plate: agency for agency, plate in AGENCY_PLATE.items()}
    return {agency_of_plate[plate] for plate in plates}


def evidence_agencies(response: httpx.Response) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"read.json", "crop.jpg", "manifest.json"} <= names, names
        return {yaml.safe_load(archive.read("read.json"))["agency_id"]}


CSV = {"Content-Type": "text/csv"}


def approval_of(client: httpx.AsyncClient, agency: str) -> str:
    """The pending approval `_seed_approvals` made for `agency` (a made-up id before it ran)."""
    seeded: dict[str, str] = getattr(client, "seeded_approvals", {})
    return seeded.get(agency, f"not-seeded-{agency}")


def _other_evidence(can: set[str], x: str, s: set[str]) -> Expectation:
    if not shared(x, "reads", s):
        return gate("export", can, (404, None))
    if not shared(x, "images", s):
        return gate("export", can, ("403 agency.not_shared", None))
    return gate("export", can, (200, {B}))


def _cases() -> list[Case]:
    return [
        # Reads, images, statistics ---------------------------------------------------------------
        Case(
            "search reads",
            ("GET", "/api/v1/reads"),
            lambda c, h, x: c.get("/api/v1/reads", params={"plate": PLATE}, headers=h),
            lambda can, x, s: gate("search", can, (200, visible(x, "reads", s))),
            read_agencies,
        ),
        Case(
            "search reads for a purpose the agreement does not cover",
            ("GET", "/api/v1/reads"),
            lambda c, h, x: c.get(
                "/api/v1/reads", params={"plate": PLATE}, headers={**h, "X-Purpose-Code": "homicide"}
            ),
            lambda can, x, s: gate("search", can, (200, {x})),
            read_agencies,
        ),
        Case(
            "search the other agency explicitly",
            ("GET", "/api/v1/reads"),
            lambda c, h, x: c.get("/api/v1/reads", params={"plate": PLATE, "agency_id": other(x)}, headers=h),
            lambda can, x, s: gate(
                "search", can, (200, {B}) if shared(x, "reads", s) else ("403 agency.not_shared", None)
            ),
            read_agencies,
        ),
        Case(
            "own read crop",
            ("GET", "/api/v1/reads/{read_id}/crop.jpg"),
            lambda c, h, x: c.get(f"/api/v1/reads/{READ_ID[x]}/crop.jpg", headers=h),
            lambda can, x, s: gate("image", can, (200, None)),
        ),
        Case(
            "other agency's read frame",
            ("GET", "/api/v1/reads/{read_id}/frame.jpg"),
            lambda c, h, x: c.get(f"/api/v1/reads/{READ_ID[other(x)]}/frame.jpg", headers=h),
            lambda can, x, s: gate("image", can, (200, None) if shared(x, "images", s) else (404, None)),
        ),
        Case(
            "count reads",
            ("GET", "/api/v1/stats/count"),
            lambda c, h, x: c.get("/api/v1/stats/count", headers=h),
            lambda can, x, s: gate("stats", can, (200, visible(x, "statistics", s))),
            lambda r: {A, B} if r.json()["reads"] == 2 else {"own only"},
        ),
        # Hotlists -----------------------------------------------------------------------------------
        Case(
            "list hotlists",
            ("GET", "/api/v1/hotlists"),
            lambda c, h, x: c.get("/api/v1/hotlists", headers=h),
            lambda can, x, s: gate("hotlists.read", can, (200, visible(x, "hotlists", s))),
            hotlist_agencies,
        ),
        Case(
            "other agency's hotlist entries",
            ("GET", "/api/v1/hotlists/{hotlist_id}/entries"),
            lambda c, h, x: c.get(f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries", headers=h),
            lambda can, x, s: gate(
                "hotlists.read", can, (200, None) if shared(x, "hotlists", s) else (404, None)
            ),
        ),
        Case(
            "create a hotlist",
            ("POST", "/api/v1/hotlists"),
            lambda c, h, x: c.post("/api/v1/hotlists", json={"name": "New list"}, headers=h),
            lambda can, x, s: gate("hotlists.write", can, (201, None)),
        ),
        Case(
            "add entries to the other agency's hotlist",
            ("POST", "/api/v1/hotlists/{hotlist_id}/entries"),
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries",
                json={"entries": [{"plate": "ZZZ999"}]},
                headers=h,
            ),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "remove an entry of the other agency's hotlist",
            ("DELETE", "/api/v1/hotlists/{hotlist_id}/entries/{entry_id}"),
            lambda c, h, x: c.delete(f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/entries/e1", headers=h),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "import into the other agency's hotlist",
            ("POST", "/api/v1/hotlists/{hotlist_id}/import"),
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[other(x)]}/import",
                content=b"plate,reason\nZZZ999,V\n",
                headers={**h, **CSV},
            ),
            lambda can, x, s: gate("hotlists.write", can, (404, None)),
        ),
        Case(
            "import into own hotlist",
            ("POST", "/api/v1/hotlists/{hotlist_id}/import"),
            lambda c, h, x: c.post(
                f"/api/v1/hotlists/{HOTLIST_ID[x]}/import",
                content=b"plate,reason\nZZZ999,V\n",
                headers={**h, **CSV},
            ),
            lambda can, x, s: gate("hotlists.write", can, (200, None)),
        ),
        # Alerts -------------------------------------------------------------------------------------
        Case(
            "list alerts",
            ("GET", "/api/v1/alerts"),
            lambda c, h, x: c.get("/api/v1/alerts", headers=h),
            lambda can, x, s: gate("alerts.read", can, (200, visible(x, "alerts", s))),
            alert_agencies,
        ),
        Case(
            "other agency's alert crop",
            ("GET", "/api/v1/alerts/{alert_id}/crop.jpg"),
            lambda c, h, x: c.get(f"/api/v1/alerts/{ALERT_ID[other(x)]}/crop.jpg", headers=h),
            lambda can, x, s: gate("image", can, (200, None) if shared(x, "alerts", s) else (404, None)),
        ),
        Case(
            "act on the other agency's alert",
            ("POST", "/api/v1/alerts/{alert_id}/actions"),
            lambda c, h, x: c.post(
                f"/api/v1/alerts/{ALERT_ID[other(x)]}/actions",
                json={"action": "confirm_visual", "actor": "x"},
                headers=h,
            ),
            lambda can, x, s: gate("alerts.act", can, (404, None)),
        ),
        Case(
            "act on own alert",
            ("POST", "/api/v1/alerts/{alert_id}/actions"),
            lambda c, h, x: c.post(
                f"/api/v1/alerts/{ALERT_ID[x]}/actions",
                json={"action": "confirm_visual", "actor": "x"},
                headers=h,
            ),
            lambda can, x, s: gate("alerts.act", can, (200, None)),
        ),
        # Approvals (the other agency's pending approval is made by `_seed_approvals`) ---------------
        Case(
            "request an approval",
            ("POST", "/api/v1/approvals"),
            lambda c, h, x: c.post(
                "/api/v1/approvals",
                json={"kind": "data_age", "case_number": "CASE-1", "purpose_code": "stolen-vehicle"},
                headers=h,
            ),
            lambda can, x, s: gate("approvals", can, (201, None)),
        ),
        Case(
            "list approvals",
            ("GET", "/api/v1/approvals"),
            lambda c, h, x: c.get("/api/v1/approvals", headers=h),
            lambda can, x, s: gate("approvals", can, (200, {x})),
            lambda r: {a["agency_id"] for a in r.json()["approvals"]},
        ),
        Case(
            "decide the other agency's approval",
            ("POST", "/api/v1/approvals/{approval_id}/decision"),
            lambda c, h, x: c.post(
                f"/api/v1/approvals/{approval_of(c, other(x))}/decision",
                json={"approve": True},
                headers=h,
            ),
            lambda can, x, s: gate("approvals.decide", can, (404, None)),
        ),
        Case(
            "decide own agency's approval",
            ("POST", "/api/v1/approvals/{approval_id}/decision"),
            lambda c, h, x: c.post(
                f"/api/v1/approvals/{approval_of(c, x)}/decision",
                json={"approve": True},
                headers=h,
            ),
            lambda can, x, s: gate("approvals.decide", can, (200, {x})),
            lambda r: {r.json()["agency_id"]},
        ),
        # Analytics (second approvers are off in the matrix policy: the scope is what is tested) ----
        Case(
            "vehicle timeline",
            ("GET", "/api/v1/analytics/timeline"),
            lambda c, h, x: c.get("/api/v1/analytics/timeline", params={"plate": PLATE}, headers=h),
            lambda can, x, s: gate("search", can, (200, visible(x, "reads", s))),
            sighting_agencies,
        ),
        Case(
            "vehicle timeline for a purpose the agreement does not cover",
            ("GET", "/api/v1/analytics/timeline"),
            lambda c, h, x: c.get(
                "/api/v1/analytics/timeline",
                params={"plate": PLATE},
                headers={**h, "X-Purpose-Code": "homicide"},
            ),
            lambda can, x, s: gate("search", can, (200, {x})),
            sighting_agencies,
        ),
        Case(
            "visit frequency",
            ("POST", "/api/v1/analytics/visits"),
            lambda c, h, x: c.post(
                "/api/v1/analytics/visits", json={"plate": PLATE, "site": SITE}, headers=h
            ),
            lambda can, x, s: gate("analytics", can, (200, visible(x, "reads", s))),
            lambda r: camera_agencies([cam for v in r.json()["visits"] for cam in v["camera_ids"]]),
        ),
        Case(
            "frequent visitors",
            ("POST", "/api/v1/analytics/frequent-visitors"),
            lambda c, h, x: c.post(
                "/api/v1/analytics/frequent-visitors", json={**WINDOW, "site": SITE}, headers=h
            ),
            lambda can, x, s: gate("analytics", can, (200, visible(x, "reads", s))),
            lambda r: plate_agencies([v["plate"] for v in r.json()["visitors"]]),
        ),
        Case(
            "convoy",
            ("POST", "/api/v1/analytics/convoy"),
            lambda c, h, x: c.post("/api/v1/analytics/convoy", json={**WINDOW, "plate": PLATE}, headers=h),
            lambda can, x, s: gate("analytics", can, (200, visible(x, "reads", s))),
            lambda r: plate_agencies([a["plate"] for a in r.json()["associates"]]),
        ),
        Case(
            "multi-site",
            ("POST", "/api/v1/analytics/multi-site"),
            lambda c, h, x: c.post(
                "/api/v1/analytics/multi-site",
                json={"windows": [{**WINDOW, "site": SITE}, {**WINDOW, "site": SITE}]},
                headers=h,
            ),
            lambda can, x, s: gate("analytics", can, (200, visible(x, "reads", s))),
            lambda r: plate_agencies([m["plate"] for m in r.json()["plates"]]),
        ),
        Case(
            "dashboard",
            ("GET", "/api/v1/analytics/dashboard"),
            lambda c, h, x: c.get("/api/v1/analytics/dashboard", params=WINDOW, headers=h),
            lambda can, x, s: gate("analytics", can, (200, visible(x, "reads", s))),
            lambda r: {row["agency_id"] for row in r.json()["rows"]},
        ),
        # Exports ----------------------------------------------------------------------------------
        Case(
            "export reads as CSV",
            ("GET", "/api/v1/exports/reads"),
            lambda c, h, x: c.get("/api/v1/exports/reads", params={"plate": PLATE}, headers=h),
            lambda can, x, s: gate("export", can, (200, visible(x, "reads", s))),
            csv_agencies,
        ),
        Case(
            "export reads as JSON for a purpose the agreement does not cover",
            ("GET", "/api/v1/exports/reads"),
            lambda c, h, x: c.get(
                "/api/v1/exports/reads",
                params={"plate": PLATE, "format": "json"},
                headers={**h, "X-Purpose-Code": "homicide"},
            ),
            lambda can, x, s: gate("export", can, (200, {x})),
            read_agencies,
        ),
        Case(
            "export the other agency's reads explicitly",
            ("GET", "/api/v1/exports/reads"),
            lambda c, h, x: c.get(
                "/api/v1/exports/reads", params={"plate": PLATE, "agency_id": other(x)}, headers=h
            ),
            lambda can, x, s: gate(
                "export", can, (200, {B}) if shared(x, "reads", s) else ("403 agency.not_shared", None)
            ),
            csv_agencies,
        ),
        Case(
            "export a vehicle timeline",
            ("GET", "/api/v1/exports/timeline"),
            lambda c, h, x: c.get(
                "/api/v1/exports/timeline", params={"plate": PLATE, "format": "json"}, headers=h
            ),
            lambda can, x, s: gate("export", can, (200, visible(x, "reads", s))),
            sighting_agencies,
        ),
        Case(
            "evidence package of own read",
            ("GET", "/api/v1/exports/reads/{read_id}/evidence.zip"),
            lambda c, h, x: c.get(
                f"/api/v1/exports/reads/{READ_ID[x]}/evidence.zip", params={"plate": PLATE}, headers=h
            ),
            lambda can, x, s: gate("export", can, (200, {x})),
            evidence_agencies,
        ),
        Case(
            "evidence package of the other agency's read",
            ("GET", "/api/v1/exports/reads/{read_id}/evidence.zip"),
            lambda c, h, x: c.get(
                f"/api/v1/exports/reads/{READ_ID[other(x)]}/evidence.zip", params={"plate": PLATE}, headers=h
            ),
            _other_evidence,
            evidence_agencies,
        ),
        # Audit, retention, transparency, legal holds (never shared) --------------------------------
        Case(
            "audit entries",
            ("GET", "/api/v1/audit/entries"),
            lambda c, h, x: c.get("/api/v1/audit/entries", headers=h),
            lambda can, x, s: gate("audit.entries", can, (200, {x})),
            lambda r: {e["agency_id"] for e in r.json()["entries"]},
        ),
        Case(
            "audit chain verification",
            ("GET", "/api/v1/audit/verification"),
            lambda c, h, x: c.get("/api/v1/audit/verification", headers=h),
            lambda can, x, s: gate("audit", can, (200, None)),
        ),
        Case(
            "latest signed checkpoint",
            ("GET", "/api/v1/audit/checkpoint"),
            lambda c, h, x: c.get("/api/v1/audit/checkpoint", headers=h),
            lambda can, x, s: gate("audit", can, (200, None)),
        ),
        Case(
            "retention report",
            ("GET", "/api/v1/audit/retention"),
            lambda c, h, x: c.get("/api/v1/audit/retention", headers=h),
            lambda can, x, s: gate("audit", can, (200, {x})),
            lambda r: set(r.json()["agencies"]),
        ),
        Case(
            "transparency data",
            ("GET", "/api/v1/audit/transparency"),
            lambda c, h, x: c.get("/api/v1/audit/transparency", params={"from": WINDOW["from"]}, headers=h),
            lambda can, x, s: gate("audit", can, (200, {x})),
            lambda r: set(r.json()["agencies"]),
        ),
        Case(
            "list legal holds",
            ("GET", "/api/v1/audit/legal-holds"),
            lambda c, h, x: c.get("/api/v1/audit/legal-holds", headers=h),
            lambda can, x, s: gate("holds", can, (200, {x})),
            lambda r: {hold["agency_id"] for hold in r.json()["holds"]},
        ),
        Case(
            "place a legal hold",
            ("POST", "/api/v1/audit/legal-holds"),
            lambda c, h, x: c.post(
                "/api/v1/audit/legal-holds",
                json={"case_number": "CASE-1", "read_ids": [READ_ID[x]], "agency_id": other(x)},
                headers=h,
            ),
            lambda can, x, s: gate("holds", can, (201, {x})),
            lambda r: {r.json()["agency_id"]},
        ),
        Case(
            "release the other agency's legal hold",
            ("POST", "/api/v1/audit/legal-holds/{hold_id}/release"),
            lambda c, h, x: c.post(f"/api/v1/audit/legal-holds/{HOLD_ID[other(x)]}/release", headers=h),
            lambda can, x, s: gate("holds", can, (404, None)),
        ),
        Case(
            "release own legal hold",
            ("POST", "/api/v1/audit/legal-holds/{hold_id}/release"),
            lambda c, h, x: c.post(f"/api/v1/audit/legal-holds/{HOLD_ID[x]}/release", headers=h),
            lambda can, x, s: gate("holds", can, (200, {x})),
            lambda r: {r.json()["agency_id"]},
        ),
        # Cameras and identity -------------------------------------------------------------------------
        Case(
            "camera status",
            ("GET", "/api/v1/cameras"),
            lambda c, h, x: c.get("/api/v1/cameras", headers=h),
            lambda can, x, s: gate("cameras", can, (200, None)),
        ),
        Case(
            "who am I",
            ("GET", "/auth/me"),
            lambda c, h, x: c.get("/auth/me", headers=h),
            lambda can, x, s: (200, {x}),
            lambda r: {r.json()["agency_id"]},
        ),
    ]


CASES = _cases()


def matrix_policy(classes: list[str]) -> dict[str, Any]:
    """The default policy (plus agency-b's agreement with agency-a when `classes`), without second
    approvers so the convoy and multi-site answers are reached and their scope compared."""
    policy = sharing_policy(classes) if classes else default_policy_dict()
    policy["defaults"]["second_approver_analytics"] = []
    return policy


def _observed(response: httpx.Response) -> int | str:
    """The status, and for a 403 the rule ("role" for any role rule)."""
    if response.status_code != 403:
        return response.status_code
    rule = str(response.json().get("rule", ""))
    return DENIED if rule.startswith("role.") else f"403 {rule}"


async def _seed_approvals(world: World) -> None:
    """One pending approval per agency, requested by an analyst of that agency."""
    seeded: dict[str, str] = {}
    for agency in AGENCIES:
        headers = auth_headers(world.governance, "analyst", agency, subject=f"requester-{agency}")
        response = await world.client.post(
            "/api/v1/approvals",
            json={"kind": "data_age", "case_number": "CASE-9", "purpose_code": "stolen-vehicle"},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        seeded[agency] = response.json()["approval_id"]
    world.client.seeded_approvals = seeded  # type: ignore[attr-defined]


async def _run_matrix(world: World, role: str, classes: set[str]) -> list[str]:
    await _seed_approvals(world)
    mismatches: list[str] = []
    for caller in AGENCIES:
        headers = auth_headers(world.governance, role, caller)
        for case in CASES:
            response = await case.call(world.client, headers, caller)
            want_status, want_agencies = case.expect(ROLE_CAN[role], caller, classes)
            got: Any = _observed(response)
            want: Any = want_status
            success = 200 <= response.status_code < 300
            if success and case.agencies is not None and want_agencies is not None:
                got = (response.status_code, case.agencies(response))
                want = (want_status, want_agencies)
                if case.name == "count reads":
                    want = (want_status, {A, B} if want_agencies == {A, B} else {"own only"})
            if got != want:
                mismatches.append(
                    f"{role}@{caller} {case.name}: expected {want}, got {got}: {response.text[:160]}"
                )
    return mismatches


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sharing", list(SHARING))
async def test_matrix(sharing: str, role: str) -> None:
    classes = set(SHARING[sharing])
    async with open_world(matrix_policy(SHARING[sharing])) as world:
        mismatches = await _run_matrix(world, role, classes)
    assert mismatches == [], "\n".join(mismatches)


def _app_routes(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(method, path, in schema) of every route of the app, included routers flattened."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as objects
        contexts: Any = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    for route in contexts:
        methods = getattr(route, "methods", None)
        if not methods:
            continue  # mounts: static files
        for method in sorted(set(methods) - {"HEAD"}):
            yield method, route.path, bool(getattr(route, "include_in_schema", True))


async def test_every_route_is_in_the_matrix(world: World) -> None:
    app = world.client.app  # type: ignore[attr-defined]
    in_matrix = {case.route for case in CASES}
    covered = in_matrix | PUBLIC_ROUTES | set(COVERED_ELSEWHERE)
    routes = {(method, path) for method, path, _ in _app_routes(app)}
    schema = app.openapi()
    documented = {
        (method.upper(), path) for path, operations in schema["paths"].items() for method in operations
    }
    assert documented <= routes
    forgotten = sorted(routes - covered)
    assert forgotten == [], f"routes missing from the authorization matrix: {forgotten}"
    # And no case names a route that does not exist (a typo would leave the real one untested).
    assert sorted(in_matrix - routes) == []
    # The public allow-list only holds routes that really answer without credentials.
    for method, path in sorted(PUBLIC_ROUTES & routes):
        if method == "GET" and path not in ("/readyz",):
            response = await world.client.get(path)
            assert response.status_code in (200, 307), (path, response.status_code)


async def test_camera_status_shows_only_own_agency(world: World, tmp_path: Any) -> None:
    assert await _camera_agencies(world, tmp_path, A) == {A}
    assert await _camera_agencies(world, tmp_path, B) == {B}


async def _camera_agencies(world: World, tmp_path: Any, caller: str) -> set[str]:
    registry = tmp_path / "cameras.yaml"
    registry.write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {
                        "id": f"cam-{agency}",
                        "agency_id": agency,
                        "name": agency,
                        "site": agency,
                        "lat": 1.0,
                        "lon": 2.0,
                        "heading_deg": 0,
                    }
                    for agency in AGENCIES
                ]
            }
        )
    )
    app = world.client.app  # type: ignore[attr-defined]
    app.state.console_settings = app.state.console_settings.model_copy(
        update={"cameras_file": registry, "console_metrics_urls": ""}
    )
    response = await world.client.get(
        "/api/v1/cameras", headers=auth_headers(world.governance, "officer", caller)
    )
    assert response.status_code == 200, response.text
    return {camera["agency_id"] for camera in response.json()["cameras"]}


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


async def test_oversight_gets_aggregates_not_individual_audit_entries(world: World) -> None:
    oversight = auth_headers(world.governance, "oversight", A)
    refused = await world.client.get("/api/v1/audit/entries", headers=oversight)
    assert refused.status_code == 403 and refused.json()["rule"] == "role.audit.entries"
    assert [e.details["rule"] for e in world.audit.of_kind("refusal")] == ["role.audit.entries"]
    for aggregate in ("verification", "checkpoint", "retention"):
        response = await world.client.get(f"/api/v1/audit/{aggregate}", headers=oversight)
        assert response.status_code in (200, 404), (aggregate, response.text)
    auditor = auth_headers(world.governance, "auditor", A)
    filtered = await world.client.get(
        "/api/v1/audit/entries", params={"actor": f"{A}-officer"}, headers=auditor
    )
    assert filtered.status_code == 200 and filtered.json()["entries"][0]["actor"] == f"{A}-officer"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/analytics/convoy", {**WINDOW, "plate": PLATE}),
        ("/api/v1/analytics/multi-site", {"windows": [{**WINDOW, "site": SITE}, {**WINDOW, "site": SITE}]}),
    ],
)
async def test_gated_analytics_need_a_second_approver_under_the_default_policy(
    world: World, path: str, body: dict[str, Any]
) -> None:
    """The matrix turns second approvers off to compare scopes; the default policy keeps them."""
    response = await world.client.post(path, json=body, headers=auth_headers(world.governance, "analyst", A))
    assert response.status_code == 403 and response.json()["rule"] == "analytics.second_approver_required"
    assert [e.details["rule"] for e in world.audit.of_kind("refusal")] == [
        "analytics.second_approver_required"
    ]
    assert world.search.queries == []


@pytest.mark.parametrize(
    ("classes", "purpose", "expected"),
    [
        (["alerts"], "stolen-vehicle", 404),
        (["images"], "stolen-vehicle", 404),
        (["alerts", "images"], "homicide", 404),
        (["alerts", "images"], "stolen-vehicle", 200),
    ],
)
async def test_partners_alert_crop_needs_alerts_and_images_for_the_purpose(
    classes: list[str], purpose: str, expected: int
) -> None:
    """An image is the images class wherever it is shown: sharing alerts alone lets the partner see
    the alert, not its crop."""
    async with open_world(sharing_policy(classes)) as world:
        headers = auth_headers(world.governance, "officer", A, purpose=purpose)
        response = await world.client.get(f"/api/v1/alerts/{ALERT_ID[B]}/crop.jpg", headers=headers)
        assert response.status_code == expected, response.text
        own = await world.client.get(f"/api/v1/alerts/{ALERT_ID[A]}/crop.jpg", headers=headers)
        assert own.status_code == 200
        assert len(world.audit.of_kind("image_view")) == (2 if expected == 200 else 1)
