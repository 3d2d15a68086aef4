-- Core schema: runs, raw metrics, per-series summaries, M4 tiers, batch ids.
-- Applied on every backend mode (plain PostgreSQL, TimescaleDB Apache/community).

CREATE TABLE IF NOT EXISTS runs (
    id           uuid PRIMARY KEY,
    project      text NOT NULL,
    name         text NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'finished', 'failed', 'crashed')),
    config       jsonb NOT NULL DEFAULT '{}'::jsonb,
    summary      jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags         text[] NOT NULL DEFAULT '{}',
    notes        text NOT NULL DEFAULT '',
    git_branch   text,
    git_commit   text,
    git_dirty    boolean,
    git_remote   text,
    host         text,
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    exit_code    integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz,
    finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS runs_project_created_idx ON runs (project, created_at DESC, id);
CREATE INDEX IF NOT EXISTS runs_created_idx ON runs (created_at DESC, id);
CREATE INDEX IF NOT EXISTS runs_tags_idx ON runs USING gin (tags);
CREATE INDEX IF NOT EXISTS runs_running_heartbeat_idx
    ON runs ((coalesce(heartbeat_at, created_at))) WHERE state = 'running';

-- Raw points, stored as logged (no primary key: duplicate steps are kept).
CREATE TABLE IF NOT EXISTS metrics (
    time        timestamptz NOT NULL,
    run_id      uuid NOT NULL,
    metric_name varchar(255) NOT NULL,
    step        bigint NOT NULL,
    value       double precision NOT NULL,
    metadata    jsonb
);
-- history / bulk export / downsampling edges / retention rebuild: one series in
-- (step, time) order straight from the index (no sort).
CREATE INDEX IF NOT EXISTS metrics_series_step_idx ON metrics (run_id, metric_name, step, time);
-- retention DELETE and hourly rebuilds by time: BRIN costs next to nothing at ingest.
CREATE INDEX IF NOT EXISTS metrics_time_brin ON metrics USING brin (time);

CREATE TABLE IF NOT EXISTS system_metrics (
    time        timestamptz NOT NULL,
    run_id      uuid NOT NULL,
    metric_type varchar(128) NOT NULL,
    value       double precision NOT NULL,
    metadata    jsonb,
    device      text,
    node        text
);
CREATE INDEX IF NOT EXISTS system_metrics_run_type_time_idx
    ON system_metrics (run_id, metric_type, time);
CREATE INDEX IF NOT EXISTS system_metrics_time_brin ON system_metrics USING brin (time);

-- One row per series, maintained in the ingest transaction: exact stats and
-- the latest point in O(1). Statistics are over finite values (Welford mean/m2).
CREATE TABLE IF NOT EXISTS metric_summaries (
    run_id          uuid NOT NULL,
    metric_name     varchar(255) NOT NULL,
    count           bigint NOT NULL DEFAULT 0,
    finite_count    bigint NOT NULL DEFAULT 0,
    nonfinite_count bigint NOT NULL DEFAULT 0,
    mean            double precision,
    m2              double precision,
    min_value       double precision,
    max_value       double precision,
    first_time      timestamptz,
    last_time       timestamptz,
    first_step      bigint,
    last_step       bigint,
    latest_step     bigint,
    latest_time     timestamptz,
    latest_value    double precision,
    PRIMARY KEY (run_id, metric_name)
);

-- Append-only M4 tiers: partial aggregates of power-of-two step buckets, one
-- row per (series, level, bucket) per batch; readers merge rows of a bucket.
CREATE TABLE IF NOT EXISTS metric_tiers (
    run_id      uuid NOT NULL,
    metric_name varchar(255) NOT NULL,
    level       smallint NOT NULL,
    bucket      bigint NOT NULL,
    count       bigint NOT NULL,
    nonfinite   bigint NOT NULL,
    min_value   double precision NOT NULL,  -- NaN when the bucket has no finite value
    max_value   double precision NOT NULL,
    min_step    bigint NOT NULL,
    min_time    bigint NOT NULL,
    max_step    bigint NOT NULL,
    max_time    bigint NOT NULL,
    first_step  bigint NOT NULL,
    first_time  bigint NOT NULL,
    first_value double precision NOT NULL,
    last_step   bigint NOT NULL,
    last_time   bigint NOT NULL,
    last_value  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_tiers_idx ON metric_tiers (run_id, metric_name, level, bucket);

-- Idempotency: a batch id seen before writes nothing.
CREATE TABLE IF NOT EXISTS ingest_batches (
    kind       text NOT NULL,
    batch_id   text NOT NULL,
    points     integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, batch_id)
);
