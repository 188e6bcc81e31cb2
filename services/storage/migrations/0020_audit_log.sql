-- The tamper-evident audit log (owner: audit component, services/audit). One row per chained
-- entry; the hash covers every column except `stored_at` (services/audit/chain.py).
-- * ORDER BY sequence: verification and export read the chain in order; a sequence is written
--   once (the single audit component owns the chain; a restart dedupes by event_id).
-- * PARTITION BY year of chained_at: audit retention (>= 1 year) drops whole old years.
-- * Audit entries are never removed by read retention; only the retention job's audit class
--   deletes entries, at least a year old, and it records that deletion in the log itself.
CREATE TABLE IF NOT EXISTS audit_log
(
    sequence UInt64,
    prev_hash String,
    entry_hash String,
    event_id String,
    kind LowCardinality(String),
    actor String,
    agency_id LowCardinality(String),
    action String,
    outcome LowCardinality(String),
    purpose_code LowCardinality(String),
    case_number String,
    result_count Int64,
    details_json String CODEC(ZSTD(3)),
    occurred_at_us Int64,
    source LowCardinality(String),
    chained_at_us Int64,
    stored_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYear(toDateTime(intDiv(chained_at_us, 1000000)))
ORDER BY sequence
SETTINGS non_replicated_deduplication_window = 1000;
-- Signed checkpoints: "the chain up to `sequence` ends in `entry_hash`" (Ed25519, hex).
CREATE TABLE IF NOT EXISTS audit_checkpoints
(
    sequence UInt64,
    entry_hash String,
    created_at_us Int64,
    key_id String,
    signature_hex String,
    public_key_hex String
)
ENGINE = ReplacingMergeTree
ORDER BY sequence;
-- Legal holds: the listed reads (and their images and alerts) survive retention until released.
-- Each change is a new version of the hold; readers take the newest (FINAL / argMax).
CREATE TABLE IF NOT EXISTS legal_holds
(
    hold_id String,
    agency_id LowCardinality(String),
    case_number String,
    read_ids Array(String),
    reason String,
    placed_by String,
    placed_at DateTime64(3, 'UTC'),
    released Bool,
    released_by String,
    released_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY hold_id;
