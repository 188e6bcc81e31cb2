"""Metric families shared across services; service-specific metrics live with their service."""

from __future__ import annotations

from typing import Any

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

# --- Observability for issue 7 (dashboards and alert rules in deploy/grafana and deploy/prometheus) ---
# STAGE_LATENCY stages the dashboards expect: "inference" (inference), "normalized" (normalizer),
# "stored" (writer, after the ClickHouse insert is acknowledged) and "alert" (hotlist).

READS_BY_CAMERA = Counter(
    "platewatch_reads_total",
    "Reads (one per vehicle pass) produced by the normalizer, per camera and agency",
    ["camera", "agency"],
)
ALERT_ACTIONS = Counter(
    "platewatch_alert_actions_total",
    "Alert workflow steps taken by users (acknowledge, confirm, dismiss, outcome)",
    ["action", "outcome"],
)

# Governance (search purpose, refusals, audit chain): filled in by the governance components.
SEARCHES = Counter(
    "platewatch_searches_total",
    "Searches of stored reads run for a user, by agency and declared purpose",
    ["agency", "purpose"],
)
REFUSALS = Counter(
    "platewatch_refusals_total",
    "Requests refused by a governance rule (missing purpose or case number, retention, scope, quota)",
    ["agency", "rule"],
)
AUDIT_CHAIN_VERIFIED = Gauge(
    "platewatch_audit_chain_verified",
    "1 when the last verification of the audit hash chain succeeded, 0 when it found a break",
)
AUDIT_CHAIN_LAST_VERIFIED = Gauge(
    "platewatch_audit_chain_last_verified_timestamp_seconds",
    "Unix time of the last completed audit chain verification (alert when it stops running)",
)
AUDIT_ENTRIES = Counter("platewatch_audit_entries_total", "Audit log entries appended", ["action"])


async def observe_consumer_lag(consumer: Any, service: str, prefix: str = "") -> None:
    """Set CONSUMER_LAG for every partition assigned to an aiokafka consumer: the last stable offset
    (read_committed) or high watermark the consumer last fetched, minus its position. Call it after
    `getmany`; it does no network round trip for partitions with a known position, and partitions
    the consumer has not fetched yet are skipped. `prefix` (PLATEWATCH_TOPIC_PREFIX) is stripped so the
    `topic` label is the logical name from services.common.topics."""
    for tp in consumer.assignment():
        end = consumer.last_stable_offset(tp)
        if end is None:
            end = consumer.highwater(tp)
        if end is None:
            continue
        position = await consumer.position(tp)
        topic = tp.topic[len(prefix) :] if prefix and tp.topic.startswith(prefix) else tp.topic
        CONSUMER_LAG.labels(service, topic, str(tp.partition)).set(max(0, end - position))


HOTLIST_MAX_AGE = Gauge(
    "platewatch_hotlist_list_max_age_seconds",
    "Each hotlist's max_age_seconds (0 = never stale); the stale-hotlist alert compares the age to it",
    ["hotlist_id"],
)
