-- Packed storage (sql/postgres/0008_packed_blocks.sql): blocks form a
-- hypertable partitioned by their earliest point time, so chunking and
-- drop_chunks apply to whole blocks; native compression, where licensed, is
-- described in docs/storage.md. The emptied raw tables are dropped.
DROP TABLE IF EXISTS metrics;
DROP TABLE IF EXISTS metric_tiers;
SELECT create_hypertable('metric_blocks', 'time',
    chunk_time_interval => interval '7 days',
    create_default_indexes => false,
    if_not_exists => true,
    migrate_data => true);
