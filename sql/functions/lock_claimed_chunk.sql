-- heimdall.lock_claimed_chunk(chunk_id bigint, claim_token uuid, allow_done boolean)
--   -> heimdall.generation_chunks
--
-- Purpose: the one home of "lock the chunk a worker holds, or raise": every worker call
--   after claim_chunk (extend, release, fail, begin/complete commit) starts here.
-- Parameters: chunk_id, claim_token - what claim_chunk handed out; allow_done - return a
--   done chunk (idempotent commit) instead of raising claim lost.
-- Returns: the locked chunk row (state 'running' under this token, or 'done' if allowed).
-- Errors: P0002 unknown chunk; HS002 chunk abandoned (its indices were given back);
--   HS001 claim lost (the chunk is no longer running under this token: re-claimed by
--   another worker after the visibility timeout, paused, released, failed).
-- Locks: the chunk row (FOR UPDATE) until the caller's transaction ends.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.lock_claimed_chunk(chunk_id bigint, claim_token uuid,
                                                       allow_done boolean DEFAULT false)
RETURNS heimdall.generation_chunks
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = lock_claimed_chunk.chunk_id FOR UPDATE;
    IF ch.id IS NULL THEN
        RAISE EXCEPTION 'chunk % does not exist (dataset deleted?)', coalesce(lock_claimed_chunk.chunk_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF ch.state = 'done' AND allow_done THEN
        RETURN ch;
    END IF;
    IF ch.state = 'abandoned' THEN
        RAISE EXCEPTION 'chunk % (dataset %, %..%) was abandoned: its indices were given back',
                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx
            USING ERRCODE = 'HS002';
    END IF;
    IF ch.state <> 'running' OR ch.claim_token IS DISTINCT FROM lock_claimed_chunk.claim_token THEN
        RAISE EXCEPTION 'chunk % is not running under this claim (state %): claim lost', ch.id, ch.state
            USING ERRCODE = 'HS001',
                  HINT = 'another worker re-claimed it after the visibility timeout, or it was paused, released or failed';
    END IF;
    RETURN ch;
END;
$$;

COMMENT ON FUNCTION heimdall.lock_claimed_chunk(bigint, uuid, boolean) IS
    'Internal: lock the chunk a worker holds under its claim token, or raise (HS001/HS002/P0002).';
