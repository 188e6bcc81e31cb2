"""Writer metrics; dead letters are counted by services.common.kafka.send_dead_letter."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ROWS_INSERTED = Counter("platewatch_writer_rows_inserted_total", "Rows inserted into ClickHouse", ["table"])
DUPLICATES_SKIPPED = Counter(
    "platewatch_writer_duplicates_skipped_total",
    "Reads not inserted because their read_id was already stored",
    ["table"],
)
BATCH_MESSAGES = Histogram(
    "platewatch_writer_batch_messages",
    "Kafka messages per flushed batch",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000),
)
INSERT_SECONDS = Histogram(
    "platewatch_writer_insert_seconds",
    "ClickHouse insert latency",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INSERT_FAILURES = Counter(
    "platewatch_writer_insert_failures_total", "Failed ClickHouse calls (each retry counts)", ["operation"]
)
READS_PSEUDONYMIZED = Counter(
    "platewatch_writer_reads_pseudonymized_total", "Reads stored with their plate as a token only"
)
READS_SHREDDED = Counter(
    "platewatch_writer_reads_dropped_shredded_key_total",
    "Reads not stored because their capture period's pseudonym key was already destroyed",
)
