"""Webhook signatures: the documented HMAC, headers, and the receiver's verification helper."""

from __future__ import annotations

import hashlib
import hmac

from services.notifier.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    signed_headers,
    verify_signature,
)

BODY = b'{"event":"alert_raised","alert":{"alert_id":"a1"}}'
NOW = 1_750_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature("s3cret", NOW, BODY) == f"sha256={expected}"
    # A known vector, so the scheme cannot drift unnoticed.
    assert compute_signature("key", "1", b"x") == (
        "sha256=" + hmac.new(b"key", b"1.x", hashlib.sha256).hexdigest()
    )
    assert compute_signature(b"s3cret", str(NOW), BODY) == compute_signature("s3cret", NOW, BODY)


def test_headers_carry_timestamp_signature_delivery_and_event() -> None:
    headers = signed_headers("s3cret", BODY, "a1:unconfirmed", "alert_raised", NOW + 0.9)
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[SIGNATURE_HEADER] == compute_signature("s3cret", NOW, BODY)
    assert headers[DELIVERY_HEADER] == "a1:unconfirmed"
    assert headers[EVENT_HEADER] == "alert_raised"
    assert headers["Content-Type"] == "application/json"


def test_verification_accepts_ours_and_rejects_tampering_wrong_secret_and_stale_timestamps() -> None:
    headers = signed_headers("s3cret", BODY, "d", "alert_raised", NOW)
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature("s3cret", ts, sig, BODY, now=NOW + 10)
    assert not verify_signature("s3cret", ts, sig, BODY + b" ", now=NOW)
    assert not verify_signature("other", ts, sig, BODY, now=NOW)
    assert not verify_signature("s3cret", str(NOW + 1), sig, BODY, now=NOW)
    assert not verify_signature("s3cret", ts, sig, BODY, now=NOW + 301)
    assert verify_signature("s3cret", ts, sig, BODY, now=NOW + 301, tolerance_s=600)
    assert not verify_signature("s3cret", ts, sig, BODY, now=NOW - 301)
    assert not verify_signature("s3cret", None, sig, BODY, now=NOW)
    assert not verify_signature("s3cret", ts, None, BODY, now=NOW)
    assert not verify_signature("s3cret", "-5", sig, BODY, now=NOW)
    assert not verify_signature("s3cret", ts, sig.removeprefix("sha256="), BODY, now=NOW)
