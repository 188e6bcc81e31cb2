"""Retention settings (env `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from pathlib import Path

from services.storage.settings import StorageSettings


class RetentionSettings(StorageSettings):
    # The policy profile (deploy/policies/<name>.yaml) or an explicit file; the same variables the
    # API reads, so every component enforces one policy.
    policy_profile: str = "default"
    policy_file: Path | None = None
    # Seconds between retention passes (the shortest profile keeps non-hit reads 3 minutes).
    retention_interval_seconds: float = 60.0
