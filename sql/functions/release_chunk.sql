-- heimdall.release_chunk(chunk_id bigint, msg_id bigint) -> boolean
--
-- Purpose: give a claimed chunk back untouched (worker shutting down): running -> pending
--   and its message visible again at once.
-- Parameters: chunk_id, msg_id - the claim.
-- Returns: true if released; false if the claim was already gone (done/paused/other msg).
-- Errors: none for a lost claim (shutdown must not fail). Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.release_chunk(chunk_id bigint, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_id bigint;
BEGIN
    UPDATE heimdall.generation_chunks c
       SET state = 'pending', claimed_by = NULL, visible_at = now(), updated_at = now()
     WHERE c.id = release_chunk.chunk_id AND c.msg_id = release_chunk.msg_id AND c.state = 'running'
    RETURNING c.id INTO v_id;
    IF v_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pgmq.set_vt('heimdall_chunks', release_chunk.msg_id, 0);
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.release_chunk(bigint, bigint) IS
    'Worker: hand a claimed chunk back (message visible again at once).';
