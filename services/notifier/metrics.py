"""Notifier metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "platewatch_notifier_deliveries_total",
    "Webhook deliveries by final outcome (delivered, rejected, failed: the last two are dead-lettered)",
    ["subscriber", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "platewatch_notifier_delivery_seconds",
    "Seconds from the first attempt to the final outcome of a delivery, retries included",
    ["subscriber"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RETRIES = Counter(
    "platewatch_notifier_retries_total",
    "Webhook attempts that were retried, by why (HTTP status or connection_error)",
    ["subscriber", "reason"],
)
ALERT_TO_DELIVERY_SECONDS = Histogram(
    "platewatch_notifier_alert_age_seconds",
    "Seconds from the alert version (raised_at or updated_at) to its successful delivery",
    ["subscriber"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
