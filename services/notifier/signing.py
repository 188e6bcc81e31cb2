"""Webhook signatures: HMAC-SHA256 over `<unix seconds>.<body>` with the subscriber's secret.

Headers sent with every delivery:
    X-Platewatch-Timestamp: unix seconds when the request was signed
    X-Platewatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Platewatch-Delivery:  stable id of the alert version, the same on every retry (dedupe on it)

Receivers verify with `verify_signature` (or its few lines in their own language) and reject
timestamps outside a tolerance, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Platewatch-Timestamp"
SIGNATURE_HEADER = "X-Platewatch-Signature"
DELIVERY_HEADER = "X-Platewatch-Delivery"
EVENT_HEADER = "X-Platewatch-Event"
SCHEME = "sha256="
DEFAULT_TOLERANCE_S = 300


def compute_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The X-Platewatch-Signature value for `body` signed at `timestamp`."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def signed_headers(
    secret: str | bytes, body: bytes, delivery_id: str, event: str, now: float
) -> dict[str, str]:
    """All headers of one delivery attempt (each attempt is signed afresh with its own timestamp)."""
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
    }


def verify_signature(
    secret: str | bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Receiver side: True when `signature` is ours for this body and timestamp and the timestamp is
    within `tolerance_s` of `now`. Compares in constant time."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(compute_signature(secret, timestamp, body), signature)
