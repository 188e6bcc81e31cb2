-- Structures for RTCC analytics (issue 5), beside the plate-ordered `reads` table of 0001.
--
-- Measured with `platewatch bench search` (synthetic reads built inside ClickHouse, 2 cores):
-- * `reads` stays ordered by (agency_id, plate, captured_at) with monthly partitions. Every query
--   is scoped to a handful of agencies (contract 2), so the agency prefix costs one key range per
--   agency and plate lookups, timelines and per-plate visits stay in the single-digit milliseconds.
--   Daily partitions were measured 3-10x slower for the same lookup (more parts to open).
-- * A plate-ordered table is the wrong shape for camera and time questions (a camera's reads are
--   spread over every granule). `reads_by_camera` is a narrow copy ordered by (camera_id,
--   captured_at) holding only what those questions need (second precision, plate, agency,
--   direction), filled by a materialized view on every insert into `reads`. Visits to a site,
--   convoys and multi-site questions read a few granules per camera and time window from it.
-- * Unanchored partial plates (`*7X2*`) cannot use the plate key, and ngram bloom filters barely
--   prune plates (36 symbols: every granule holds most trigrams). `plates` holds each distinct
--   plate once per agency (an AggregatingMergeTree folds repeats) with an ngram text index; the
--   pattern is matched there and the few matching plates are then looked up by key in `reads`.
--   `skeleton` is the plate with confusable characters folded (0/O/D/Q, 1/I/L, 8/B, 5/S, 2/Z, 6/G),
--   so a fuzzy search is an equality on it.
-- * `read_counts_hourly` (SummingMergeTree) keeps reads per agency, camera and hour, so dashboard
--   statistics never scan reads.
-- * `cameras` keeps the last known position of every camera (from its reads), so geo filters of
--   camera and time questions resolve to a camera set.
-- Materialized views only see new inserts; the INSERT ... SELECT statements below backfill rows
-- stored before this migration, only while the target is still empty (safe to run again).
CREATE TABLE IF NOT EXISTS reads_by_camera
(
    camera_id LowCardinality(String),
    captured_at DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    plate String CODEC(ZSTD(1)),
    agency_id LowCardinality(String),
    direction LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(captured_at)
ORDER BY (camera_id, captured_at)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS reads_by_camera_mv TO reads_by_camera AS
SELECT camera_id, toDateTime(captured_at, 'UTC') AS captured_at, plate, agency_id, direction
FROM reads;

INSERT INTO reads_by_camera (camera_id, captured_at, plate, agency_id, direction)
SELECT camera_id, toDateTime(captured_at, 'UTC'), plate, agency_id, direction
FROM reads
WHERE (SELECT count() FROM reads_by_camera) = 0;

CREATE TABLE IF NOT EXISTS plates
(
    plate String,
    agency_id LowCardinality(String),
    skeleton String,
    reads SimpleAggregateFunction(sum, UInt64),
    first_seen SimpleAggregateFunction(min, DateTime('UTC')),
    last_seen SimpleAggregateFunction(max, DateTime('UTC')),
    INDEX plate_ngrams plate TYPE text(tokenizer = ngrams(3)),
    INDEX skeleton_bloom skeleton TYPE bloom_filter GRANULARITY 1
)
ENGINE = AggregatingMergeTree
ORDER BY (plate, agency_id, skeleton)
SETTINGS non_replicated_deduplication_window = 1000;

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

INSERT INTO plates (plate, agency_id, skeleton, reads, first_seen, last_seen)
SELECT plate, agency_id, translate(plate, 'ODQILBSZG', '000118526'), count(),
    min(toDateTime(captured_at, 'UTC')), max(toDateTime(captured_at, 'UTC'))
FROM reads
WHERE (SELECT count() FROM plates) = 0
GROUP BY plate, agency_id;

CREATE TABLE IF NOT EXISTS read_counts_hourly
(
    agency_id LowCardinality(String),
    hour DateTime('UTC'),
    camera_id LowCardinality(String),
    reads UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (agency_id, hour, camera_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS read_counts_hourly_mv TO read_counts_hourly AS
SELECT agency_id, toStartOfHour(toDateTime(captured_at, 'UTC')) AS hour, camera_id, toUInt64(count()) AS reads
FROM reads
GROUP BY agency_id, hour, camera_id;

INSERT INTO read_counts_hourly (agency_id, hour, camera_id, reads)
SELECT agency_id, toStartOfHour(toDateTime(captured_at, 'UTC')) AS hour, camera_id, count()
FROM reads
WHERE (SELECT count() FROM read_counts_hourly) = 0
GROUP BY agency_id, hour, camera_id;

CREATE TABLE IF NOT EXISTS cameras
(
    camera_id String,
    agency_id LowCardinality(String),
    lat Float64,
    lon Float64,
    last_seen DateTime('UTC')
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY camera_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS cameras_mv TO cameras AS
SELECT camera_id, any(agency_id) AS agency_id, argMax(lat, captured_at) AS lat,
    argMax(lon, captured_at) AS lon, max(toDateTime(captured_at, 'UTC')) AS last_seen
FROM reads
GROUP BY camera_id;

INSERT INTO cameras (camera_id, agency_id, lat, lon, last_seen)
SELECT camera_id, any(agency_id), argMax(lat, captured_at), argMax(lon, captured_at),
    max(toDateTime(captured_at, 'UTC'))
FROM reads
WHERE (SELECT count() FROM cameras) = 0
GROUP BY camera_id;

-- A mirror of hotlist entries (the hotlist service's compacted topic stays the source of truth), so
-- analytics can join reads with lists; versions fold by updated_at.
CREATE TABLE IF NOT EXISTS hotlist_entries
(
    hotlist_id LowCardinality(String),
    entry_id String,
    plate String,
    hotlist_name String,
    agency_id LowCardinality(String),
    reason LowCardinality(String),
    active Bool,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (hotlist_id, entry_id)
SETTINGS non_replicated_deduplication_window = 1000;
