-- Legal-hold marks on the rows themselves, for the retention TTL backstop (services/retention/ttl.py).
--
-- The retention job deletes past-limit rows with audited `ALTER TABLE ... DELETE` mutations and
-- stays the enforcing path. Beside it every table holding a retention class carries a TTL
-- `... DELETE WHERE legal_hold = 0`, so storage itself removes rows that outlive the policy's limit
-- by more than a grace period if the job stops. A TTL can only read the row's own columns (no
-- subquery into legal_holds), so a row under an active hold is marked here: `legal_hold = 1`, set
-- when a hold is placed and cleared by the job after a release (services/retention/holds.py).
-- * reads, read_images, alerts: the held reads, their images and their alerts.
-- * reads_by_camera, plates (derived by materialized views, which leave the column at its
--   default): the copies of held reads, so the derived tables keep what `reads` keeps. In plates
--   (AggregatingMergeTree) the mark is max-aggregated, so merging in newer rows of a held plate
--   keeps it.
-- read_counts_hourly and cameras hold no plate and are not trimmed by the job: no mark, no TTL.
-- audit_log gets no mark and no TTL: its prefix may only go after the chain records the deletion.
-- The columns have a DEFAULT, so the writer's inserts (explicit column lists) are unchanged. The
-- TTL expressions themselves come from the policy at run time (limits differ per profile).
-- materialize_ttl_recalculate_only: when the TTL is changed, parts only get their TTL information
-- recomputed (reading the few TTL columns) instead of being rewritten whole; expired rows then go
-- at the next TTL merge.
ALTER TABLE reads ADD COLUMN IF NOT EXISTS legal_hold UInt8 DEFAULT 0;
ALTER TABLE read_images ADD COLUMN IF NOT EXISTS legal_hold UInt8 DEFAULT 0;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS legal_hold UInt8 DEFAULT 0;
ALTER TABLE reads_by_camera ADD COLUMN IF NOT EXISTS legal_hold UInt8 DEFAULT 0;
ALTER TABLE plates ADD COLUMN IF NOT EXISTS legal_hold SimpleAggregateFunction(max, UInt8) DEFAULT 0;
ALTER TABLE reads MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE read_images MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE alerts MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE reads_by_camera MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE plates MODIFY SETTING materialize_ttl_recalculate_only = 1;
