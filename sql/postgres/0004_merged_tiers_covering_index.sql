-- Performance: series reads become index-only scans; tier rows are merged at ingest.

-- History, bulk export and downsampling edges read (step, time, value) of one
-- series in (step, time) order: with value in the index they never touch the heap.
CREATE INDEX IF NOT EXISTS metrics_series_idx
    ON metrics (run_id, metric_name, step, time) INCLUDE (value);
DROP INDEX IF EXISTS metrics_series_step_idx;

-- One tier row per (series, level, bucket): ingest upserts and merges partials
-- (sql in store/postgres_ingest.py). Merge the rows appended by earlier versions
-- first (M4 partial merge: sums; first = least (step, time); last = greatest;
-- min = least (value, step, time) over finite values; max = greatest value,
-- ties to least (step, time); NaN min/max = no finite value).
CREATE TEMP TABLE wanllm_tier_dups ON COMMIT DROP AS
SELECT t.* FROM metric_tiers t
JOIN (SELECT run_id, metric_name, level, bucket FROM metric_tiers
      GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d USING (run_id, metric_name, level, bucket);

DELETE FROM metric_tiers t USING wanllm_tier_dups d
WHERE (t.run_id, t.metric_name, t.level, t.bucket) = (d.run_id, d.metric_name, d.level, d.bucket);

INSERT INTO metric_tiers (run_id, metric_name, level, bucket, count, nonfinite,
    min_value, max_value, min_step, min_time, max_step, max_time, first_step, first_time,
    first_value, last_step, last_time, last_value)
SELECT s.run_id, s.metric_name, s.level, s.bucket, s.count, s.nonfinite,
       mn.min_value, mx.max_value, mn.min_step, mn.min_time, mx.max_step, mx.max_time,
       f.first_step, f.first_time, f.first_value, l.last_step, l.last_time, l.last_value
FROM (SELECT run_id, metric_name, level, bucket, sum(count)::bigint AS count,
             sum(nonfinite)::bigint AS nonfinite
      FROM wanllm_tier_dups GROUP BY 1, 2, 3, 4) s
JOIN (SELECT DISTINCT ON (run_id, metric_name, level, bucket)
             run_id, metric_name, level, bucket, first_step, first_time, first_value
      FROM wanllm_tier_dups ORDER BY run_id, metric_name, level, bucket, first_step, first_time) f
  USING (run_id, metric_name, level, bucket)
JOIN (SELECT DISTINCT ON (run_id, metric_name, level, bucket)
             run_id, metric_name, level, bucket, last_step, last_time, last_value
      FROM wanllm_tier_dups
      ORDER BY run_id, metric_name, level, bucket, last_step DESC, last_time DESC) l
  USING (run_id, metric_name, level, bucket)
JOIN (SELECT DISTINCT ON (run_id, metric_name, level, bucket)
             run_id, metric_name, level, bucket, min_value, min_step, min_time
      FROM wanllm_tier_dups  -- NaN sorts after every number
      ORDER BY run_id, metric_name, level, bucket, min_value, min_step, min_time) mn
  USING (run_id, metric_name, level, bucket)
JOIN (SELECT DISTINCT ON (run_id, metric_name, level, bucket)
             run_id, metric_name, level, bucket, max_value, max_step, max_time
      FROM wanllm_tier_dups
      ORDER BY run_id, metric_name, level, bucket, max_value = 'NaN', max_value DESC,
               max_step, max_time) mx
  USING (run_id, metric_name, level, bucket);

-- Tier and summary rows are updated in place: leave room for HOT updates.
ALTER TABLE metric_tiers SET (fillfactor = 80);
ALTER TABLE metric_summaries SET (fillfactor = 70);
CREATE UNIQUE INDEX IF NOT EXISTS metric_tiers_key ON metric_tiers (run_id, metric_name, level, bucket);
DROP INDEX IF EXISTS metric_tiers_idx;
