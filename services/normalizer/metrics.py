"""Normalizer metrics (the shared families in services.common.metrics count messages and dead letters)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RAW_READS_IN = Counter("platewatch_normalizer_raw_reads_total", "Raw reads consumed by the normalizer")
READS_OUT = Counter("platewatch_normalizer_reads_total", "Reads (vehicle passes) produced")
READS_DROPPED = Counter(
    "platewatch_normalizer_reads_dropped_total",
    "Closed passes not emitted (below min_frames, min_confidence, or no text)",
    ["reason"],
)
OPEN_TRACKS = Gauge("platewatch_normalizer_open_tracks", "Vehicle passes currently open")
FRAMES_PER_READ = Histogram(
    "platewatch_normalizer_frames_per_read",
    "Raw reads (frames) per produced read",
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89),
)
TRANSACTION_ABORTS = Counter(
    "platewatch_normalizer_transaction_aborts_total", "Kafka transactions aborted (state rolled back)"
)
TRANSACTIONS = Counter("platewatch_normalizer_transactions_total", "Kafka transactions committed")
EARLY_READS_OUT = Counter(
    "platewatch_normalizer_early_reads_total", "Early (provisional) reads of open passes produced"
)
EARLY_READS_FAILED = Counter(
    "platewatch_normalizer_early_reads_failed_total",
    "Early reads the broker did not acknowledge (not retried)",
)
