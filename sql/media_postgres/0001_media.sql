-- Media (images, histograms, tables) of runs, on every mode (plain tables on
-- TimescaleDB too). Bytes are content-addressed blobs (sha256 hex) stored once,
-- with the number of item rows referencing them.

CREATE TABLE IF NOT EXISTS media_blobs (
    digest     text PRIMARY KEY,
    media_type text NOT NULL,
    size       integer NOT NULL,
    refs       integer NOT NULL,
    data       bytea NOT NULL
);

-- A key keeps one kind for the run's life.
CREATE TABLE IF NOT EXISTS media_keys (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key    text NOT NULL,
    kind   text NOT NULL CHECK (kind IN ('image', 'histogram', 'table')),
    UNIQUE (run_id, key)
);

-- One row per logged (key, step); its item rows go with it.
CREATE TABLE IF NOT EXISTS media_steps (
    key_id bigint NOT NULL REFERENCES media_keys (id) ON DELETE CASCADE,
    step   bigint NOT NULL,
    time   timestamptz NOT NULL,
    PRIMARY KEY (key_id, step)
);
CREATE INDEX IF NOT EXISTS media_steps_time_idx ON media_steps (time);

CREATE TABLE IF NOT EXISTS media_images (
    key_id  bigint NOT NULL,
    step    bigint NOT NULL,
    idx     integer NOT NULL,
    caption text,
    width   integer NOT NULL,
    height  integer NOT NULL,
    digest  text NOT NULL REFERENCES media_blobs (digest),
    PRIMARY KEY (key_id, step, idx),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS media_histograms (
    key_id bigint NOT NULL,
    step   bigint NOT NULL,
    edges  float8[] NOT NULL,
    counts float8[] NOT NULL,
    PRIMARY KEY (key_id, step),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS media_tables (
    key_id bigint NOT NULL,
    step   bigint NOT NULL,
    nrows  integer NOT NULL,
    digest text NOT NULL REFERENCES media_blobs (digest),
    PRIMARY KEY (key_id, step),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
);
