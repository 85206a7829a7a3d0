-- heimdall.release_chunk(chunk_id bigint, claim_token uuid) -> boolean
--
-- Purpose: give a claimed chunk back untouched (worker shutting down): running -> pending
--   and its message visible again at once; the token is void afterwards.
-- Parameters: chunk_id, claim_token - the claim.
-- Returns: true.
-- Errors: P0002 unknown chunk; HS002 chunk abandoned; HS001 claim lost (nothing to give
--   back: the worker may just exit). Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.release_chunk(chunk_id bigint, claim_token uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    ch := heimdall.lock_claimed_chunk(release_chunk.chunk_id, release_chunk.claim_token);
    UPDATE heimdall.generation_chunks c
       SET state = 'pending', claimed_by = NULL, claim_token = NULL, visible_at = now(), updated_at = now()
     WHERE c.id = ch.id;
    PERFORM pgmq.set_vt(heimdall.queue_name(), ch.msg_id, 0);
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.release_chunk(bigint, uuid) IS
    'Worker: hand a claimed chunk back (message visible again at once).';
