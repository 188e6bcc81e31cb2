"""Cluster rendering of the migration DDL (services/storage/cluster.py)."""

from __future__ import annotations

import re

import pytest

from services.storage.cluster import SHARDING_KEYS, ClusterRenderError, render, render_statement
from services.storage.migrations import load_migrations


def all_statements() -> list[str]:
    return [s for m in load_migrations() for s in m.statements()]


def test_single_node_is_the_default_and_unchanged() -> None:
    statements = all_statements()
    assert render(statements, "", "platewatch") == statements


def test_every_table_becomes_replicated_local_plus_distributed() -> None:
    rendered = render(all_statements(), "pw", "platewatch")
    created = [s for s in rendered if s.startswith("CREATE TABLE")]
    locals_ = {re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s)[1] for s in created if "Replicated" in s}  # type: ignore[index]
    distributed = [s for s in created if "ENGINE = Distributed" in s]
    # No single-node engine survives, every table has a local replica table and a Distributed twin.
    assert not [s for s in rendered if re.search(r"ENGINE = (Replacing|Summing|Aggregating)?MergeTree", s)]
    # These only ever exist by renaming (migrations 0008, 0009).
    renamed_only = {"reads_0001", "plates_0005"}
    assert {f"{name}_local" for name in SHARDING_KEYS if name not in renamed_only} <= locals_
    distributed_names = {re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s)[1] for s in distributed}  # type: ignore[index]
    assert distributed_names == set(SHARDING_KEYS)
    for statement in distributed:
        name = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)[1]  # type: ignore[index]
        assert f"{name}_local" in locals_ or name in renamed_only
        assert f"Distributed(`pw`, `platewatch`, {name}_local, {SHARDING_KEYS[name]})" in statement
    reads_local = next(s for s in created if s.startswith("CREATE TABLE IF NOT EXISTS reads_local"))
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/platewatch/reads_local', '{replica}')"
        in reads_local
    )
    assert "ORDER BY (agency_id, plate, captured_at)" in reads_local
    alerts_local = next(s for s in created if s.startswith("CREATE TABLE IF NOT EXISTS alerts_local"))
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/platewatch/alerts_local', '{replica}', "
        "updated_at)" in alerts_local
    )
    assert all("ON CLUSTER `pw`" in s for s in rendered if not s.startswith("INSERT"))


def test_views_read_local_tables_and_write_where_the_target_is_sharded() -> None:
    views = {
        re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)", s)[1]: s  # type: ignore[index]
        for s in render(all_statements(), "pw", "platewatch")
        if s.startswith("CREATE MATERIALIZED VIEW")
    }
    assert all("FROM reads_local" in v for v in views.values())
    # plates is sharded by plate like reads: stays on the shard; reads_by_camera is sharded by camera.
    assert " TO plates_local AS" in views["plates_mv"]
    assert " TO reads_by_camera AS" in views["reads_by_camera_mv"]


def test_alter_add_column_reaches_the_distributed_table_too() -> None:
    out = render_statement("ALTER TABLE alerts ADD COLUMN IF NOT EXISTS note String DEFAULT ''", "pw", "db")
    assert out == [
        "ALTER TABLE alerts_local ON CLUSTER `pw` ADD COLUMN IF NOT EXISTS note String DEFAULT ''",
        "ALTER TABLE alerts ON CLUSTER `pw` ADD COLUMN IF NOT EXISTS note String DEFAULT ''",
    ]
    codec = render_statement("ALTER TABLE reads MODIFY COLUMN lat Float64 CODEC(ZSTD(1))", "pw", "db")
    assert codec == ["ALTER TABLE reads_local ON CLUSTER `pw` MODIFY COLUMN lat Float64 CODEC(ZSTD(1))"]


def test_tables_without_a_sharding_key_are_replicated_whole_on_every_node() -> None:
    out = render_statement(
        "CREATE TABLE IF NOT EXISTS small (x UInt8)\nENGINE = MergeTree\nORDER BY x", "pw", "db"
    )
    assert out == [
        "CREATE TABLE IF NOT EXISTS small ON CLUSTER `pw`\n(x UInt8)\n"
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/db/small', '{replica}')\nORDER BY x"
    ]


@pytest.mark.parametrize("statement", ["DROP TABLE reads", "CREATE VIEW v AS SELECT 1"])
def test_statements_it_cannot_distribute_are_errors(statement: str) -> None:
    with pytest.raises(ClusterRenderError):
        render_statement(statement, "pw", "db")


def test_drops_reach_every_node() -> None:
    assert render_statement("DROP VIEW IF EXISTS reads_by_camera_mv", "pw", "db") == [
        "DROP VIEW IF EXISTS reads_by_camera_mv ON CLUSTER `pw` SYNC"
    ]
    assert render_statement("DROP TABLE IF EXISTS reads_by_camera", "pw", "db") == [
        "DROP TABLE IF EXISTS reads_by_camera ON CLUSTER `pw` SYNC",
        "DROP TABLE IF EXISTS reads_by_camera_local ON CLUSTER `pw` SYNC",
    ]


def test_rename_moves_local_tables_and_rebuilds_their_distributed_tables() -> None:
    out = render_statement("RENAME TABLE reads TO reads_0001, reads_by_plate TO reads", "pw", "db")
    assert out == [
        "DROP TABLE IF EXISTS reads ON CLUSTER `pw` SYNC",
        "DROP TABLE IF EXISTS reads_by_plate ON CLUSTER `pw` SYNC",
        "RENAME TABLE reads_local TO reads_0001_local, reads_by_plate_local TO reads_local ON CLUSTER `pw`",
        "CREATE TABLE IF NOT EXISTS reads_0001 ON CLUSTER `pw` AS reads_0001_local\n"
        "ENGINE = Distributed(`pw`, `db`, reads_0001_local, cityHash64(plate))",
        "CREATE TABLE IF NOT EXISTS reads ON CLUSTER `pw` AS reads_local\n"
        "ENGINE = Distributed(`pw`, `db`, reads_local, cityHash64(plate))",
    ]


def test_rename_if_exists_keeps_its_guard() -> None:
    out = render_statement("RENAME TABLE IF EXISTS camera_reads TO reads_by_camera", "pw", "db")
    assert out[1] == "RENAME TABLE IF EXISTS camera_reads_local TO reads_by_camera_local ON CLUSTER `pw`"
