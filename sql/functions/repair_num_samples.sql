-- heimdall.repair_num_samples(dataset_id uuid) -> integer
--
-- Purpose: set num_samples to the number of feature rows (the source of truth), e.g.
--   after a client bypassed the triggers. Audited with the before/after values.
-- Returns: the new num_samples. Errors: P0002 unknown dataset.
-- Locks: the dataset row. Idempotent.
CREATE OR REPLACE FUNCTION heimdall.repair_num_samples(dataset_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_before integer;
    v_after  integer;
BEGIN
    v_before := (heimdall.dataset_row(repair_num_samples.dataset_id, true)).num_samples;
    SELECT count(*) INTO v_after FROM heimdall.measurement_features f WHERE f.dataset_id = repair_num_samples.dataset_id;
    IF v_after <> v_before THEN
        UPDATE heimdall.synthetic_datasets d SET num_samples = v_after WHERE d.id = repair_num_samples.dataset_id;
        INSERT INTO heimdall.audit_log (dataset_id, action, detail)
        VALUES (repair_num_samples.dataset_id, 'repair_num_samples',
                jsonb_build_object('before', v_before, 'after', v_after));
    END IF;
    RETURN v_after;
END;
$$;

COMMENT ON FUNCTION heimdall.repair_num_samples(uuid) IS
    'Set num_samples to the true feature row count (audited).';
