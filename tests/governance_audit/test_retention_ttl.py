"""The ClickHouse TTL backstop on embedded ClickHouse: what the policy gives is what is in place,
a policy change re-applies it (audited), rows past limit + grace go at a TTL merge
(`OPTIMIZE ... FINAL`) even without the retention job, held rows stay until their hold is released
and the job's mark sync has run, and the job still leaves nothing past its limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from services.audit import store
from services.audit.client import AuditEvent
from services.governance.policy import POLICIES_DIR, Policy, load_policy
from services.retention import holds
from services.retention.job import retention_report, run_retention
from services.retention.ttl import apply_backstop, backstop_ttls
from tests.governance_audit.conftest import RunningAudit
from tests.governance_audit.test_retention import ALERT_COLUMNS, insert_reads_with_images, naive
from tests.waiting import until

pytestmark = pytest.mark.integration

GRACE = timedelta(hours=1)
BACKSTOP_TABLES = ("reads", "reads_by_camera", "plates", "alerts", "read_images")


class Recorded:
    """Collects audit events (the AuditRecorder interface apply_backstop uses)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def write_policy(path: Path, nh_hit: str = "30d") -> Policy:
    """The default profile (hit reads and alerts 1y, non-hit reads and images 30d) plus agency-nh
    with minutes for non-hit reads and `nh_hit` for hit reads and alerts."""
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["agencies"]["agency-nh"] = {
        "retention": {"non_hit_reads": "5m", "hit_reads": nh_hit, "images": "5m", "alerts": nh_hit}
    }
    path.write_text(yaml.safe_dump(raw))
    return load_policy(path)


def ttl_shown(client: Client, table: str) -> str:
    create = str(client.query(f"SHOW CREATE TABLE {table}").result_rows[0][0])
    return " ".join(create.split())


def optimize(client: Client) -> None:
    """Merge every part of the backstop tables now, which applies their TTL."""
    for table in BACKSTOP_TABLES:
        client.command(f"OPTIMIZE TABLE {table} FINAL")


def read_ids(client: Client, table: str) -> set[str]:
    return {str(row[0]) for row in client.query(f"SELECT DISTINCT read_id FROM {table}").result_rows}


def plates(client: Client, table: str) -> set[str]:
    return {str(row[0]) for row in client.query(f"SELECT DISTINCT plate FROM {table}").result_rows}


async def test_ttl_in_place_follows_the_policy_and_a_change_reapplies_it(
    clickhouse_client: Client, tmp_path: Path
) -> None:
    client = clickhouse_client
    policy = write_policy(tmp_path / "policy.yaml")
    recorder = Recorded()

    changed = await apply_backstop(client, policy, GRACE, recorder, wait=True)  # type: ignore[arg-type]
    assert set(changed) == set(BACKSTOP_TABLES)
    for table, ttl in backstop_ttls(policy, GRACE).items():
        assert f" TTL {ttl} " in ttl_shown(client, table), table
        assert changed[table] == {"ttl": ttl, "previous": ""}
    assert "agency_id = 'agency-nh', 2595600" in ttl_shown(client, "reads")  # 30d + 1h
    assert " TTL " not in ttl_shown(client, "audit_log")
    # The same policy again: nothing differs, nothing is changed or recorded.
    assert await apply_backstop(client, policy, GRACE, recorder) == {}  # type: ignore[arg-type]
    assert len(recorder.events) == 1

    # agency-nh now keeps hits 60 days: the tables whose limit depends on it change.
    changed_policy = write_policy(tmp_path / "policy.yaml", nh_hit="60d")
    again = await apply_backstop(client, changed_policy, GRACE, recorder, wait=True)  # type: ignore[arg-type]
    assert set(again) == {"reads", "reads_by_camera", "plates", "alerts"}
    assert again["reads"]["previous"] == backstop_ttls(policy, GRACE)["reads"]
    assert "agency_id = 'agency-nh', 5187600" in ttl_shown(client, "reads")  # 60d + 1h
    event = recorder.events[-1]
    assert (event.kind, event.action, event.actor) == ("policy_change", "retention.ttl_backstop", "retention")
    assert event.details["policy_sha256"] == changed_policy.fingerprint()
    assert event.details["tables"] == again
    report = retention_report(client, changed_policy, datetime.now(UTC))
    assert report["ttl_backstop"]["reads"]["current"]


