-- heimdall.reserve_samples(dataset_id uuid, n integer) -> TABLE(first_idx, last_idx)
--
-- Purpose: hand out the next n contiguous sample indices of a dataset from its own
--   counter (synthetic_datasets.next_idx). The only way indices are allocated.
-- Parameters: dataset_id; n - number of indices, 1 .. 10,000,000.
-- Returns: one row, first_idx .. last_idx inclusive (last_idx - first_idx + 1 = n).
-- Errors: P0002 unknown dataset; 22023 n NULL or <= 0; 22003 n > 10,000,000 or the
--   counter would pass 2^31 - 1.
-- Locks: the dataset row (FOR UPDATE semantics via UPDATE) until the caller's transaction
--   ends, so concurrent callers get disjoint ranges; a rolled-back reservation returns
--   its range (the counter update rolls back), so indices never have gaps.
-- Idempotency: none; every call reserves a new range.
CREATE OR REPLACE FUNCTION heimdall.reserve_samples(dataset_id uuid, n integer)
RETURNS TABLE (first_idx integer, last_idx integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_next integer;
BEGIN
    IF n IS NULL OR n <= 0 THEN
        RAISE EXCEPTION 'n must be a positive number of samples, got %', coalesce(n::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > 10000000 THEN
        RAISE EXCEPTION 'n = % is too large: at most 10000000 samples per request', n
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    UPDATE heimdall.synthetic_datasets d
       SET next_idx = d.next_idx + n
     WHERE d.id = reserve_samples.dataset_id
       AND d.next_idx <= 2147483647 - n
    RETURNING d.next_idx INTO v_next;

    IF v_next IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d WHERE d.id = reserve_samples.dataset_id) THEN
            RAISE EXCEPTION 'dataset % does not exist', coalesce(reserve_samples.dataset_id::text, 'NULL')
                USING ERRCODE = 'no_data_found';
        END IF;
        RAISE EXCEPTION 'dataset %: reserving % more samples would pass the largest sample index', reserve_samples.dataset_id, n
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    first_idx := v_next - n;
    last_idx := v_next - 1;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION heimdall.reserve_samples(uuid, integer) IS
    'Reserve the next n contiguous sample indices of a dataset (row lock; rollback returns them).';
