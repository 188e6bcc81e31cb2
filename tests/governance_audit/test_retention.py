"""Retention with an advanced clock against embedded ClickHouse, with deletions recorded through
real Kafka into the audit chain: rows past their limit are gone, held rows survive, the report
says so, and every deletion is in the verified audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from services.audit import store
from services.audit.client import AuditRecorder
from services.audit.settings import AuditSettings
from services.audit.verify import verify_stored
from services.cli import app
from services.governance.policy import POLICIES_DIR, Policy, load_policy
from services.retention import holds
from services.retention.job import retention_report, run_retention
from tests.governance_audit.conftest import RunningAudit
from tests.waiting import until

pytestmark = pytest.mark.integration

READ_COLUMNS = ["read_id", "plate", "agency_id", "camera_id", "captured_at"]
ALERT_COLUMNS = [
    "alert_id", "read_id", "plate", "hotlist_id", "hotlist_name", "entry_id", "match_kind",
    "region_mismatch", "stale", "status", "raised_at", "agency_id", "camera_id", "updated_at",
]  # fmt: skip


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Policy:
    """The default profile (agency-a: non-hit 30d, hit 1y, images 30d, alerts 1y) plus agency-nh
    with New Hampshire-like minutes for non-hit reads."""
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["agencies"]["agency-nh"] = {
        "retention": {
            "non_hit_reads": "5m",
            "hit_reads": "30d",
            "images": "5m",
            "alerts": "30d",
            "audit": "2y",
        }
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("PLATEWATCH_POLICY_FILE", str(path))
    return load_policy(path)


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def insert_reads_with_images(client: Client, reads: dict[str, tuple[str, timedelta]], now: datetime) -> None:
    """A read (plate "P-<read_id>", camera cam-1) and its images per `read_id: (agency, age)`,
    captured `age` before `now`."""
    client.insert(
        "reads",
        [[rid, f"P-{rid}", agency, "cam-1", naive(now - age)] for rid, (agency, age) in reads.items()],
        column_names=READ_COLUMNS,
    )
    client.insert(
        "read_images",
        [[rid, b"crop", b"frame", naive(now - age)] for rid, (_, age) in reads.items()],
        column_names=["read_id", "crop_jpeg", "frame_jpeg", "captured_at"],
    )


def seed(client: Client, base: datetime) -> None:
    reads = {
        "a-old-nonhit": ("agency-a", timedelta(days=40)),
        "a-old-nonhit-held": ("agency-a", timedelta(days=40)),
        "a-new-nonhit": ("agency-a", timedelta(days=10)),
        "a-hit": ("agency-a", timedelta(days=100)),
        "a-old-hit": ("agency-a", timedelta(days=400)),
        "nh-10m": ("agency-nh", timedelta(minutes=10)),
        "nh-1m": ("agency-nh", timedelta(minutes=1)),
    }
    insert_reads_with_images(client, reads, base)
    client.insert(
        "alerts",
        [
            [
                f"alert-{rid}",
                rid,
                f"P-{rid}",
                "h1",
                "Stolen",
                "e1",
                "exact",
                False,
                False,
                "confirmed",
                naive(base - reads[rid][1]),
                "agency-a",
                "cam-1",
                naive(base),
            ]
            for rid in ("a-hit", "a-old-hit")
        ],
        column_names=ALERT_COLUMNS,
    )


def ids(client: Client, table: str) -> set[str]:
    return {str(row[0]) for row in client.query(f"SELECT DISTINCT read_id FROM {table}").result_rows}


async def test_retention_deletes_past_limit_keeps_held_and_audits(
    clickhouse_client: Client, audit_component: RunningAudit, policy: Policy
) -> None:
    client = clickhouse_client
    base = datetime.now(UTC)
    seed(client, base)
    before = retention_report(client, policy, base)
    assert not before["compliant"]
    assert before["agencies"]["agency-a"]["non_hit_reads"]["past_limit"] == 2
    assert before["agencies"]["agency-a"]["hit_reads"]["past_limit"] == 1

    settings = AuditSettings()
    async with AuditRecorder(settings.kafka_bootstrap, settings.topic_prefix, source="test") as recorder:
        # agency-a holds its read and (ineffectively) agency-nh's: a hold keeps only its own agency's rows.
        hold = await holds.place_hold(
            client,
            recorder,
            agency_id="agency-a",
            case_number="CASE-7",
            read_ids=["a-old-nonhit-held", "nh-10m"],
            reason="evidence",
            actor="supervisor-1",
            now=base,
        )
        summary = await run_retention(client, policy, base, recorder)

        assert ids(client, "reads") == {"a-old-nonhit-held", "a-new-nonhit", "a-hit", "nh-1m"}
        # The hit read's image is past the 30-day images limit; the held read keeps its image.
        assert ids(client, "read_images") == {"a-old-nonhit-held", "a-new-nonhit", "nh-1m"}
        assert ids(client, "alerts") == {"a-hit"}
        deleted = {(d["agency_id"], d["data_class"]): (d["rows"], d["held_kept"]) for d in summary["deleted"]}
        assert deleted == {
            ("agency-a", "images"): (3, 1),
            ("agency-a", "non_hit_reads"): (1, 1),
            ("agency-a", "hit_reads"): (1, 0),
            ("agency-a", "alerts"): (1, 0),
            ("agency-nh", "images"): (1, 0),
            ("agency-nh", "non_hit_reads"): (1, 0),
        }

        after = retention_report(client, policy, base)
        assert after["compliant"]
        non_hit = after["agencies"]["agency-a"]["non_hit_reads"]
        assert (non_hit["past_limit"], non_hit["held_past_limit"], non_hit["rows"]) == (0, 1, 2)
        assert (
            non_hit["oldest"]
            == (base - timedelta(days=40)).replace(microsecond=base.microsecond // 1000 * 1000).isoformat()
        )

        # The CLI reads the same report through AuditService (wall clock, moments after `base`).
        # (In a thread: the service runs on this test's event loop.)
        args = ["retention", "report", "--json", "--target", audit_component.target]
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["agencies"]["agency-a"]["non_hit_reads"]["held_past_limit"] == 1

        # 25 days later the 10-day-old read is 35 days old: past the limit until the next pass.
        later = base + timedelta(days=25)
        assert (
            retention_report(client, policy, later)["agencies"]["agency-a"]["non_hit_reads"]["past_limit"]
            == 1
        )
        second = await run_retention(client, policy, later, recorder)
        assert ids(client, "reads") == {"a-old-nonhit-held", "a-hit"}
        assert retention_report(client, policy, later)["compliant"]

        # Released, the held read goes at the next pass.
        assert await holds.release_hold(client, recorder, hold.hold_id, actor="supervisor-1", now=later)
        third = await run_retention(client, policy, later, recorder)
        assert ids(client, "reads") == {"a-hit"}
        assert retention_report(client, policy, later)["compliant"]

    # Every deletion and both hold changes are in the audit chain, which verifies.
    def audited() -> list[tuple[str, str]]:
        return [(e.kind, e.action) for e in store.iter_entries(client)]

    expected = 2 + sum(len(run["deleted"]) for run in (summary, second, third))
    await until(lambda: len(audited()) == expected, f"{expected} audit entries", 30)
    entries = list(store.iter_entries(client))
    assert [e.action for e in entries if e.kind == "legal_hold"] == ["legal_hold.place", "legal_hold.release"]
    deletions = [json.loads(e.details_json) for e in entries if e.kind == "retention_delete"]
    assert sum(d["rows"] for d in deletions if d["data_class"] == "non_hit_reads") == 5
    assert all(e.actor == "retention" for e in entries if e.kind == "retention_delete")
    # Each deletion names the policy whose limit it enforced.
    assert {(d["policy_profile"], d["policy_sha256"]) for d in deletions} == {
        (policy.profile, policy.fingerprint())
    }
    assert verify_stored(client, audit_component.public_key).ok


async def test_retention_component_enforces_on_its_own(
    clickhouse_client: Client, audit_component: RunningAudit, policy: Policy
) -> None:
    from services.common.health import HealthState
    from services.retention.main import run_periodically
    from services.retention.settings import RetentionSettings

    base = datetime.now(UTC)
    seed(clickhouse_client, base)
    stop = asyncio.Event()
    settings = RetentionSettings(retention_interval_seconds=3600)
    task = asyncio.create_task(run_periodically(settings, stop, HealthState(), clock=lambda: base))
    try:
        await until(lambda: "a-old-nonhit" not in ids(clickhouse_client, "reads"), "the first pass", 60)
        await until(
            lambda: any(e.kind == "retention_delete" for e in store.iter_entries(clickhouse_client)),
            "its deletions in the audit chain",
            30,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert retention_report(clickhouse_client, policy, base)["compliant"]
