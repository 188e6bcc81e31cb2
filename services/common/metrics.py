"""Metric families shared across services; service-specific metrics live with their service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "platewatch_messages_consumed_total", "Kafka messages consumed", ["service", "topic"]
)
MESSAGES_PRODUCED = Counter(
    "platewatch_messages_produced_total", "Kafka messages produced", ["service", "topic"]
)
DEAD_LETTERS = Counter(
    "platewatch_dead_letters_total", "Messages sent to a dead-letter topic", ["service", "topic", "reason"]
)
CONSUMER_LAG = Gauge(
    "platewatch_consumer_lag_messages", "Messages behind the partition end", ["service", "topic", "partition"]
)
STAGE_LATENCY = Histogram(
    "platewatch_stage_latency_seconds",
    "Seconds from frame capture to the end of a pipeline stage",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
