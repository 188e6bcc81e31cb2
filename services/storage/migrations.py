"""Forward-only schema migrations.

Migrations are the files `services/storage/migrations/NNNN_name.sql`, applied in version order and
recorded in `schema_migrations` (version, name, checksum, applied_at). An applied file must never
change: its checksum is compared on every start and a difference is an error, as is a recorded
version whose file is gone (the database is newer than this code). To change the schema, add a file.

A file may hold several statements, each ending with `;` at the end of a line. Lines starting with
`--` are comments and are not sent to ClickHouse. Statements should be idempotent (`IF NOT EXISTS`)
so a migration interrupted half-way can simply run again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from services.storage.cluster import render

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Writer and search both migrate at start; in one process they take turns.
_apply_lock = threading.Lock()

SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY version
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree; a person has to look."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The statements of the file, comments removed, in order."""
        statements: list[str] = []
        current: list[str] = []
        for line in self.sql.splitlines():
            if line.lstrip().startswith("--"):
                continue
            current.append(line)
            if line.rstrip().endswith(";"):
                statement = "\n".join(current).strip().rstrip(";").strip()
                if statement:
                    statements.append(statement)
                current = []
        tail = "\n".join(current).strip()
        if tail:
            statements.append(tail)
        return statements


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in `directory`, by version. Misnamed .sql files and duplicate versions
    are errors rather than silently skipped."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name} is not named NNNN_lower_snake.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(f"duplicate migration versions {duplicates}")
    return sorted(migrations, key=lambda m: m.version)


def pending_migrations(available: list[Migration], applied: list[AppliedMigration]) -> list[Migration]:
    """The migrations still to apply, in order, after checking the applied ones are unchanged."""
    by_version = {m.version: m for m in available}
    for record in applied:
        migration = by_version.get(record.version)
        if migration is None:
            raise MigrationError(
                f"database has migration {record.version:04d}_{record.name} but no such file exists; "
                "is this code older than the database?"
            )
        if migration.checksum != record.checksum:
            raise MigrationError(
                f"migration {record.version:04d}_{record.name} was changed after it was applied "
                f"(recorded checksum {record.checksum[:12]}, file {migration.checksum[:12]}); "
                "migrations are forward-only: add a new file instead"
            )
    done = {record.version for record in applied}
    return [m for m in available if m.version not in done]


def applied_migrations(client: Client) -> list[AppliedMigration]:
    client.command(SCHEMA_MIGRATIONS_DDL)
    rows = client.query(
        "SELECT version, any(name), any(checksum) FROM schema_migrations GROUP BY version ORDER BY version"
    ).result_rows
    return [AppliedMigration(int(v), str(n), str(c)) for v, n, c in rows]


def apply_migrations(client: Client, directory: Path = MIGRATIONS_DIR, cluster: str = "") -> list[Migration]:
    """Bring the schema up to date; returns the migrations applied now (empty when up to date).
    With `cluster`, each statement is rendered for that cluster (services/storage/cluster.py);
    checksums are always of the files as written.

    Raises MigrationError when an applied migration changed or is missing."""
    with _apply_lock:
        available = load_migrations(directory)
        pending = pending_migrations(available, applied_migrations(client))
        for migration in pending:
            log.info("applying migration", extra={"version": migration.version, "migration": migration.name})
            for statement in render(migration.statements(), cluster, client.database or "default"):
                client.command(statement)
            client.command(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                "VALUES ({version:UInt32}, {name:String}, {checksum:String}, now64(3))",
                parameters={
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
        if not pending:
            log.info("schema up to date", extra={"version": available[-1].version if available else 0})
        return pending
