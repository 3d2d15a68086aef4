-- Hourly rollups without TimescaleDB's community licence (plain PostgreSQL and
-- the Apache build): a table the server maintains in each ingest transaction
-- (Welford/Chan merge of the batch's per-hour partials), so late and
-- out-of-order points are rolled up exactly. Statistics are over finite values.
CREATE TABLE IF NOT EXISTS metrics_hourly (
    hour         timestamptz NOT NULL,
    run_id       uuid NOT NULL,
    metric_name  varchar(255) NOT NULL,
    count        bigint NOT NULL,
    finite_count bigint NOT NULL,
    mean         double precision,
    m2           double precision,
    min_value    double precision,
    max_value    double precision,
    PRIMARY KEY (run_id, metric_name, hour)
);
CREATE INDEX IF NOT EXISTS metrics_hourly_hour_idx ON metrics_hourly (hour);
