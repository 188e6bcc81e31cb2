"""Storage against the real embedded engine (chdb, in this process, no network): migrations,
insert-token deduplication as the writer relies on it, and concurrent use of the shared client."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from services.storage.client import connect, get_client
from services.storage.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations
from services.storage.settings import StorageSettings

WHEN = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)


def _image_rows(*ids: str) -> list[list[object]]:
    return [[read_id, b"\xff\xd8crop", b"", WHEN] for read_id in ids]


def _count(client: Client, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])


def test_migrations_create_the_schema_once(clickhouse_client: Client) -> None:
    tables = {row[0] for row in clickhouse_client.query("SHOW TABLES").result_rows}
    assert {"reads", "read_images", "alerts", "schema_migrations"} <= tables
    assert apply_migrations(clickhouse_client) == []
    assert _count(clickhouse_client, "schema_migrations") == len(list(MIGRATIONS_DIR.glob("*.sql")))


def test_a_changed_applied_migration_stops_the_start(clickhouse_dsn: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Log;\n")
    client = connect(StorageSettings(clickhouse_url=clickhouse_dsn, clickhouse_database="migration_test"))
    try:
        assert [m.version for m in apply_migrations(client, directory)] == [1]
        (directory / "0001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (x UInt16) ENGINE = Log;\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(client, directory)
    finally:
        client.close()


def test_insert_deduplication_token_drops_a_repeated_insert_on_chdb(clickhouse_client: Client) -> None:
    columns = ["read_id", "crop_jpeg", "frame_jpeg", "captured_at"]

    def insert(rows: list[list[object]], token: str) -> None:
        clickhouse_client.insert(
            "read_images", rows, column_names=columns, settings={"insert_deduplication_token": token}
        )

    insert(_image_rows("a", "b"), "reads/0/0-1")
    # Same token, even with different content: ClickHouse treats it as the same insert.
    insert(_image_rows("a", "b"), "reads/0/0-1")
    insert(_image_rows("x"), "reads/0/0-1")
    assert _count(clickhouse_client, "read_images") == 2
    # A different token is a different insert, even with identical content.
    insert(_image_rows("a", "b"), "reads/0/0-1#other")
    assert _count(clickhouse_client, "read_images") == 4


def test_concurrent_queries_from_threads_and_two_clients(
    clickhouse_client: Client, clickhouse_dsn: str
) -> None:
    second = connect(StorageSettings(clickhouse_url=clickhouse_dsn))
    errors: list[BaseException] = []

    def work(client: Client, worker: int) -> None:
        try:
            for i in range(20):
                client.insert(
                    "read_images",
                    _image_rows(f"w{worker}-{i}"),
                    column_names=["read_id", "crop_jpeg", "frame_jpeg", "captured_at"],
                )
                assert _count(client, "read_images") >= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(clickhouse_client if n % 2 else second, n)) for n in range(4)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        second.close()
    assert errors == []
    assert _count(clickhouse_client, "read_images") == 80


def test_get_client_is_one_client_per_process(clickhouse_client: Client, clickhouse_dsn: str) -> None:
    assert get_client(StorageSettings(clickhouse_url=clickhouse_dsn)) is clickhouse_client
    with pytest.raises(RuntimeError, match="already uses"):
        get_client(StorageSettings(clickhouse_url=clickhouse_dsn, clickhouse_database="elsewhere"))


def test_empty_url_means_embedded_under_var_dir(tmp_path: Path) -> None:
    settings = StorageSettings(var_dir=tmp_path)
    assert settings.clickhouse_dsn() == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert settings.embedded
    assert not StorageSettings(clickhouse_url="http://ch:8123").embedded
