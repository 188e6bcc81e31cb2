"""Metrics of the hotlist service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READS_CHECKED = Counter("platewatch_hotlist_reads_checked_total", "Reads matched against the hotlists")
READS_MATCHED = Counter("platewatch_hotlist_reads_matched_total", "Reads that hit at least one hotlist entry")
ALERTS_RAISED = Counter(
    "platewatch_hotlist_alerts_total",
    "Alerts published",
    ["reason", "match_kind", "stale", "region_mismatch"],
)
MATCH_LATENCY = Histogram(
    "platewatch_hotlist_match_seconds",
    "Seconds to match one read against every hotlist",
    buckets=(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1),
)
HOTLISTS = Gauge("platewatch_hotlist_lists", "Hotlists held in memory")
HOTLIST_ENTRIES = Gauge("platewatch_hotlist_entries", "Entries held in memory, per hotlist", ["hotlist_id"])
HOTLIST_AGE = Gauge(
    "platewatch_hotlist_list_age_seconds", "Seconds since each hotlist was last refreshed", ["hotlist_id"]
)
CHANGES_APPLIED = Counter("platewatch_hotlist_changes_applied_total", "Change-log records applied")
ALERTS_PROVISIONAL = Counter(
    "platewatch_hotlist_provisional_alerts_total",
    "Alerts raised from early (provisional) reads of open passes",
)
ALERTS_SUPERSEDED = Counter(
    "platewatch_hotlist_alerts_superseded_total",
    "Early alerts withdrawn because the pass's final read no longer matches their entry",
)
EARLY_READS_SKIPPED = Counter(
    "platewatch_hotlist_early_reads_skipped_total", "Early reads ignored because their final read came first"
)
