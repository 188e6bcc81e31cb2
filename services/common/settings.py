"""Typed settings base: every service reads its configuration from `PLATEWATCH_...` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class CommonSettings(BaseSettings):
    """Settings every service shares. Subclasses add their own fields under the same env prefix."""

    model_config = SettingsConfigDict(env_prefix="PLATEWATCH_", env_file=None, extra="ignore")

    kafka_bootstrap: str = "localhost:9092"
    # Prefix for every topic name, so several stacks (or test runs) can share one broker.
    topic_prefix: str = ""
    log_level: str = "INFO"
    # HTTP port for /metrics, /healthz, /readyz; 0 picks a free port.
    metrics_port: int = 0
    var_dir: Path = REPO_ROOT / "var"
    cameras_file: Path = REPO_ROOT / "deploy" / "cameras.yaml"
