-- Plain PostgreSQL: the raw point and tier tables, emptied by 0008, are gone.
-- (TimescaleDB drops them in sql/timescale/0004_packed_blocks.sql.)
DROP TABLE IF EXISTS metrics;
DROP TABLE IF EXISTS metric_tiers;
