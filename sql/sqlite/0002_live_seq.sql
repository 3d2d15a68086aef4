-- Live sequence numbers (docs/api.md, "Live message ordering").
--
-- Each committed metrics batch takes the next number of each run it holds, in
-- the batch's own transaction, so the numbers follow commit order and survive
-- the ingesting server. A replay of the batch (same batch id) is re-published
-- live with the numbers it took the first time.
CREATE TABLE IF NOT EXISTS run_live_seq (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS batch_live_seq (
    batch_id TEXT NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (batch_id, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_live_seq_run ON batch_live_seq (run_id);
