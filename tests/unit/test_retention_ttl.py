"""The TTL backstop's expressions from a policy, and their cluster rendering (no ClickHouse)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from services.governance.policy import POLICIES_DIR, Policy
from services.retention.ttl import TABLES, backstop_ttls
from services.storage.cluster import render
from services.storage.migrations import load_migrations

HOUR = timedelta(hours=1)


def policy_with(agencies: dict[str, dict[str, Any]]) -> Policy:
    raw = yaml.safe_load((POLICIES_DIR / "default.yaml").read_text())
    raw["agencies"] = {**raw["agencies"], **agencies}
    return Policy.model_validate(raw)


def retention(non_hit: str, hit: str, images: str, alerts: str) -> dict[str, Any]:
    return {"retention": {"non_hit_reads": non_hit, "hit_reads": hit, "images": images, "alerts": alerts}}


def test_one_limit_for_every_agency_needs_no_branches() -> None:
    ttls = backstop_ttls(policy_with({}), HOUR)
    # default profile: hit reads 1y, alerts 1y, images 30d; plus the hour of grace.
    year = 365 * 86400 + 3600
    assert ttls["reads"] == f"toDateTime(captured_at) + toIntervalSecond({year}) WHERE legal_hold = 0"
    assert ttls["reads_by_camera"] == f"captured_at + toIntervalSecond({year}) WHERE legal_hold = 0"
    assert ttls["plates"] == f"last_seen + toIntervalSecond({year}) WHERE legal_hold = 0"
    assert ttls["alerts"] == f"toDateTime(raised_at) + toIntervalSecond({year}) WHERE legal_hold = 0"
    month = 30 * 86400 + 3600
    assert ttls["read_images"] == f"toDateTime(captured_at) + toIntervalSecond({month}) WHERE legal_hold = 0"
    assert set(ttls) == {spec.table for spec in TABLES}


def test_agencies_with_other_limits_get_their_own_branch() -> None:
    policy = policy_with(
        {
            "agency-nh": retention("3m", "30d", "3m", "30d"),
            # non-hit longer than hit: a read's backstop is the longer of the two.
            "agency-x": retention("400d", "10d", "500d", "20d"),
        }
    )
    ttls = backstop_ttls(policy, timedelta(0))
    assert ttls["reads"] == (
        "toDateTime(captured_at) + toIntervalSecond("
        f"multiIf(agency_id = 'agency-nh', {30 * 86400}, agency_id = 'agency-x', {400 * 86400}, "
        f"{365 * 86400})) WHERE legal_hold = 0"
    )
    assert ttls["alerts"] == (
        "toDateTime(raised_at) + toIntervalSecond("
        f"multiIf(agency_id = 'agency-nh', {30 * 86400}, agency_id = 'agency-x', {20 * 86400}, {365 * 86400})"
        ") WHERE legal_hold = 0"
    )
    # read_images has no agency: the longest image life of any agency, an image never outliving
    # its read (agency-x: min(500d, 400d)).
    images = f"toDateTime(captured_at) + toIntervalSecond({400 * 86400})"
    assert ttls["read_images"] == f"{images} WHERE legal_hold = 0"


def test_an_agency_listed_with_the_default_limits_adds_no_branch_and_quotes_are_escaped() -> None:
    policy = policy_with(
        {"same": retention("30d", "1y", "30d", "1y"), "o'neil": retention("1d", "2d", "1d", "2d")}
    )
    assert "'o\\'neil'" in backstop_ttls(policy, HOUR)["reads"]
    assert "'same'" not in backstop_ttls(policy, HOUR)["reads"]


def test_legal_hold_migration_renders_for_a_cluster() -> None:
    (migration,) = [m for m in load_migrations() if m.name == "legal_hold_marks"]
    rendered = render(migration.statements(), "c1", "platewatch")
    # ADD COLUMN reaches the local tables and the Distributed ones (which must know the column).
    add = "ADD COLUMN IF NOT EXISTS legal_hold UInt8 DEFAULT 0"
    assert f"ALTER TABLE reads_local ON CLUSTER `c1` {add}" in rendered
    assert f"ALTER TABLE reads ON CLUSTER `c1` {add}" in rendered
    assert any(s.startswith("ALTER TABLE plates_local ON CLUSTER `c1` ADD COLUMN") for s in rendered)
    # A setting of the storage engine only on the local tables.
    setting = "MODIFY SETTING materialize_ttl_recalculate_only = 1"
    assert f"ALTER TABLE alerts_local ON CLUSTER `c1` {setting}" in rendered
    assert not any(s.startswith("ALTER TABLE alerts ON CLUSTER") and "MODIFY SETTING" in s for s in rendered)
    assert render(migration.statements(), "", "platewatch") == migration.statements()


def test_the_ttl_goes_to_the_local_tables_on_a_cluster() -> None:
    ttl = backstop_ttls(policy_with({}), HOUR)["reads"]
    assert render([f"ALTER TABLE reads MODIFY TTL {ttl}"], "c1", "platewatch") == [
        f"ALTER TABLE reads_local ON CLUSTER `c1` MODIFY TTL {ttl}"
    ]
