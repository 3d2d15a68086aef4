-- float8 products and quotients without PostgreSQL's underflow error, for the
-- summaries' moment merge (store/aggregates.merge_moments, whose float formulas
-- Python evaluates in IEEE arithmetic): PostgreSQL raises "value out of range:
-- underflow" exactly where the IEEE result of two non-zero operands is zero;
-- these return that zero, signed as IEEE signs it. Any other error (an
-- overflow: the callers only use them inside merge_moments' safe range) is
-- raised as before.
CREATE OR REPLACE FUNCTION wanllm_fmul(x double precision, y double precision)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN x * y;
EXCEPTION WHEN numeric_value_out_of_range THEN
    IF SQLERRM LIKE '%underflow%' THEN
        RETURN CASE WHEN (x < 0) <> (y < 0) THEN '-0'::float8 ELSE '0'::float8 END;
    END IF;
    RAISE;
END
$$;

CREATE OR REPLACE FUNCTION wanllm_fdiv(x double precision, y double precision)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN x / y;
EXCEPTION WHEN numeric_value_out_of_range THEN
    IF SQLERRM LIKE '%underflow%' THEN
        RETURN CASE WHEN (x < 0) <> (y < 0) THEN '-0'::float8 ELSE '0'::float8 END;
    END IF;
    RAISE;
END
$$;
