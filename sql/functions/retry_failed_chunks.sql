-- heimdall.retry_failed_chunks(dataset_id uuid) -> integer
--
-- Purpose: re-enqueue every failed chunk of a dataset (after the cause was fixed):
--   failed -> pending with a fresh message and the attempt count reset. Audited.
-- Parameters: dataset_id.
-- Returns: number of chunks re-enqueued (0 if none failed).
-- Errors: P0002 unknown dataset. Locks: the chunk rows.
CREATE OR REPLACE FUNCTION heimdall.retry_failed_chunks(dataset_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM heimdall.dataset_row(retry_failed_chunks.dataset_id);
    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'pending', attempts = 0, finished_at = NULL, claimed_by = NULL, updated_at = now()
         WHERE c.dataset_id = retry_failed_chunks.dataset_id AND c.state = 'failed'
        RETURNING c.id)
    SELECT array_agg(id) INTO v_ids FROM upd;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM heimdall.enqueue_chunks(v_ids);
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (retry_failed_chunks.dataset_id, 'retry_failed_chunks', jsonb_build_object('chunks', to_jsonb(v_ids)));
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.retry_failed_chunks(uuid) IS
    'Re-enqueue the failed chunks of a dataset (audited).';
