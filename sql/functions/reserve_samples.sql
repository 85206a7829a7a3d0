-- heimdall.reserve_samples(dataset_id uuid, n numeric) -> TABLE(first_idx, last_idx)
--
-- Purpose: hand out the next n contiguous sample indices of a dataset from its own
--   counter (synthetic_datasets.next_idx). The only way indices are allocated.
-- Parameters: dataset_id; n - number of indices, a whole number 1 .. 10,000,000 (numeric,
--   so that 1.5 or 2^31 get a clear error rather than "function does not exist").
-- Returns: one row, first_idx .. last_idx inclusive (last_idx - first_idx + 1 = n).
-- Errors: P0002 unknown dataset; 22023 n NULL, not whole or <= 0; 22003 n > 10,000,000,
--   or the range would pass the largest sample index 2147483646 (the message says how
--   many indices are left). Sample indices are int4: 0 .. 2147483646.
-- Locks: the dataset row (FOR UPDATE semantics via UPDATE) until the caller's transaction
--   ends, so concurrent callers get disjoint ranges; a rolled-back reservation returns
--   its range (the counter update rolls back), so indices never have gaps.
-- Idempotency: none; every call reserves a new range.
CREATE OR REPLACE FUNCTION heimdall.reserve_samples(dataset_id uuid, n numeric)
RETURNS TABLE (first_idx integer, last_idx integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_n     bigint;
    v_next  integer;
    v_have  bigint;
BEGIN
    v_n := heimdall.integer_arg(reserve_samples.n, 'n (samples)', 1, 10000000, '22003');

    -- next_idx may reach 2147483647: the last index handed out is then 2147483646.
    UPDATE heimdall.synthetic_datasets d
       SET next_idx = d.next_idx + v_n::integer
     WHERE d.id = reserve_samples.dataset_id
       AND d.next_idx::bigint + v_n <= 2147483647
    RETURNING d.next_idx INTO v_next;

    IF v_next IS NULL THEN
        SELECT d.next_idx INTO v_have FROM heimdall.synthetic_datasets d WHERE d.id = reserve_samples.dataset_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dataset % does not exist', coalesce(reserve_samples.dataset_id::text, 'NULL')
                USING ERRCODE = 'no_data_found';
        END IF;
        RAISE EXCEPTION 'dataset %: % more samples would pass the largest sample index 2147483646 (next index %, at most % more)',
                reserve_samples.dataset_id, v_n, v_have, 2147483647 - v_have
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    first_idx := v_next - v_n::integer;
    last_idx := v_next - 1;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION heimdall.reserve_samples(uuid, numeric) IS
    'Reserve the next n contiguous sample indices of a dataset (row lock; rollback returns them).';
