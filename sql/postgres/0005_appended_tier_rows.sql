-- Ingest speed: tier partials of buckets a batch fills are appended by COPY.
--
-- Each (series, level, bucket) keeps one merged row (merged = true), upserted and
-- merged at ingest. A batch holding at least 2**level points of a bucket instead
-- appends its partial of that bucket as a row of its own (merged IS NULL; NULLs
-- never collide in the unique index), which costs a fraction of an upsert.
-- Readers merge all rows of a bucket (M4 partials merge associatively); a bucket
-- holds at most 1 + points / 2**level rows. Existing rows are merged rows.
ALTER TABLE metric_tiers ADD COLUMN IF NOT EXISTS merged boolean DEFAULT true CHECK (merged);
ALTER TABLE metric_tiers ALTER COLUMN merged DROP DEFAULT;
CREATE UNIQUE INDEX IF NOT EXISTS metric_tiers_merged_key
    ON metric_tiers (run_id, metric_name, level, bucket, merged);
DROP INDEX IF EXISTS metric_tiers_key;
