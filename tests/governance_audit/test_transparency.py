"""`platewatch transparency-report` through AuditService on real Kafka + embedded ClickHouse: the
JSON and HTML carry the agency's cameras, reads, hits, outcomes, searches by purpose, refusals by
rule, sharing partners, retention compliance and the latest signed checkpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from services.audit.client import AuditEvent, AuditRecorder
from services.audit.settings import AuditSettings
from services.cli import app
from tests.governance_audit.conftest import RunningAudit
from tests.governance_audit.test_retention import ALERT_COLUMNS, READ_COLUMNS, naive
from tests.waiting import until

pytestmark = pytest.mark.integration


async def test_transparency_report(
    clickhouse_client: Client, audit_component: RunningAudit, tmp_path: Path
) -> None:
    client = clickhouse_client
    now = datetime.now(UTC)
    reads = [
        ("r1", "agency-a", "cam-1"),
        ("r2", "agency-a", "cam-1"),
        ("r3", "agency-a", "cam-2"),
        ("r4", "agency-b", "cam-9"),
    ]
    client.insert(
        "reads",
        [[rid, f"P{rid}", agency, cam, naive(now - timedelta(days=1))] for rid, agency, cam in reads],
        column_names=READ_COLUMNS,
    )
    stamp = naive(now - timedelta(days=1))
    client.insert(
        "alerts",
        [
            [
                "al1",
                "r1",
                "Pr1",
                "h1",
                "Stolen vehicles",
                "e1",
                "exact",
                False,
                False,
                "unconfirmed",
                stamp,
                "agency-a",
                "cam-1",
                stamp,
            ],
            [
                "al1",
                "r1",
                "Pr1",
                "h1",
                "Stolen vehicles",
                "e1",
                "exact",
                False,
                False,
                "confirmed",
                stamp,
                "agency-a",
                "cam-1",
                naive(now),
            ],
            [
                "al2",
                "r3",
                "Pr3",
                "h2",
                "AMBER",
                "e2",
                "exact",
                False,
                False,
                "dismissed",
                stamp,
                "agency-a",
                "cam-2",
                stamp,
            ],
        ],
        column_names=ALERT_COLUMNS,
    )
    settings = AuditSettings()
    async with AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="test") as recorder:
        for purpose, agencies in (
            ("stolen-vehicle", ["agency-a"]),
            ("stolen-vehicle", ["agency-a", "agency-c"]),
        ):
            await recorder.record(
                AuditEvent(
                    kind="search", actor="o1", agency_id="agency-a", action="POST /reads/search",
                    purpose_code=purpose, case_number="C1", result_count=2, details={"agency_ids": agencies},
                )
            )  # fmt: skip
        await recorder.record(
            AuditEvent(
                kind="refusal", actor="o1", agency_id="agency-a", action="POST /reads/search",
                outcome="refused", details={"rule": "purpose.forbidden"},
            )
        )  # fmt: skip
        await recorder.record(
            AuditEvent(
                kind="sharing", actor="x1", agency_id="agency-a", action="shared search",
                details={"partner_agency_id": "agency-d"},
            )
        )  # fmt: skip
        await recorder.record(AuditEvent(kind="search", actor="b", agency_id="agency-b", action="search"))
    await until(
        lambda: client.query("SELECT count() FROM audit_log").result_rows[0][0] == 5, "5 audit entries", 30
    )
    await until(
        lambda: client.query("SELECT count() FROM audit_checkpoints").result_rows[0][0] >= 1,
        "a checkpoint",
        30,
    )

    period = ["--from", f"{now - timedelta(days=7):%Y-%m-%d}", "--to", f"{now + timedelta(days=1):%Y-%m-%d}"]
    args = ["transparency-report", "--agency", "agency-a", *period, "--out", str(tmp_path)]
    args += ["--target", audit_component.target]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    html_file, json_file = sorted(await asyncio.to_thread(lambda: list(tmp_path.glob("transparency-*"))))
    data = json.loads(json_file.read_text())
    assert data["reads"]["total"] == 3
    assert {c["camera_id"]: int(c["reads"]) for c in data["cameras"]} == {"cam-1": 2, "cam-2": 1}
    assert {h["hotlist"]: int(h["hits"]) for h in data["hits_by_list"]} == {"AMBER": 1, "Stolen vehicles": 1}
    assert {(o["status"], int(o["alerts"])) for o in data["alert_outcomes"]} == {
        ("confirmed", 1),
        ("dismissed", 1),
    }
    assert [(s["purpose_code"], int(s["searches"])) for s in data["searches_by_purpose"]] == [
        ("stolen-vehicle", 2)
    ]
    assert [(r["rule"], int(r["refusals"])) for r in data["refusals_by_rule"]] == [("purpose.forbidden", 1)]
    assert [p["agency_id"] for p in data["sharing"]["partners_queried"]] == ["agency-c"]
    assert [p["agency_id"] for p in data["sharing"]["partners_received"]] == ["agency-d"]
    assert data["retention"]["compliant"] is True
    assert data["checkpoint"]["sequence"] >= 5
    html = html_file.read_text()
    for text in (
        "Transparency report: agency-a",
        "Stolen vehicles",
        "purpose.forbidden",
        "agency-c",
        "Compliant",
    ):
        assert text in html
    assert data["checkpoint"]["signature"] in html
