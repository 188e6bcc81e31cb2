"""Retry decisions of the notifier: which answers are retried and how long it waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.notifier.retry import Verdict, backoff_s, classify, parse_retry_after, retry_delay_s

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (None, Verdict.RETRY),
        (200, Verdict.DELIVERED),
        (201, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.REJECTED),
        (400, Verdict.REJECTED),
        (401, Verdict.REJECTED),
        (403, Verdict.REJECTED),
        (404, Verdict.REJECTED),
        (410, Verdict.REJECTED),
        (422, Verdict.REJECTED),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
    ],
)
def test_classify(status: int | None, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 0.5, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        backoff_s(0, 1.0, 10.0)


def test_retry_after_in_seconds_or_http_date() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    in_90s = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(in_90s, now=NOW) == pytest.approx(90.0)
    past = format_datetime(NOW - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("-3", now=NOW) is None


def test_delay_is_the_longer_of_backoff_and_retry_after_up_to_a_ceiling() -> None:
    kwargs = {"initial_s": 1.0, "max_s": 8.0, "max_retry_after_s": 60.0, "now": NOW}
    assert retry_delay_s(1, None, **kwargs) == 1.0  # type: ignore[arg-type]
    assert retry_delay_s(3, None, **kwargs) == 4.0  # type: ignore[arg-type]
    assert retry_delay_s(1, "30", **kwargs) == 30.0  # type: ignore[arg-type]
    # Retry-After shorter than our backoff does not hurry us.
    assert retry_delay_s(4, "2", **kwargs) == 8.0  # type: ignore[arg-type]
    # An absurd Retry-After is honoured only up to the ceiling.
    assert retry_delay_s(1, "86400", **kwargs) == 60.0  # type: ignore[arg-type]
    assert retry_delay_s(1, "garbage", **kwargs) == 1.0  # type: ignore[arg-type]
