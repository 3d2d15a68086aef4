-- Hourly rollups (0002_hourly) had no reader but the tests, and cost every
-- ingest transaction an upsert: gone. Plain PostgreSQL and the Apache build
-- kept them in a table; the community licence's continuous aggregate is
-- dropped by sql/timescale/0003_drop_hourly.timescale.sql.
DROP TABLE IF EXISTS metrics_hourly;
