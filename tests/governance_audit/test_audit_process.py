"""`platewatch serve audit retention` as its own process (as in the storage process of the stack),
driven from outside: events recorded over Kafka, then `platewatch audit verify`, `audit export` and
`retention report` as separate CLI processes through AuditService. SIGKILL and restart keeps the
chain whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.audit.client import AuditEvent, AuditRecorder
from services.common.net import free_ports
from services.common.settings import REPO_ROOT
from services.stack import ManagedProcess
from tests.waiting import until

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def record(env: dict[str, str], count: int) -> None:
    async with AuditRecorder(env["PLATEWATCH_KAFKA_BOOTSTRAP"], env["PLATEWATCH_TOPIC_PREFIX"]) as recorder:
        for number in range(count):
            await recorder.record(
                AuditEvent(
                    kind="login", actor=f"user-{number}", agency_id="agency-a", action="POST /auth/dev/token"
                )
            )


async def test_storage_process_audit_and_cli(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    grpc_port, metrics_port = free_ports(2)
    env = {
        "PLATEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PLATEWATCH_TOPIC_PREFIX": topic_prefix,
        "PLATEWATCH_VAR_DIR": str(tmp_path / "var"),
        "PLATEWATCH_METRICS_PORT": str(metrics_port),
        "PLATEWATCH_AUDIT_GRPC_HOST": "127.0.0.1",
        "PLATEWATCH_AUDIT_GRPC_PORT": str(grpc_port),
        "PLATEWATCH_AUDIT_GRPC_TARGET": f"127.0.0.1:{grpc_port}",
        "PLATEWATCH_AUDIT_CHECKPOINT_EVERY": "4",
    }
    process = ManagedProcess(
        "storage",
        [sys.executable, "-m", "services.cli", "serve", "audit", "retention"],
        env,
        tmp_path / "storage.log",
        ready_url=f"http://127.0.0.1:{metrics_port}/readyz",
    )
    process.start()
    try:
        await until(process.ready, "audit + retention ready", 120)
        await record(env, 6)
        # Plus the retention component's first start setting its TTL backstop (a policy_change).
        await until(
            lambda: 'last_sequence": 7' in cli(env, "audit", "verify", "--json").stdout, "7 entries", 60
        )

        # The dev signing key was created under var/; pin it for verification.
        public = tmp_path / "public.pem"
        key = cli(env, "audit", "public-key")
        assert key.returncode == 0, key.stderr
        public.write_text(key.stdout)
        verified = cli(env, "audit", "verify", "--public-key", str(public))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "OK: the audit log verifies" in verified.stdout and "key pinned" in verified.stdout

        # A crash (SIGKILL) and a restart continue the same chain.
        process.kill()
        process.start()
        await until(process.ready, "restarted", 120)
        await record(env, 3)
        # The TTL in place already follows the policy: nothing recorded at the restart.
        await until(
            lambda: 'last_sequence": 10' in cli(env, "audit", "verify", "--json").stdout, "10 entries", 60
        )

        export = tmp_path / "audit.jsonl"
        assert cli(env, "audit", "export", "--out", str(export)).returncode == 0
        offline = cli(env, "audit", "verify", "--file", str(export), "--public-key", str(public))
        assert offline.returncode == 0, offline.stdout
        assert "10 entries (sequence 1..10)" in offline.stdout

        report = cli(env, "retention", "report")
        assert report.returncode == 0, report.stdout + report.stderr
        assert "COMPLIANT" in report.stdout
    finally:
        process.stop()
    assert process.exit_code() == 0, (tmp_path / "storage.log").read_text()[-3000:]
