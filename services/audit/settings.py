"""Audit component settings (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from pathlib import Path

from services.storage.settings import StorageSettings


class AuditSettings(StorageSettings):
    audit_grpc_host: str = "0.0.0.0"
    audit_grpc_port: int = 50053
    # Address clients (CLI, API) use to reach AuditService.
    audit_grpc_target: str = "localhost:50053"
    # Ed25519 private key (PKCS8 PEM). Empty: var_dir/audit/signing-key.pem, created when absent
    # (development only; production mounts a key and sets this path).
    audit_signing_key_file: Path | None = None
    # A signed checkpoint after this many new entries, or after this many seconds with new entries.
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 300.0
    # Most entries chained and inserted per ClickHouse insert (one fetch from Kafka).
    audit_batch_max: int = 500
    # The audit component re-verifies the stored chain this often and exports the result as the
    # platewatch_audit_chain_verified gauge (alerted on by deploy/prometheus); 0 turns it off.
    audit_verify_seconds: float = 900.0

    def signing_key_path(self) -> Path:
        return self.audit_signing_key_file or self.var_dir / "audit" / "signing-key.pem"
