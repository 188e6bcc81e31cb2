-- Hotlist hits, one row per alert_id. Status changes (confirmed, dismissed) arrive later as new
-- versions of the same alert, so ReplacingMergeTree keeps the row with the newest updated_at;
-- readers that need exactly one row per alert use FINAL or argMax. Partitioned by month of
-- raised_at, which never changes for an alert, so versions always meet in one partition.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    read_id String,
    plate String,
    hotlist_id LowCardinality(String),
    hotlist_name String,
    entry_id String,
    match_kind LowCardinality(String),
    region_mismatch Bool,
    stale Bool,
    status LowCardinality(String),
    raised_at DateTime64(3, 'UTC'),
    agency_id LowCardinality(String),
    camera_id LowCardinality(String),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(raised_at)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;
