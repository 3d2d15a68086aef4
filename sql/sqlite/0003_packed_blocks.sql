-- Packed storage (docs/storage.md, "SQLite"): a series' recent batches are rows
-- of metric_tail (packed points, no tiers) until a seal moves them into
-- metric_blocks with their tier partials; every block and tier row is packed by
-- the codec PostgreSQL uses (store/blocks.py).
--
-- Existing databases hold raw little-endian blocks and raw tier partials: every
-- series is listed in series_to_pack, and the store rewrites each one packed
-- (blocks, tiers, summary) when it opens, one transaction a series. Raw tier
-- partials cannot be told from packed ones, so they are dropped here; the
-- rewrite derives them again from the points.

CREATE TABLE IF NOT EXISTS metric_tail (
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
CREATE INDEX IF NOT EXISTS metric_tail_series_step ON metric_tail (series_id, min_step);
-- retention finds the rows starting before its cutoff
CREATE INDEX IF NOT EXISTS metric_tail_time ON metric_tail (min_time);
CREATE INDEX IF NOT EXISTS metric_blocks_time ON metric_blocks (min_time);

-- points in metric_tail (a seal is due once they reach a threshold)
ALTER TABLE metric_series ADD COLUMN tail_points INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS series_to_pack (
    series_id INTEGER PRIMARY KEY REFERENCES metric_series (id) ON DELETE CASCADE
);
INSERT INTO series_to_pack SELECT id FROM metric_series;
DELETE FROM metric_tiers;
