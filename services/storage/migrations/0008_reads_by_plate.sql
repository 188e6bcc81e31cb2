-- `reads` gets the layout measured best for plate questions; the 0001 table is copied into it
-- and dropped. Measured with `platewatch bench search` at 10M reads, merged parts:
-- * ORDER BY (plate, captured_at) instead of (agency_id, plate, captured_at): a plate searched
--   across the caller's agencies and its sharing partners is one key range per monthly partition,
--   not one per agency and month (exact plate over 4 agencies: 6,144 rows selected instead of
--   97,968). The agency filter is a plain condition on a LowCardinality column.
-- * 2048-row granules: a plate's reads of a month sit in one small granule, so a lookup
--   decompresses a quarter of what 8192-row granules cost; the primary index stays ~1 MB per 100M.
-- * The four secondary times are stored as offsets from captured_at (first_seen_before_ms,
--   last_seen_after_ms, normalized_after_ms, ingested_after_ms: 1-2 bytes each instead of ~4)
--   and read back under their old names through ALIAS columns, so SELECTs are unchanged.
--   Compressed bytes per read of this table: 46.3 -> 33.2. What is left is mostly read_id
--   (15 bytes: the normalizer's id carries 80 random bits; an 8-byte time-ordered id would save
--   ~8 more) and captured_at (4).
-- * Monthly partitions stay (daily ones multiply the parts a plate lookup opens; retention drops
--   whole months).
-- Views on `reads` are dropped before and re-created after the swap, pointing at the new table.
-- Re-running after an interruption is safe except between RENAME and the DROP that follows it
-- (then `reads_0001` exists and RENAME fails: drop `reads_0001` after checking `reads` holds the
-- data, and migrate again).
DROP VIEW IF EXISTS camera_reads_mv;
DROP VIEW IF EXISTS plates_mv;
DROP VIEW IF EXISTS read_counts_hourly_mv;
DROP VIEW IF EXISTS cameras_mv;

CREATE TABLE IF NOT EXISTS reads_by_plate
(
    read_id String CODEC(ZSTD(1)),
    plate String CODEC(ZSTD(1)),
    region LowCardinality(String),
    format_known Bool,
    confidence Float32 CODEC(ZSTD(1)),
    camera_id LowCardinality(String),
    agency_id LowCardinality(String),
    lat Float64 CODEC(ZSTD(1)),
    lon Float64 CODEC(ZSTD(1)),
    direction LowCardinality(String),
    captured_at DateTime64(3, 'UTC') CODEC(T64, ZSTD(1)),
    first_seen_before_ms UInt32 CODEC(T64, ZSTD(1)),
    last_seen_after_ms UInt32 CODEC(T64, ZSTD(1)),
    vehicle_color LowCardinality(String),
    vehicle_color_confidence Float32 CODEC(ZSTD(1)),
    vehicle_make LowCardinality(String),
    vehicle_type LowCardinality(String),
    box_x Int32 CODEC(T64, ZSTD(1)),
    box_y Int32 CODEC(T64, ZSTD(1)),
    box_width Int32 CODEC(T64, ZSTD(1)),
    box_height Int32 CODEC(T64, ZSTD(1)),
    frames Int32 CODEC(T64, ZSTD(1)),
    candidate_texts Array(String),
    candidate_confidences Array(Float32),
    normalized_after_ms Int64 CODEC(T64, ZSTD(1)),
    ingested_after_ms Int64
        DEFAULT toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(captured_at) CODEC(T64, ZSTD(1)),
    first_seen DateTime64(3, 'UTC') ALIAS captured_at - toIntervalMillisecond(first_seen_before_ms),
    last_seen DateTime64(3, 'UTC') ALIAS captured_at + toIntervalMillisecond(last_seen_after_ms),
    normalized_at DateTime64(3, 'UTC') ALIAS captured_at + toIntervalMillisecond(normalized_after_ms),
    ingested_at DateTime64(3, 'UTC') ALIAS captured_at + toIntervalMillisecond(ingested_after_ms),
    INDEX read_id_bloom read_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(captured_at)
ORDER BY (plate, captured_at)
SETTINGS index_granularity = 2048, non_replicated_deduplication_window = 1000;

INSERT INTO reads_by_plate (read_id, plate, region, format_known, confidence, camera_id, agency_id, lat, lon, direction, captured_at,
    vehicle_color, vehicle_color_confidence, vehicle_make, vehicle_type, box_x, box_y, box_width, box_height, frames,
    candidate_texts, candidate_confidences,
    first_seen_before_ms, last_seen_after_ms, normalized_after_ms, ingested_after_ms)
SELECT read_id, plate, region, format_known, confidence, camera_id, agency_id, lat, lon, direction, captured_at,
    vehicle_color, vehicle_color_confidence, vehicle_make, vehicle_type, box_x, box_y, box_width, box_height, frames,
    candidate_texts, candidate_confidences,
    toUInt32(greatest(0, toUnixTimestamp64Milli(captured_at) - toUnixTimestamp64Milli(first_seen))),
    toUInt32(greatest(0, toUnixTimestamp64Milli(last_seen) - toUnixTimestamp64Milli(captured_at))),
    toUnixTimestamp64Milli(normalized_at) - toUnixTimestamp64Milli(captured_at),
    toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(captured_at)
FROM reads
WHERE (SELECT count() FROM reads_by_plate) = 0;

RENAME TABLE reads TO reads_0001, reads_by_plate TO reads;

DROP TABLE IF EXISTS reads_0001;

CREATE MATERIALIZED VIEW IF NOT EXISTS camera_reads_mv TO camera_reads AS
SELECT camera_id, toDateTime(captured_at, 'UTC') AS captured_at, plate, agency_id, direction
FROM reads;

CREATE MATERIALIZED VIEW IF NOT EXISTS plates_mv TO plates AS
SELECT
    plate,
    agency_id,
    translate(plate, 'ODQILBSZG', '000118526') AS skeleton,
    toUInt64(count()) AS reads,
    min(toDateTime(captured_at, 'UTC')) AS first_seen,
    max(toDateTime(captured_at, 'UTC')) AS last_seen
FROM reads
GROUP BY plate, agency_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS read_counts_hourly_mv TO read_counts_hourly AS
SELECT agency_id, toStartOfHour(toDateTime(captured_at, 'UTC')) AS hour, camera_id, toUInt64(count()) AS reads
FROM reads
GROUP BY agency_id, hour, camera_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS cameras_mv TO cameras AS
SELECT camera_id, any(agency_id) AS agency_id, argMax(lat, captured_at) AS lat,
    argMax(lon, captured_at) AS lon, max(toDateTime(captured_at, 'UTC')) AS last_seen
FROM reads
GROUP BY camera_id;
