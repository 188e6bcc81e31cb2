"""Retention settings (env `PLATEWATCH_<FIELD>`), and the policy and pseudonym-key settings every
storage component shares (writer, search, retention)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.storage.settings import StorageSettings


class PolicySettings(StorageSettings):
    """Which policy the storage components enforce and where the pseudonym keys live."""

    # The policy profile (deploy/policies/<name>.yaml) or an explicit file; the same variables the
    # API reads, so every component enforces one policy.
    policy_profile: str = "default"
    policy_file: Path | None = None
    # Per-agency, per-period HMAC keys of pseudonymized plates (services/governance/pseudonymize.py).
    # Owned by the storage process; empty = `<var_dir>/pseudonym-keys`. Keep it on an encrypted
    # volume, and out of backups that outlive the non-hit retention (a copied key undoes shredding).
    pseudonym_keys_dir: Path | None = None

    def keys_dir(self) -> Path:
        return self.pseudonym_keys_dir or self.var_dir / "pseudonym-keys"


class RetentionSettings(PolicySettings):
    # Seconds between retention passes (the shortest profile keeps non-hit reads 3 minutes).
    retention_interval_seconds: float = 60.0
    # The ClickHouse TTL backstop (services/retention/ttl.py) removes rows this long after their
    # limit, so it only acts when the job has not run for that long (its removals are not audited
    # row by row). Shorter: less over-retention while the job is down; longer: fewer unaudited
    # removals after an outage.
    retention_ttl_grace_seconds: float = Field(default=3600.0, ge=0)
