-- heimdall.resume_request(request_id uuid) -> integer
--
-- Purpose: undo pause_request: paused chunks -> pending, one fresh message each.
-- Parameters: request_id.
-- Returns: number of chunks resumed.
-- Errors: P0002 unknown request; 55000 the request has no paused chunk.
-- Locks: the request's chunk rows.
CREATE OR REPLACE FUNCTION heimdall.resume_request(request_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM heimdall.request_row(resume_request.request_id, true);
    WITH upd AS (
        UPDATE heimdall.generation_chunks c SET state = 'pending', updated_at = now()
         WHERE c.request_id = resume_request.request_id AND c.state = 'paused'
        RETURNING c.id)
    SELECT array_agg(id) INTO v_ids FROM upd;
    IF v_ids IS NULL THEN
        RAISE EXCEPTION 'request % has no paused chunks to resume', resume_request.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM heimdall.enqueue_chunks(v_ids);
    UPDATE heimdall.generation_requests r SET paused_at = NULL WHERE r.id = resume_request.request_id;
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.resume_request(uuid) IS
    'Resume a paused request: paused chunks -> pending with fresh messages.';
