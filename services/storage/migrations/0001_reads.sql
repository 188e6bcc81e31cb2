-- One row per normalized read (one vehicle pass at one camera), written by the writer from the
-- reads topic. Images live in read_images so plate searches never read JPEG bytes.
--
-- Why this layout:
-- * ORDER BY (agency_id, plate, captured_at): every search is scoped to agencies and asks for a
--   plate (exact or prefix pattern) newest first; ordering by plate then time with monthly
--   partitions was measured to answer plate lookups in milliseconds.
-- * PARTITION BY toYYYYMM(captured_at): retention drops whole months, and time-range filters
--   (including the writer's duplicate check) prune partitions.
-- * non_replicated_deduplication_window: plain MergeTree only honours insert_deduplication_token
--   (the writer's retry idempotency) when it keeps a window of recent insert hashes.
-- * The bloom filter on read_id lets the writer's "which of these read_ids exist" check skip
--   granules, since read_id is not in the sorting key.
-- * Timestamps are UTC DateTime64(3): captures are millisecond-precise and zone-free.
CREATE TABLE IF NOT EXISTS reads
(
    read_id String,
    plate String,
    region LowCardinality(String),
    format_known Bool,
    confidence Float32,
    camera_id LowCardinality(String),
    agency_id LowCardinality(String),
    lat Float64,
    lon Float64,
    direction LowCardinality(String),
    captured_at DateTime64(3, 'UTC'),
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    vehicle_color LowCardinality(String),
    vehicle_color_confidence Float32,
    vehicle_make LowCardinality(String),
    vehicle_type LowCardinality(String),
    box_x Int32,
    box_y Int32,
    box_width Int32,
    box_height Int32,
    frames Int32,
    -- Recognition candidates, best first; the two arrays are parallel.
    candidate_texts Array(String),
    candidate_confidences Array(Float32),
    normalized_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX read_id_bloom read_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(captured_at)
ORDER BY (agency_id, plate, captured_at)
SETTINGS non_replicated_deduplication_window = 1000;
