-- Live sequence numbers (docs/api.md, "Live message ordering").
--
-- Each committed metrics batch takes the next number of each run it holds, in
-- the batch's own transaction (the counter row stays locked until commit, so
-- the numbers of a run follow commit order) and so survives the ingesting
-- server. A replay of the batch (same batch id) is re-published live with the
-- numbers it took the first time; pruning ingest_batches prunes these too.
CREATE TABLE IF NOT EXISTS run_live_seq (
    run_id uuid PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    seq    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS batch_live_seq (
    kind     text NOT NULL DEFAULT 'metrics' CHECK (kind = 'metrics'),
    batch_id text NOT NULL,
    run_id   uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq      bigint NOT NULL,
    PRIMARY KEY (kind, batch_id, run_id),
    FOREIGN KEY (kind, batch_id) REFERENCES ingest_batches (kind, batch_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS batch_live_seq_run ON batch_live_seq (run_id);
