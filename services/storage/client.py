"""The process-wide ClickHouse client.

Embedded ClickHouse (chdb) lets one process own a data directory, and one engine per process, so
every component in a process (writer and search under `platewatch serve writer search`) must use
the client from `get_client()` rather than opening its own.

Concurrency: clickhouse-connect's chdb backend serializes the calls made on one client with a
per-client lock, and chdb itself was checked to run queries from several threads and several
clients in one process correctly (tests/unit/test_storage_client.py). So the shared client is safe
to call from worker threads (`asyncio.to_thread`); concurrent calls simply queue behind each other.
Against a server the HTTP client is created without a session id, because ClickHouse rejects
concurrent queries within one session.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.storage.migrations import apply_migrations
from services.storage.settings import StorageSettings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_client: Client | None = None
_client_dsn: str | None = None


def connect(settings: StorageSettings) -> Client:
    """Open a new client on the configured database, creating the database if it is missing.

    Prefer `get_client()`; this is for tools that must not share (none in-process with chdb)."""
    dsn = settings.clickhouse_dsn()
    if settings.embedded:
        client = clickhouse_connect.get_client(dsn=dsn)
    else:
        client = clickhouse_connect.get_client(
            dsn=dsn,
            username=settings.clickhouse_user,
            password=settings.clickhouse_password,
            autogenerate_session_id=False,
        )
    try:
        # Database names cannot be bound as parameters; this one comes from settings, not users.
        client.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
        client.database = settings.clickhouse_database
    except Exception:
        client.close()
        raise
    log.info(
        "connected to ClickHouse",
        extra={"embedded": settings.embedded, "database": settings.clickhouse_database},
    )
    return client


def get_client(settings: StorageSettings | None = None) -> Client:
    """The one client of this process, opened on first use with `settings` (default: from env).

    Raises RuntimeError when called again with settings that point somewhere else."""
    global _client, _client_dsn
    settings = settings or StorageSettings()
    target = f"{settings.clickhouse_dsn()}#{settings.clickhouse_database}"
    with _lock:
        if _client is None:
            _client = connect(settings)
            _client_dsn = target
        elif _client_dsn != target:
            raise RuntimeError(f"this process already uses ClickHouse at {_client_dsn}, not {target}")
        return _client


def close_client() -> None:
    """Close the process-wide client (service shutdown, tests switching data directories)."""
    global _client, _client_dsn
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _client_dsn = None


async def open_storage(
    settings: StorageSettings, stop: asyncio.Event, component: str, max_delay_s: float = 10.0
) -> Client | None:
    """The process's client with migrations applied, retrying with capped exponential backoff while
    ClickHouse is unreachable; None if `stop` is set first. Blocking calls run in worker threads.
    `component` names the caller in the retry log."""
    delay = 0.2
    while not stop.is_set():
        try:
            client = await asyncio.to_thread(get_client, settings)
            await asyncio.to_thread(apply_migrations, client, cluster=settings.clickhouse_cluster)
            return client
        except Exception as exc:
            log.warning(
                "ClickHouse not usable yet",
                extra={"component": component, "error": str(exc)[:500], "retry_in": delay},
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, max_delay_s)
    return None
