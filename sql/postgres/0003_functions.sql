-- The seed's helper functions, answered from the per-series summary (O(1)).
CREATE OR REPLACE FUNCTION get_latest_metric_value(p_run_id uuid, p_metric_name text)
RETURNS TABLE (step bigint, "time" timestamptz, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT s.latest_step, s.latest_time, s.latest_value
    FROM metric_summaries s
    WHERE s.run_id = p_run_id AND s.metric_name = p_metric_name AND s.count > 0
$$;

CREATE OR REPLACE FUNCTION get_metric_stats(p_run_id uuid, p_metric_name text)
RETURNS TABLE (
    metric_name text, count bigint, min_value double precision, max_value double precision,
    avg_value double precision, std_dev double precision,
    first_time timestamptz, last_time timestamptz
)
LANGUAGE sql STABLE AS $$
    SELECT s.metric_name::text, s.count, s.min_value, s.max_value, s.mean,
           CASE WHEN s.finite_count > 1 THEN sqrt(greatest(s.m2, 0) / (s.finite_count - 1)) END,
           s.first_time, s.last_time
    FROM metric_summaries s
    WHERE s.run_id = p_run_id AND s.metric_name = p_metric_name AND s.count > 0
$$;
