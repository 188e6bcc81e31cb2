-- Evidence images of a read, fetched one read at a time by read_id (GetReadImage), so they are
-- kept apart from reads and sorted by read_id. ReplacingMergeTree folds a read's duplicate rows
-- (a writer restarted mid-batch may write the same images twice); readers take any one row.
-- Monthly partitions by capture time match reads, so retention drops both together.
CREATE TABLE IF NOT EXISTS read_images
(
    read_id String,
    crop_jpeg String,
    frame_jpeg String,
    captured_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(captured_at)
ORDER BY read_id
SETTINGS non_replicated_deduplication_window = 1000;
