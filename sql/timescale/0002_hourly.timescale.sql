-- Community-licensed TimescaleDB: hourly rollups as a continuous aggregate with
-- a refresh policy, and the seed's retention policies. (The Apache build and
-- plain PostgreSQL use sql/postgres/0002_hourly.plain+apache.sql instead.)
CREATE MATERIALIZED VIEW IF NOT EXISTS metrics_hourly
WITH (timescaledb.continuous) AS
SELECT time_bucket(interval '1 hour', time) AS hour,
       run_id,
       metric_name,
       count(*) AS count,
       avg(value) FILTER (WHERE value NOT IN ('NaN', 'Infinity', '-Infinity')) AS avg_value,
       min(value) FILTER (WHERE value NOT IN ('NaN', 'Infinity', '-Infinity')) AS min_value,
       max(value) FILTER (WHERE value NOT IN ('NaN', 'Infinity', '-Infinity')) AS max_value,
       stddev_samp(value) FILTER (WHERE value NOT IN ('NaN', 'Infinity', '-Infinity')) AS std_dev
FROM metrics
GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('metrics_hourly',
    start_offset => NULL, end_offset => interval '1 minute',
    schedule_interval => interval '1 hour', if_not_exists => true);
SELECT add_retention_policy('metrics', interval '90 days', if_not_exists => true);
SELECT add_retention_policy('system_metrics', interval '30 days', if_not_exists => true);
