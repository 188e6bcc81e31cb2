"""Fixtures for the audit and retention tests: the audit component running in this process on a
fresh embedded ClickHouse and a real Kafka broker (topics under a fresh prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from services.audit.chain import load_or_create_signing_key, raw_public_key
from services.audit.main import serve
from services.common.health import HealthState
from services.common.net import free_port
from tests.waiting import until


@dataclass
class RunningAudit:
    target: str
    key_file: Path
    public_key: bytes
    health: HealthState
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=30)


@pytest.fixture
def audit_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> dict[str, str]:
    """Environment of an in-process audit component (and of recorders talking to it)."""
    port = free_port()
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_AUDIT_GRPC_HOST": "127.0.0.1",
        "PLATEWATCH_AUDIT_GRPC_PORT": str(port),
        "PLATEWATCH_AUDIT_GRPC_TARGET": f"127.0.0.1:{port}",
        "PLATEWATCH_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit-key.pem"),
        "PLATEWATCH_AUDIT_CHECKPOINT_EVERY": "5",
        "PLATEWATCH_VAR_DIR": str(tmp_path / "var"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def start_audit(env: dict[str, str]) -> RunningAudit:
    stop = asyncio.Event()
    health = HealthState()
    task = asyncio.create_task(serve(stop, health))
    await until(lambda: health.readiness().get("audit") or task.done(), "audit component ready", 60)
    if task.done():
        task.result()
    key_file = Path(env["PLATEWATCH_AUDIT_SIGNING_KEY_FILE"])
    public = raw_public_key(load_or_create_signing_key(key_file, create=False).public_key())
    return RunningAudit(env["PLATEWATCH_AUDIT_GRPC_TARGET"], key_file, public, health, stop, task)


@pytest.fixture
async def audit_component(
    clickhouse_client: Client, audit_env: dict[str, str]
) -> AsyncIterator[RunningAudit]:
    """The audit component (chainer + AuditService) in this process, sharing `clickhouse_client`."""
    running = await start_audit(audit_env)
    try:
        yield running
    finally:
        if not running.task.done():
            await running.shutdown()
