"""The audit API routes (services/api/audit_routes.py) over a real AuditService (in-process audit
component, Kafka, embedded ClickHouse): roles, own-agency scope, oversight refused individual
entries, verification, checkpoint, legal holds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from services.api.audit_routes import router
from services.api.security import Governance
from services.audit.client import AuditEvent, AuditRecorder
from services.audit.settings import AuditSettings
from tests.governance.helpers import audit_events, auth_headers, make_governance
from tests.governance_audit.conftest import RunningAudit
from tests.waiting import until

pytestmark = pytest.mark.integration
BASE = "/api/v1/audit"


@pytest.fixture
async def api(audit_component: RunningAudit) -> AsyncIterator[tuple[httpx.AsyncClient, Governance]]:
    governance = make_governance()
    app = FastAPI()
    app.state.governance = governance
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, governance


def headers(governance: Governance, role: str, agency: str = "agency-a") -> dict[str, str]:
    return auth_headers(governance, role, agency, purpose=None, case=None)


async def test_audit_routes(
    clickhouse_client: Client, audit_component: RunningAudit, api: tuple[httpx.AsyncClient, Governance]
) -> None:
    client, governance = api
    settings = AuditSettings()
    async with AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="test") as recorder:
        for agency in ("agency-a", "agency-b", "agency-a", "agency-b", "agency-a"):
            await recorder.record(
                AuditEvent(
                    kind="search",
                    actor=f"{agency}-officer",
                    agency_id=agency,
                    action="POST /reads/search",
                    purpose_code="stolen-vehicle",
                    case_number="C-1",
                    details={"plate": "ABC123"},
                )
            )
    await until(
        lambda: clickhouse_client.query("SELECT count() FROM audit_log").result_rows[0][0] == 5,
        "5 entries",
        30,
    )

    auditor = await client.get(f"{BASE}/entries", headers=headers(governance, "auditor"))
    assert auditor.status_code == 200, auditor.text
    entries = auditor.json()["entries"]
    assert [e["sequence"] for e in entries] == [1, 3, 5], "own agency only"
    assert entries[0]["details"] == {"plate": "ABC123"} and entries[0]["actor"] == "agency-a-officer"

    # Oversight sees aggregates only (verification, checkpoint, retention, transparency).
    oversight = await client.get(f"{BASE}/entries", headers=headers(governance, "oversight"))
    assert oversight.status_code == 403 and "audit.entries" in oversight.text

    refused = await client.get(f"{BASE}/entries", headers=headers(governance, "officer"))
    assert refused.status_code == 403
    assert any(e.kind == "refusal" for e in audit_events(governance).events)
    assert any(e.kind == "audit_read" for e in audit_events(governance).events)

    status = await client.get(f"{BASE}/verification", headers=headers(governance, "auditor"))
    assert status.status_code == 200 and status.json()["ok"] and status.json()["last_sequence"] == 5

    await until(
        lambda: clickhouse_client.query("SELECT count() FROM audit_checkpoints").result_rows[0][0], "cp", 30
    )
    checkpoint = await client.get(f"{BASE}/checkpoint", headers=headers(governance, "auditor"))
    assert checkpoint.status_code == 200
    assert bytes.fromhex(checkpoint.json()["public_key"]) == audit_component.public_key

    body = {"case_number": "CASE-9", "read_ids": ["r1", "r2"], "reason": "court order"}
    assert (
        await client.post(f"{BASE}/legal-holds", json=body, headers=headers(governance, "auditor"))
    ).status_code == 403
    placed = await client.post(f"{BASE}/legal-holds", json=body, headers=headers(governance, "supervisor"))
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["agency_id"] == "agency-a" and hold["read_ids"] == ["r1", "r2"]
    other = await client.post(
        f"{BASE}/legal-holds/{hold['hold_id']}/release", headers=headers(governance, "supervisor", "agency-b")
    )
    assert other.status_code == 404, "another agency cannot release it"
    released = await client.post(
        f"{BASE}/legal-holds/{hold['hold_id']}/release", headers=headers(governance, "supervisor")
    )
    assert released.status_code == 200 and released.json()["released"]
    listed = await client.get(f"{BASE}/legal-holds", headers=headers(governance, "supervisor"))
    assert listed.json()["holds"] == []
