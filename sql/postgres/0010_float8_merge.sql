-- numeric -> float8 without an error, for the summaries' moment merge
-- (store/aggregates.merge_moments): NaN stays NaN, a value that rounds past
-- float8's range (>= 2^1024 - 2^970) is +-Infinity, as Python's float() would
-- overflow there.
CREATE OR REPLACE FUNCTION wanllm_float8(x numeric) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN x = 'NaN'::numeric THEN 'NaN'::float8
        WHEN x >= 2::numeric ^ 1024 - 2::numeric ^ 970 THEN 'Infinity'::float8
        WHEN x <= -(2::numeric ^ 1024 - 2::numeric ^ 970) THEN '-Infinity'::float8
        ELSE x::float8
    END
$$;
