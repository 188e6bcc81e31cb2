"""Purpose-bound search: missing code, missing case number, unknown or forbidden purpose, data older
than the tier without a (valid, unexpired) approval, forbidden hotlist sources: all refused with the
rule named, and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.governance.policy import load_policy, policy_path
from tests.governance.conftest import HOTLIST_ID, PLATE, A, World, open_world
from tests.governance.helpers import auth_headers, default_policy_dict


def _refusals(world: World) -> list[tuple[str, str]]:
    return [(e.details["rule"], e.outcome) for e in world.audit.of_kind("refusal")]


@pytest.mark.parametrize(
    ("purpose", "case", "status", "rule"),
    [
        (None, "CASE-1", 422, "purpose.code_required"),
        ("", "CASE-1", 422, "purpose.code_required"),
        ("stolen-vehicle", None, 422, "purpose.case_number_required"),
        ("stolen-vehicle", "  ", 422, "purpose.case_number_required"),
        ("stolen-vehicle", "x", 422, "purpose.case_number_format"),
        ("looking-around", "CASE-1", 422, "purpose.unknown"),
        ("civil-immigration-enforcement", "CASE-1", 403, "purpose.forbidden.civil-immigration-enforcement"),
        ("first-amendment-activity", "CASE-1", 403, "purpose.forbidden.first-amendment-activity"),
    ],
)
async def test_search_and_image_view_refused_without_a_valid_purpose(
    world: World, purpose: str | None, case: str | None, status: int, rule: str
) -> None:
    headers = auth_headers(world.governance, "officer", A, purpose=purpose, case=case)
    search = await world.client.get("/api/v1/reads", params={"plate": PLATE}, headers=headers)
    image = await world.client.get("/api/v1/reads/read-a/crop.jpg", headers=headers)
    alert_image = await world.client.get("/api/v1/alerts/alert-a/crop.jpg", headers=headers)
    for response in (search, image, alert_image):
        assert response.status_code == status, response.text
        assert response.json()["rule"] == rule and rule in response.json()["detail"]
    assert _refusals(world) == [(rule, "refused")] * 3
    (event, *_) = world.audit.of_kind("refusal")
    assert event.actor == "agency-a-officer" and event.agency_id == A
    # Nothing reached the search service, nothing was audited as a search.
    assert world.search.queries == [] and world.audit.of_kind("search") == []


async def test_free_text_note_is_recorded_but_never_replaces_the_code(world: World) -> None:
    headers = auth_headers(world.governance, "officer", A, purpose=None)
    refused = await world.client.get(
        "/api/v1/reads", params={"plate": PLATE}, headers={**headers, "X-Purpose-Note": "stolen car"}
    )
    assert refused.status_code == 422
    headers = auth_headers(world.governance, "officer", A)
    allowed = await world.client.get(
        "/api/v1/reads", params={"plate": PLATE}, headers={**headers, "X-Purpose-Note": "silver sedan"}
    )
    assert allowed.status_code == 200
    (search,) = world.audit.of_kind("search")
    assert search.purpose_code == "stolen-vehicle" and search.details["purpose_note"] == "silver sedan"
    assert search.result_count == 1 and search.details["plate"] == PLATE


async def test_virginia_profile_permits_only_its_three_purposes() -> None:
    policy = load_policy(policy_path("virginia-strict")).model_dump(mode="json")
    async with open_world(policy) as world:
        for purpose, status, rule in [
            ("criminal-investigation", 200, None),
            ("missing-or-endangered-person", 200, None),
            ("stolen-vehicle-or-warrant", 200, None),
            ("traffic-enforcement", 403, "purpose.not_permitted"),
            ("civil-immigration-enforcement", 403, "purpose.forbidden.civil-immigration-enforcement"),
            ("stolen-vehicle", 422, "purpose.unknown"),
        ]:
            headers = auth_headers(world.governance, "officer", A, purpose=purpose)
            response = await world.client.get("/api/v1/reads", params={"plate": PLATE}, headers=headers)
            assert response.status_code == status, (purpose, response.text)
            if rule:
                assert response.json()["rule"] == rule
        assert [r for r, _ in _refusals(world)] == [
            "purpose.not_permitted",
            "purpose.forbidden.civil-immigration-enforcement",
            "purpose.unknown",
        ]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_old_data_needs_a_second_persons_approval_that_expires() -> None:
    clock = Clock()
    async with open_world(clock=clock) as world:
        client = world.client
        officer = auth_headers(world.governance, "officer", A, subject="off-1", case="CASE-77")
        old = {"plate": PLATE, "from": (clock.now - timedelta(days=200)).isoformat()}

        refused = await client.get("/api/v1/reads", params=old, headers=officer)
        assert refused.status_code == 403 and refused.json()["rule"] == "data_age.approval_required"

        # No `from`: the search is limited to the 90-day tier instead of refused.
        recent = await client.get("/api/v1/reads", params={"plate": PLATE}, headers=officer)
        assert recent.status_code == 200
        limited_from = getattr(world.search.queries[-1], "from").ToDatetime(tzinfo=UTC)
        assert limited_from == clock.now - timedelta(days=90)

        requested = await client.post(
            "/api/v1/approvals",
            json={
                "kind": "data_age",
                "case_number": "CASE-77",
                "purpose_code": "stolen-vehicle",
                "reason": "cold",
            },
            headers=officer,
        )
        assert requested.status_code == 201, requested.text
        approval_id = requested.json()["approval_id"]
        with_pending = {**officer, "X-Approval-Id": approval_id}
        pending = await client.get("/api/v1/reads", params=old, headers=with_pending)
        assert pending.status_code == 403 and "pending" in pending.json()["detail"]

        # The officer cannot approve (role), a supervisor of another agency cannot see it, the
        # requesting supervisor could not approve their own.
        decision = f"/api/v1/approvals/{approval_id}/decision"
        as_officer = await client.post(decision, json={"approve": True}, headers=officer)
        assert as_officer.status_code == 403 and as_officer.json()["rule"] == "role.approvals.decide"
        foreign = auth_headers(world.governance, "supervisor", "agency-b")
        assert (await client.post(decision, json={"approve": True}, headers=foreign)).status_code == 404
        supervisor = auth_headers(world.governance, "supervisor", A, subject="sup-1")
        granted = await client.post(decision, json={"approve": True}, headers=supervisor)
        assert granted.status_code == 200 and granted.json()["status"] == "approved"
        assert granted.json()["expires_at"].startswith("2026-06-02T12:00:00")

        allowed = await client.get("/api/v1/reads", params=old, headers=with_pending)
        assert allowed.status_code == 200, allowed.text
        # Only its requester, only for its case.
        other_case = {**with_pending, "X-Case-Number": "CASE-78"}
        assert (await client.get("/api/v1/reads", params=old, headers=other_case)).status_code == 403
        colleague = {**auth_headers(world.governance, "officer", A, subject="off-2", case="CASE-77")}
        colleague["X-Approval-Id"] = approval_id
        assert (await client.get("/api/v1/reads", params=old, headers=colleague)).status_code == 403

        clock.now += timedelta(hours=25)
        expired = await client.get("/api/v1/reads", params=old, headers=with_pending)
        assert expired.status_code == 403 and expired.json()["rule"] == "data_age.approval_required.expired"

        rules = [rule for rule, _ in _refusals(world)]
        assert rules.count("data_age.approval_required") == 4
        assert rules[-1] == "data_age.approval_required.expired"
        approvals = world.audit.of_kind("approval")
        assert [(e.actor, e.action) for e in approvals] == [
            ("off-1", "request approval"),
            ("sup-1", "grant approval"),
        ]


async def test_requester_cannot_approve_their_own_request(world: World) -> None:
    supervisor = auth_headers(world.governance, "supervisor", A, subject="sup-1")
    requested = await world.client.post(
        "/api/v1/approvals",
        json={"kind": "analytics", "scope": "convoy", "case_number": "CASE-9", "purpose_code": "homicide"},
        headers=supervisor,
    )
    assert requested.status_code == 201
    own = await world.client.post(
        f"/api/v1/approvals/{requested.json()['approval_id']}/decision",
        json={"approve": True},
        headers=supervisor,
    )
    assert own.status_code == 403 and own.json()["rule"] == "approval.second_person"
    not_gated = await world.client.post(
        "/api/v1/approvals",
        json={"kind": "analytics", "scope": "timeline", "case_number": "CASE-9", "purpose_code": "homicide"},
        headers=supervisor,
    )
    assert not_gated.status_code == 422 and not_gated.json()["rule"] == "approval.not_required"


@pytest.mark.parametrize(
    ("path_kind", "label"),
    [("name", "NCIC-IVF extract"), ("entry", "NCIC:IVF"), ("filename", "immigration violator file.csv")],
)
async def test_forbidden_hotlist_source_is_refused(world: World, path_kind: str, label: str) -> None:
    admin = auth_headers(world.governance, "admin", A)
    if path_kind == "name":
        response = await world.client.post("/api/v1/hotlists", json={"name": label}, headers=admin)
    elif path_kind == "entry":
        response = await world.client.post(
            f"/api/v1/hotlists/{HOTLIST_ID[A]}/entries",
            json={"entries": [{"plate": "ZZZ999", "source": label}]},
            headers=admin,
        )
    else:
        response = await world.client.post(
            f"/api/v1/hotlists/{HOTLIST_ID[A]}/import",
            params={"filename": label},
            content=b"plate,reason\nZZZ999,V\n",
            headers={**admin, "Content-Type": "text/csv"},
        )
    assert response.status_code == 403, response.text
    assert response.json()["rule"] == "hotlist_source.forbidden.ncic-immigration-violator"
    assert _refusals(world) == [("hotlist_source.forbidden.ncic-immigration-violator", "refused")]
    assert world.hotlists.imports == [] and world.audit.of_kind("hotlist_change") == []


async def test_csv_with_a_forbidden_source_column_is_refused_and_a_clean_one_imported(world: World) -> None:
    admin = {**auth_headers(world.governance, "admin", A), "Content-Type": "text/csv"}
    url = f"/api/v1/hotlists/{HOTLIST_ID[A]}/import"
    bad = b"plate,reason,source\nZZZ999,V,NCIC Immigration Violator File\n"
    refused = await world.client.post(url, content=bad, headers=admin)
    assert refused.status_code == 403 and refused.json()["rule"].startswith("hotlist_source.forbidden")
    good = await world.client.post(url, content=b"plate,reason\nZZZ999,V\n", headers=admin)
    assert good.status_code == 200, good.text
    (imported,) = world.hotlists.imports
    assert imported.csv == b"plate,reason\nZZZ999,V\n"


async def test_refusals_fail_closed_when_the_audit_log_is_down() -> None:
    class BrokenSink:
        async def record(self, event: object) -> None:
            raise ConnectionError("broker unreachable")

    async with open_world() as world:
        world.governance.audit_sink = BrokenSink()
        ok = auth_headers(world.governance, "officer", A)
        search = await world.client.get("/api/v1/reads", params={"plate": PLATE}, headers=ok)
        assert search.status_code == 503 and "audit" in search.json()["detail"]
        refused = await world.client.get(
            "/api/v1/reads",
            params={"plate": PLATE},
            headers={**ok, "X-Purpose-Code": "first-amendment-activity"},
        )
        assert refused.status_code == 503


def test_policy_dict_round_trips() -> None:
    assert default_policy_dict()["profile"] == "default"
