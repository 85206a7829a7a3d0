-- heimdall.integer_arg(value numeric, what text, min_value numeric, max_value numeric,
--                      too_large_sqlstate text) -> bigint
--
-- Purpose: the one home of "a count or seed argument is a whole number in range". Public
--   functions take such arguments as numeric, so any number a client sends (1.5, 2^63,
--   1e30) reaches a clear error instead of 42883 "function does not exist" or a bare
--   "out of range".
-- Parameters: value; what - the argument's name for the message; min_value..max_value -
--   inclusive range; too_large_sqlstate - SQLSTATE when value > max_value (22003 for
--   counts, 22023 otherwise).
-- Returns: value as bigint.
-- Errors: 22023 NULL, not a whole number, or below min_value; too_large_sqlstate above
--   max_value. Every message names the argument and the limit.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.integer_arg(value numeric, what text, min_value numeric, max_value numeric,
                                                too_large_sqlstate text DEFAULT '22023')
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    IF value IS NULL OR value = 'NaN'::numeric OR value <> trunc(value) THEN
        RAISE EXCEPTION '% must be a whole number, got %', what, coalesce(value::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value < min_value THEN
        RAISE EXCEPTION '% must be >= %, got %', what, min_value, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value > max_value THEN
        RAISE EXCEPTION '% must be <= %, got %', what, max_value, value
            USING ERRCODE = too_large_sqlstate;
    END IF;
    RETURN value::bigint;
END;
$$;

COMMENT ON FUNCTION heimdall.integer_arg(numeric, text, numeric, numeric, text) IS
    'Internal: check a whole-number argument and its range (22023/22003 naming it).';
