-- Media (images, histograms, tables) of runs. Bytes are content-addressed blobs
-- (sha256 hex) stored once, with the number of item rows referencing them.

CREATE TABLE IF NOT EXISTS media_blobs (
    digest     TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    refs       INTEGER NOT NULL,
    data       BLOB NOT NULL
);

-- A key keeps one kind for the run's life.
CREATE TABLE IF NOT EXISTS media_keys (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('image', 'histogram', 'table')),
    UNIQUE (run_id, key)
);

-- One row per logged (key, step); its item rows go with it.
CREATE TABLE IF NOT EXISTS media_steps (
    key_id INTEGER NOT NULL REFERENCES media_keys (id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    time   INTEGER NOT NULL,
    PRIMARY KEY (key_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS media_steps_time ON media_steps (time);

CREATE TABLE IF NOT EXISTS media_images (
    key_id  INTEGER NOT NULL,
    step    INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    caption TEXT,
    width   INTEGER NOT NULL,
    height  INTEGER NOT NULL,
    digest  TEXT NOT NULL REFERENCES media_blobs (digest),
    PRIMARY KEY (key_id, step, idx),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
) WITHOUT ROWID;

-- edges and counts: packed little-endian float64
CREATE TABLE IF NOT EXISTS media_histograms (
    key_id INTEGER NOT NULL,
    step   INTEGER NOT NULL,
    edges  BLOB NOT NULL,
    counts BLOB NOT NULL,
    PRIMARY KEY (key_id, step),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS media_tables (
    key_id INTEGER NOT NULL,
    step   INTEGER NOT NULL,
    nrows  INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES media_blobs (digest),
    PRIMARY KEY (key_id, step),
    FOREIGN KEY (key_id, step) REFERENCES media_steps (key_id, step) ON DELETE CASCADE
) WITHOUT ROWID;
