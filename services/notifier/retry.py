"""When a webhook delivery is retried, and after how long. Pure."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    # Worth another attempt: connection trouble, 5xx, 429, 408.
    RETRY = "retry"
    # The receiver refuses this request for good (other 4xx, or a 3xx we do not follow).
    REJECTED = "rejected"


RETRYABLE_4XX = frozenset({408, 425, 429})


def classify(status_code: int | None) -> Verdict:
    """`None` is a connection error or timeout (no answer)."""
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code >= 500 or status_code in RETRYABLE_4XX:
        return Verdict.RETRY
    return Verdict.REJECTED


def backoff_s(retry_number: int, initial_s: float, max_s: float) -> float:
    """Wait before retry `retry_number` (1 for the first retry): initial * 2**(n-1), capped."""
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    return float(min(max_s, initial_s * 2 ** (retry_number - 1)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date); None when absent
    or unreadable. A date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def retry_delay_s(
    retry_number: int,
    retry_after: str | None,
    *,
    initial_s: float,
    max_s: float,
    max_retry_after_s: float,
    now: datetime | None = None,
) -> float:
    """The wait before retry `retry_number`: our backoff, or the receiver's Retry-After when that is
    longer (honoured up to `max_retry_after_s`)."""
    ours = backoff_s(retry_number, initial_s, max_s)
    asked = parse_retry_after(retry_after, now)
    if asked is None:
        return ours
    return max(ours, min(asked, max_retry_after_s))
