-- heimdall.mark_gc_done(dataset_id uuid) -> boolean
--
-- Purpose: `heimdall-synth gc` removed every object of a deleted dataset: record it in
--   heimdall.deleted_datasets (gc_done_at) so later runs skip it. Audited.
-- Parameters: dataset_id - a deleted dataset.
-- Returns: true if it was marked now, false if it was marked before (idempotent).
-- Errors: P0002 no deleted dataset with that id. Locks: its deleted_datasets row.
CREATE OR REPLACE FUNCTION heimdall.mark_gc_done(dataset_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_done timestamptz;
BEGIN
    SELECT x.gc_done_at INTO v_done FROM heimdall.deleted_datasets x
     WHERE x.dataset_id = mark_gc_done.dataset_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no deleted dataset %', coalesce(mark_gc_done.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_done IS NOT NULL THEN
        RETURN false;
    END IF;
    UPDATE heimdall.deleted_datasets x SET gc_done_at = now() WHERE x.dataset_id = mark_gc_done.dataset_id;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (mark_gc_done.dataset_id, 'gc_done', '{}');
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.mark_gc_done(uuid) IS
    'Admin: record that every object of a deleted dataset is gone (audited).';
