"""Migration file loading, statement splitting and the checksum rules (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.storage.migrations import (
    AppliedMigration,
    Migration,
    MigrationError,
    load_migrations,
    pending_migrations,
)


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


def test_shipped_migrations_load_in_order_and_create_the_three_tables() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].version == 1
    sql = "\n".join(s for m in migrations for s in m.statements())
    for table in ("reads", "read_images", "alerts"):
        assert f"CREATE TABLE IF NOT EXISTS {table}\n" in sql


def test_statements_split_on_trailing_semicolons_and_drop_comment_lines() -> None:
    sql = "-- why; not a split\nCREATE TABLE a (x UInt8)\nENGINE = Log;\n\nSELECT 1;\n"
    migration = Migration(1, "x", sql)
    assert migration.statements() == ["CREATE TABLE a (x UInt8)\nENGINE = Log", "SELECT 1"]


def test_pending_are_the_unapplied_ones_in_version_order(tmp_path: Path) -> None:
    _write(tmp_path, "0002_second.sql", "SELECT 2;")
    _write(tmp_path, "0001_first.sql", "SELECT 1;")
    _write(tmp_path, "0003_third.sql", "SELECT 3;")
    available = load_migrations(tmp_path)
    applied = [AppliedMigration(1, "first", available[0].checksum)]
    assert [m.version for m in pending_migrations(available, applied)] == [2, 3]
    assert [m.version for m in pending_migrations(available, [])] == [1, 2, 3]


def test_a_changed_applied_migration_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "0001_first.sql", "SELECT 1;")
    original = load_migrations(tmp_path)[0].checksum
    _write(tmp_path, "0001_first.sql", "SELECT 1; -- edited")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending_migrations(load_migrations(tmp_path), [AppliedMigration(1, "first", original)])


def test_an_applied_migration_without_its_file_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "0001_first.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="no such file"):
        pending_migrations(load_migrations(tmp_path), [AppliedMigration(7, "future", "abc")])


@pytest.mark.parametrize("bad", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_misnamed_files_are_errors(tmp_path: Path, bad: str) -> None:
    _write(tmp_path, bad, "SELECT 1;")
    with pytest.raises(MigrationError, match="not named"):
        load_migrations(tmp_path)


def test_duplicate_versions_are_errors(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.sql", "SELECT 1;")
    _write(tmp_path, "0001_b.sql", "SELECT 2;")
    with pytest.raises(MigrationError, match="duplicate"):
        load_migrations(tmp_path)
