-- Packed storage (docs/storage.md): a series' points live in blocks, one row of
-- packed columns (store/blocks.py) per block; M4 tier partials in packed rows
-- per (series, level). A batch writes one row per series: a sealed block (with
-- its tier rows) when large, else a row of the open tail (metric_tail, no
-- tiers), sealed into blocks as it fills (store/postgres_blocks.py). Existing
-- rows are converted here; `metrics` and `metric_tiers` are emptied (dropped
-- by 0009_drop_raw.plain.sql, or by sql/timescale/0004 once their hypertable
-- migrations have run).

CREATE TABLE IF NOT EXISTS metric_blocks (
    time        timestamptz NOT NULL,  -- earliest time of its points (hypertable key)
    run_id      uuid NOT NULL,
    metric_name varchar(255) NOT NULL,
    n           integer NOT NULL,       -- points
    min_step    bigint NOT NULL,
    max_step    bigint NOT NULL,
    max_time    timestamptz NOT NULL,
    steps       bytea NOT NULL,         -- points sorted by (step, time)
    times       bytea NOT NULL,
    vals        bytea NOT NULL,
    metadata    jsonb                   -- [[index, {...}], ...] or NULL
);
CREATE INDEX IF NOT EXISTS metric_blocks_series
    ON metric_blocks (run_id, metric_name, min_step) INCLUDE (max_step, n);

-- The open tails: small rows, deleted as they are sealed (a plain table even on
-- TimescaleDB, vacuumed often, so the blocks' hypertable stays append-only).
CREATE TABLE IF NOT EXISTS metric_tail (LIKE metric_blocks INCLUDING ALL);
ALTER TABLE metric_tail SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                             autovacuum_vacuum_insert_scale_factor = 0,
                             autovacuum_vacuum_insert_threshold = 2000);

CREATE TABLE IF NOT EXISTS metric_tier_blocks (
    run_id      uuid NOT NULL,
    metric_name varchar(255) NOT NULL,
    level       smallint NOT NULL,
    n           integer NOT NULL,       -- partials, sorted by bucket
    min_bucket  bigint NOT NULL,
    max_bucket  bigint NOT NULL,
    data        bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_tier_blocks_series
    ON metric_tier_blocks (run_id, metric_name, level, min_bucket) INCLUDE (max_bucket, n);

-- Batches written per series since its last seal.
ALTER TABLE metric_summaries ADD COLUMN IF NOT EXISTS open_writes integer NOT NULL DEFAULT 0;

-- Existing points: blocks of at most 65,536 points per series, big-endian columns.
INSERT INTO metric_blocks (time, run_id, metric_name, n, min_step, max_step, max_time,
                           steps, times, vals, metadata)
SELECT min(time), run_id, metric_name, count(*)::int, min(step), max(step), max(time),
       '\x80'::bytea || string_agg(int8send(step), ''::bytea ORDER BY step, time, value),
       '\x80'::bytea || string_agg(int8send((extract(epoch FROM time) * 1000000)::bigint),
                                   ''::bytea ORDER BY step, time, value),
       '\x80'::bytea || string_agg(float8send(value), ''::bytea ORDER BY step, time, value),
       jsonb_agg(jsonb_build_array(i, metadata) ORDER BY i) FILTER (WHERE metadata IS NOT NULL)
FROM (SELECT m.*, ((row_number() OVER w) - 1) / 65536 AS block,
             ((row_number() OVER w) - 1) % 65536 AS i
      FROM metrics m
      WINDOW w AS (PARTITION BY run_id, metric_name ORDER BY step, time, value)) p
GROUP BY run_id, metric_name, block;

-- Existing tier rows (merged and appended alike: readers merge partials of a
-- bucket), at most 4,096 partials a row, every column big-endian.
INSERT INTO metric_tier_blocks (run_id, metric_name, level, n, min_bucket, max_bucket, data)
SELECT run_id, metric_name, level, count(*)::int, min(bucket), max(bucket),
       '\x80'::bytea || string_agg(int8send(bucket), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(count), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(nonfinite), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(first_step), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(first_time), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(float8send(first_value), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(last_step), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(last_time), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(float8send(last_value), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(min_step), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(min_time), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(float8send(min_value), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(max_step), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(int8send(max_time), ''::bytea ORDER BY bucket, count)
    || '\x80'::bytea || string_agg(float8send(max_value), ''::bytea ORDER BY bucket, count)
FROM (SELECT t.*, ((row_number() OVER (PARTITION BY run_id, metric_name, level
                                       ORDER BY bucket, count)) - 1) / 4096 AS part
      FROM metric_tiers t) p
GROUP BY run_id, metric_name, level, part;

TRUNCATE metrics, metric_tiers;
