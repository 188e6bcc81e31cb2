-- Column codecs for `reads`, chosen by measuring each column alone in the table's sort order with
-- `platewatch bench search` data (1M reads; compressed MB per million reads, default LZ4 -> chosen):
-- * read_id: 30.2 -> 15.4 with ZSTD(1) (ZSTD(3) was larger: 17.7). The id is 32 hex digits from the
--   normalizer with 80 random bits, so ~10 bytes per read is the floor; an 8-byte time-ordered id
--   would need the normalizer to emit one (see the search README section).
-- * the five timestamps: 6.1 -> 3.9 each with T64 + ZSTD (Delta 4.3, DoubleDelta 4.9: within one
--   plate consecutive reads are hours apart, so there is little delta structure to exploit).
-- * small integers (box, frames): T64 + ZSTD halves them; lat/lon: ZSTD(1) 0.96 vs 2.5 (a camera's
--   position repeats), Gorilla/FPC were worse; confidence: ZSTD(1).
-- Codecs apply to parts written or merged from now on; no existing data is rewritten.
ALTER TABLE reads MODIFY COLUMN read_id String CODEC(ZSTD(1));
ALTER TABLE reads MODIFY COLUMN captured_at DateTime64(3, 'UTC') CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN first_seen DateTime64(3, 'UTC') CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN last_seen DateTime64(3, 'UTC') CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN normalized_at DateTime64(3, 'UTC') CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN box_x Int32 CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN box_y Int32 CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN box_width Int32 CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN box_height Int32 CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN frames Int32 CODEC(T64, ZSTD(1));
ALTER TABLE reads MODIFY COLUMN lat Float64 CODEC(ZSTD(1));
ALTER TABLE reads MODIFY COLUMN lon Float64 CODEC(ZSTD(1));
ALTER TABLE reads MODIFY COLUMN confidence Float32 CODEC(ZSTD(1));
ALTER TABLE reads MODIFY COLUMN vehicle_color_confidence Float32 CODEC(ZSTD(1));
