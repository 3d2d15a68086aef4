-- wanllm embedded schema (SQLite). Times are INTEGER µs since the epoch (UTC).
-- Metric points are stored as columnar blocks: one row per (series, batch)
-- holding little-endian int64 steps / int64 times / float64 values, sorted by
-- (step, time), exactly what was logged (duplicates, out-of-order included).

CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,            -- canonical UUID string
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('running', 'finished', 'failed', 'crashed')),
    config       TEXT NOT NULL DEFAULT '{}',  -- JSON object
    summary      TEXT NOT NULL DEFAULT '{}',  -- JSON object
    tags         TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    notes        TEXT NOT NULL DEFAULT '',
    git_branch   TEXT,
    git_commit   TEXT,
    git_dirty    INTEGER,
    git_remote   TEXT,
    host         TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}',  -- JSON object
    exit_code    INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    heartbeat_at INTEGER,
    finished_at  INTEGER
);
CREATE INDEX IF NOT EXISTS runs_project_created ON runs (project, created_at);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state);

-- One row per (run, metric): the mergeable summary (aggregates.Summary).
CREATE TABLE IF NOT EXISTS metric_series (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    count        INTEGER NOT NULL,
    finite_count INTEGER NOT NULL,
    mean         REAL,
    m2           REAL,
    min_value    REAL,
    max_value    REAL,
    first_time   INTEGER NOT NULL,
    last_time    INTEGER NOT NULL,
    first_step   INTEGER NOT NULL,
    last_step    INTEGER NOT NULL,
    latest_step  INTEGER NOT NULL,
    latest_time  INTEGER NOT NULL,
    latest_value REAL,                         -- NULL encodes NaN (SQLite stores NaN as NULL)
    latest_bits  INTEGER NOT NULL,             -- exact float64 bits of latest_value
    writes       INTEGER NOT NULL DEFAULT 1,   -- batches written (paces compaction checks)
    UNIQUE (run_id, name)
);

CREATE TABLE IF NOT EXISTS metric_blocks (
    id         INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
    n          INTEGER NOT NULL,
    min_step   INTEGER NOT NULL,
    max_step   INTEGER NOT NULL,
    min_time   INTEGER NOT NULL,
    max_time   INTEGER NOT NULL,
    steps      BLOB NOT NULL,
    times      BLOB NOT NULL,
    vals       BLOB NOT NULL,
    metadata   TEXT                            -- JSON [[i, {...}], ...] or NULL
);
CREATE INDEX IF NOT EXISTS metric_blocks_series_step ON metric_blocks (series_id, min_step);

-- Append-only M4 tier partials: one row per (series, level, batch), packed
-- aggregates.PARTIAL_DTYPE records sorted by bucket.
CREATE TABLE IF NOT EXISTS metric_tiers (
    id         INTEGER PRIMARY KEY,
    series_id  INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
    level      INTEGER NOT NULL,
    n          INTEGER NOT NULL,               -- partials in data
    min_bucket INTEGER NOT NULL,
    max_bucket INTEGER NOT NULL,
    data       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_tiers_series_level ON metric_tiers (series_id, level, min_bucket);

CREATE TABLE IF NOT EXISTS system_metrics (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    metric_type TEXT NOT NULL,
    time        INTEGER NOT NULL,
    value       REAL,                          -- NULL encodes NaN
    value_bits  INTEGER NOT NULL,
    device      TEXT,
    node        TEXT,
    metadata    TEXT
);
CREATE INDEX IF NOT EXISTS system_metrics_run_type_time ON system_metrics (run_id, metric_type, time);
CREATE INDEX IF NOT EXISTS system_metrics_time ON system_metrics (time);

-- Idempotency keys of written batches: a replay writes nothing.
CREATE TABLE IF NOT EXISTS batches (
    batch_id   TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    points     INTEGER NOT NULL,
    written_at INTEGER NOT NULL
) WITHOUT ROWID;
