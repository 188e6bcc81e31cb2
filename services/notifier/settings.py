"""Configuration of the notifier (environment variables `PLATEWATCH_<FIELD>`)."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import REPO_ROOT, CommonSettings


class NotifierSettings(CommonSettings):
    """Where the subscribers are listed and how hard to try each delivery."""

    webhooks_file: Path = REPO_ROOT / "deploy" / "webhooks.yaml"
    # Attempts per subscriber and alert version (the first one included) before dead-lettering.
    max_attempts: int = 6
    # Backoff before retry n (n = 1, 2, ...): initial * 2**(n-1), at most max_backoff_s.
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # A receiver's Retry-After is honoured up to this many seconds.
    max_retry_after_s: float = 300.0
    # Seconds one HTTP request may take (connect, send, answer).
    timeout_s: float = 10.0
    # Embed the plate crop (base64 JPEG) in the payload; receivers need no API access to see it.
    include_crop: bool = True
