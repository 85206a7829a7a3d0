-- heimdall.dataset_row(dataset_id uuid, lock boolean) -> heimdall.synthetic_datasets
--
-- Purpose: the one home of "this dataset, or P0002 naming it": every function that takes a
--   dataset id starts here. lock = true takes the row lock (FOR UPDATE) until the caller's
--   transaction ends (callers that also lock chunk rows take those first: chunk -> dataset,
--   the order of a worker's commit).
-- Returns: the dataset row. Errors: P0002 dataset does not exist.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.dataset_row(dataset_id uuid, lock boolean DEFAULT false)
RETURNS heimdall.synthetic_datasets
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d heimdall.synthetic_datasets;
BEGIN
    IF lock THEN
        SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = dataset_row.dataset_id FOR UPDATE;
    ELSE
        SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = dataset_row.dataset_id;
    END IF;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(dataset_row.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN d;
END;
$$;

COMMENT ON FUNCTION heimdall.dataset_row(uuid, boolean) IS
    'Internal: a dataset row (optionally locked) or P0002 naming the id.';