def seed(client: Client, now: datetime) -> None:
    reads = {
        # agency-a: reads kept 1y (hits) at most, so the backstop is 1y + 1h for all its reads.
        "a-400d": ("agency-a", timedelta(days=400)),
        "a-400d-held": ("agency-a", timedelta(days=400)),
        "a-40d": ("agency-a", timedelta(days=40)),
        # agency-nh: at most 30d (hits), backstop 30d + 1h.
        "nh-40d": ("agency-nh", timedelta(days=40)),
        "nh-1d": ("agency-nh", timedelta(days=1)),
    }
    insert_reads_with_images(client, reads, now)
    alert_rows: list[list[Any]] = [
        [f"alert-{rid}", rid, f"P-{rid}", "h1", "Stolen", "e1", "exact", False, False, "confirmed",
         naive(now - reads[rid][1]), reads[rid][0], "cam-1", naive(now)]
        for rid in ("a-400d", "a-400d-held", "nh-40d")
    ]  # fmt: skip
    client.insert("alerts", alert_rows, column_names=ALERT_COLUMNS)


async def test_backstop_removes_rows_past_limit_keeps_held_rows_until_released(
    clickhouse_client: Client, tmp_path: Path
) -> None:
    client = clickhouse_client
    policy = write_policy(tmp_path / "policy.yaml")
    now = datetime.now(UTC)
    seed(client, now)
    hold = await holds.place_hold(
        client,
        None,
        agency_id="agency-a",
        case_number="CASE-9",
        read_ids=["a-400d-held", "nh-40d"],  # nh-40d is another agency's: not kept by this hold
        reason="evidence",
        actor="supervisor-1",
        now=now,
    )
    for table in ("reads", "reads_by_camera", "plates", "alerts"):
        marked = client.query(f"SELECT plate FROM {table} WHERE legal_hold = 1").result_rows
        assert {str(row[0]) for row in marked} == {"P-a-400d-held"}, table

    # No retention pass at all: only the TTL.
    await apply_backstop(client, policy, GRACE, None, wait=True)
    optimize(client)
    kept = {"a-400d-held", "a-40d", "nh-1d"}
    assert read_ids(client, "reads") == kept
    # read_images has no agency column: its backstop is the longest image life, 30d + 1h.
    assert read_ids(client, "read_images") == {"a-400d-held", "nh-1d"}
    assert read_ids(client, "alerts") == {"a-400d-held"}
    assert plates(client, "reads_by_camera") == plates(client, "plates") == {f"P-{r}" for r in kept}

    # Released: the rows keep their mark (and so survive TTL merges) until the job's mark sync.
    assert await holds.release_hold(client, None, hold.hold_id, actor="supervisor-1", now=now)
    optimize(client)
    assert "a-400d-held" in read_ids(client, "reads")
    holds.sync_hold_marks(client)
    optimize(client)
    for table in ("reads", "read_images", "alerts"):
        assert "a-400d-held" not in read_ids(client, table), table
    for table in ("reads_by_camera", "plates"):
        assert "P-a-400d-held" not in plates(client, table), table

    # Within the backstop but past their limits (non-hit 30d and 5m), a-40d and nh-1d are the
    # job's to delete: the backstop never goes below the policy, the job brings the report to 0.
    before = retention_report(client, policy, now)["agencies"]
    assert [before[a]["non_hit_reads"]["past_limit"] for a in ("agency-a", "agency-nh")] == [1, 1]
    await run_retention(client, policy, now, None)
    assert retention_report(client, policy, now)["compliant"]
    assert read_ids(client, "reads") == set()


async def test_retention_component_sets_the_backstop_at_start_audited(
    clickhouse_client: Client, audit_component: RunningAudit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.common.health import HealthState
    from services.retention.main import run_periodically
    from services.retention.settings import RetentionSettings

    client = clickhouse_client
    path = tmp_path / "policy.yaml"
    monkeypatch.setenv("PLATEWATCH_POLICY_FILE", str(path))

    async def start_once(policy: Policy) -> None:
        stop = asyncio.Event()
        settings = RetentionSettings(retention_interval_seconds=3600)
        task = asyncio.create_task(run_periodically(settings, stop, HealthState()))
        try:
            wanted = backstop_ttls(policy, GRACE)["reads"]
            await until(lambda: f" TTL {wanted} " in ttl_shown(client, "reads"), "the TTL in place", 60)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)

    def ttl_changes() -> list[store.Entry]:
        return [e for e in store.iter_entries(client) if e.action == "retention.ttl_backstop"]

    first = write_policy(path)
    await start_once(first)
    await until(lambda: len(ttl_changes()) == 1, "the TTL change in the audit chain", 30)
    # A changed policy at the next start: applied again, audited again.
    second = write_policy(path, nh_hit="60d")
    await start_once(second)
    await until(lambda: len(ttl_changes()) == 2, "the second TTL change in the audit chain", 30)
    entry = ttl_changes()[-1]
    assert (entry.kind, entry.actor) == ("policy_change", "retention")
    assert second.fingerprint() in entry.details_json
