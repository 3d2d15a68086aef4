-- Hypertables (Apache features). metrics: reads are by series and step, so no
-- default time index; 7-day chunks keep the per-series index scans few.
-- system_metrics: read by time range, 1-day chunks.
SELECT create_hypertable('metrics', 'time',
    chunk_time_interval => interval '7 days',
    create_default_indexes => false,
    if_not_exists => true,
    migrate_data => true);
SELECT create_hypertable('system_metrics', 'time',
    chunk_time_interval => interval '1 day',
    create_default_indexes => false,
    if_not_exists => true,
    migrate_data => true);
