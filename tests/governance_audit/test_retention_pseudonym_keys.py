"""Crypto-shredding by the retention job with an advanced clock, against embedded ClickHouse: a key
period past the non-hit limit is destroyed, except while a legal hold keeps a tokenized read of
that period (the hold keeps exactly that read, plate included); the report says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from services.governance.policy import POLICIES_DIR, Policy, load_policy
from services.governance.pseudonymize import PeriodKeyStore, Pseudonymizer
from services.retention import holds
from services.retention.job import retention_report, run_retention

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["pseudonymization"] = {"enabled": True, "key_rotation": "1d"}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_policy(path)


async def test_shredding_waits_for_legal_holds_and_is_reported(
    clickhouse_client: Client, policy: Policy, tmp_path: Path
) -> None:
    client = clickhouse_client
    keys = PeriodKeyStore(tmp_path / "keys", DAY)
    tokens = Pseudonymizer(keys)
    base = datetime(2026, 3, 10, 12, tzinfo=UTC)
    reads = {
        # read_id: (captured_at); two periods of 40-day-old reads, one of them held, and a fresh one.
        "old-held": base - 40 * DAY,
        "old-other": base - 41 * DAY,
        "new": base - 2 * DAY,
    }
    client.insert(
        "reads",
        [
            [rid, tokens.tokenize("pd-a", "ABC123", at), "pd-a", "cam-1", at.replace(tzinfo=None)]
            for rid, at in reads.items()
        ],
        column_names=["read_id", "plate", "agency_id", "camera_id", "captured_at"],
    )
    held_period = keys.period_of(reads["old-held"])
    other_period = keys.period_of(reads["old-other"])
    hold = await holds.place_hold(
        client,
        None,
        agency_id="pd-a",
        case_number="CASE-9",
        read_ids=["old-held"],
        reason="evidence",
        actor="supervisor-1",
        now=base,
    )

    before = retention_report(client, policy, base, keys=keys)["pseudonym_keys"]["pd-a"]
    assert (before["past_limit"], before["held_past_limit"], len(before["live"])) == (1, 1, 3)

    summary = await run_retention(client, policy, base, None, keys)
    assert [d["period"] for d in summary["keys"]["destroyed"]] == [other_period]
    assert [d["period"] for d in summary["keys"]["kept_for_holds"]] == [held_period]
    # The held read is still findable by its plate; the other old period's tokens no longer are.
    assert tokens.search_tokens("pd-a", "ABC123", base - 45 * DAY, base) == [
        tokens.tokenize("pd-a", "ABC123", reads["old-held"]),
        tokens.tokenize("pd-a", "ABC123", reads["new"]),
    ]
    report = retention_report(client, policy, base, keys=keys)
    state = report["pseudonym_keys"]["pd-a"]
    assert (state["past_limit"], state["held_past_limit"]) == (0, 1)
    assert [p["period"] for p in state["destroyed"]] == [other_period]
    assert report["compliant"]

    # Released, the held read goes at the next pass, and its period's key with it.
    assert await holds.release_hold(client, None, hold.hold_id, actor="supervisor-1", now=base)
    second = await run_retention(client, policy, base, None, keys)
    assert [d["period"] for d in second["keys"]["destroyed"]] == [held_period]
    assert {str(r[0]) for r in client.query("SELECT read_id FROM reads").result_rows} == {"new"}
    assert list(keys.periods("pd-a")) == [keys.period_of(reads["new"])]
    assert retention_report(client, policy, base, keys=keys)["compliant"]
