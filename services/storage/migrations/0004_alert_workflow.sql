-- The operator workflow of an alert (who confirmed, dispatched, dismissed, recorded which outcome,
-- and when), plus the whole alert as protobuf (images removed: they are in read_images) so the
-- search service can return an alert's latest state exactly as it was published.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS outcome LowCardinality(String) DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS confirmed_by String DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS confirmed_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS dispatched_by String DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS dispatched_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS dismissed_by String DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS dismissed_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS outcome_recorded_by String DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS outcome_recorded_at Nullable(DateTime64(3, 'UTC'));
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS note String DEFAULT '';
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS alert_pb String DEFAULT '' CODEC(ZSTD(3));
