-- heimdall.delete_dataset(dataset_id uuid) -> boolean
--
-- Purpose: delete a dataset with all its rows, requests, chunks and queue messages. Its
--   objects are recorded in heimdall.deleted_datasets (by trigger, so a raw DELETE does
--   the same) and removed by `heimdall-synth gc` after the grace period. Audited.
-- Parameters: dataset_id.
-- Returns: true.
-- Errors: P0002 unknown dataset.
-- Locks: the dataset's chunk rows, then the dataset row (a worker's order), cascaded rows.
CREATE OR REPLACE FUNCTION heimdall.delete_dataset(dataset_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d heimdall.synthetic_datasets;
BEGIN
    -- Chunk rows first, then the dataset row: the order of a worker's commit. A worker
    -- committing a chunk of this dataset finishes first; then its rows go too.
    PERFORM 1 FROM heimdall.generation_chunks c
     WHERE c.dataset_id = delete_dataset.dataset_id ORDER BY c.id FOR UPDATE;
    DELETE FROM heimdall.synthetic_datasets x WHERE x.id = delete_dataset.dataset_id RETURNING x.* INTO d;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(delete_dataset.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (d.id, 'delete_dataset', jsonb_build_object('name', d.name, 'num_samples', d.num_samples,
                                                       'dataset_type', d.dataset_type));
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.delete_dataset(uuid) IS
    'Delete a dataset and its rows; its objects are queued for the object-store GC.';
