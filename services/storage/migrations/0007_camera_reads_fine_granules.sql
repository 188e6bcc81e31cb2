-- `camera_reads` replaces `reads_by_camera` (0005): the same narrow camera-ordered copy with
-- 256-row granules instead of 8192.
--
-- Why, measured with `platewatch bench search` at 10M reads (merged parts): a camera sees about
-- 5,000 reads in 90 days there (50,000 at 100M), so with 8192-row granules a camera's whole history
-- was one or a few granules and "this camera around this time" could not be pruned: the convoy
-- around the most frequent plate (1,700 sightings at 457 cameras) selected 7.6M of 10M rows and
-- took ~1 s. With 256-row granules and the convoy's (camera, time bucket) pre-filter on the key it
-- selects 0.27M rows and takes ~0.3 s; compressed size is the same (6.39 vs 6.37 MB per million
-- reads) and the primary index grows from 0.15 to 0.33 MB per 10M rows.
--
-- Order matters for a database in use: the old view stops first, the backfill runs only while the
-- new table is empty, then the new view starts; services migrate before they insert.
DROP VIEW IF EXISTS reads_by_camera_mv;

CREATE TABLE IF NOT EXISTS camera_reads
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
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;

INSERT INTO camera_reads (camera_id, captured_at, plate, agency_id, direction)
SELECT camera_id, toDateTime(captured_at, 'UTC'), plate, agency_id, direction
FROM reads
WHERE (SELECT count() FROM camera_reads) = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS camera_reads_mv TO camera_reads AS
SELECT camera_id, toDateTime(captured_at, 'UTC') AS captured_at, plate, agency_id, direction
FROM reads;

DROP TABLE IF EXISTS reads_by_camera;
