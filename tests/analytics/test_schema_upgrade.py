"""Upgrading a database that already holds reads: the derived tables of 0005/0007 are backfilled,
later inserts flow through the views exactly once, and the writer's retried block (same token) is
not derived twice."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from services.storage.migrations import MIGRATIONS_DIR, apply_migrations
from services.writer.rows import READS_COLUMNS, read_rows
from tests.analytics.conftest import Sighting, to_read


def _rows(plate: str, count: int, start: int) -> list[list[object]]:
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        at = datetime(2025, 5, 1, 8, i % 60, tzinfo=UTC)
        sighting = Sighting(f"{start + i:032x}", plate, "cam-01", "pd-a", at, "northbound", "red", 0.9)
        out.append(read_rows(to_read(sighting), now).read_row)
    return out


def _counts(client: Client) -> tuple[int, ...]:
    row = client.query(
        "SELECT (SELECT count() FROM reads), (SELECT count() FROM reads_by_camera), "
        "(SELECT sum(reads) FROM plates), (SELECT sum(reads) FROM read_counts_hourly)"
    ).result_rows[0]
    return tuple(int(v) for v in row)


def test_upgrade_backfills_and_views_derive_each_insert_once(
    clickhouse_client: Client, tmp_path: Path
) -> None:
    client = clickhouse_client
    # clickhouse_client is fully migrated; start again from the schema of 0001-0004.
    for table in ("reads_by_camera_mv", "plates_mv", "read_counts_hourly_mv", "cameras_mv"):
        client.command(f"DROP VIEW IF EXISTS {table}")
    for table in ("reads_by_camera", "plates", "read_counts_hourly", "cameras", "hotlist_entries", "reads"):
        client.command(f"DROP TABLE IF EXISTS {table}")
    client.command("DROP TABLE IF EXISTS schema_migrations")
    old = tmp_path / "migrations"
    old.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("000[1-4]_*.sql")):
        shutil.copy(path, old / path.name)
    apply_migrations(client, old)
    # The 0001 layout: times as DateTime64 columns.
    client.insert(
        "reads",
        [
            [
                f"{i:032x}",
                "OLD1",
                "pd-a",
                "cam-01",
                datetime(2025, 5, 1, 8, i, 1, tzinfo=UTC),
                datetime(2025, 5, 1, 8, i, 0, 250000, tzinfo=UTC),
                datetime(2025, 5, 1, 9, 0, tzinfo=UTC),
            ]
            for i in range(30)
        ],
        column_names=[
            "read_id",
            "plate",
            "agency_id",
            "camera_id",
            "captured_at",
            "first_seen",
            "ingested_at",
        ],
    )

    applied = [m.version for m in apply_migrations(client)]
    assert applied[:5] == [5, 6, 7, 8, 9]
    assert _counts(client) == (30, 30, 30, 30)
    # The copied times read back unchanged through the ALIAS columns of 0008.
    first = client.query(
        "SELECT first_seen, last_seen, ingested_at FROM reads WHERE read_id = {id:String}",
        {"id": f"{3:032x}"},
    ).result_rows[0]
    assert [t.replace(tzinfo=UTC) for t in first] == [
        datetime(2025, 5, 1, 8, 3, 0, 250000, tzinfo=UTC),
        datetime(2025, 5, 1, 8, 3, 1, tzinfo=UTC),
        datetime(2025, 5, 1, 9, 0, tzinfo=UTC),
    ]

    block = _rows("NEW1", 10, 1000)
    settings = {"insert_deduplication_token": "t-1", "deduplicate_blocks_in_dependent_materialized_views": 1}
    client.insert("reads", block, column_names=list(READS_COLUMNS), settings=settings)
    client.insert("reads", block, column_names=list(READS_COLUMNS), settings=settings)  # a retried batch
    assert _counts(client) == (40, 40, 40, 40)
    assert apply_migrations(client) == []
