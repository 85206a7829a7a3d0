-- heimdall.fail_chunk(chunk_id bigint, claim_token uuid, error text, permanent boolean,
--                     retry_in_s integer) -> text
--
-- Purpose: a worker could not finish a chunk. Records the error. permanent = false: the
--   chunk goes back to pending and its message reappears after retry_in_s seconds (the
--   delivery count keeps growing; claim_chunk fails it after max_reads). permanent = true
--   (the chunk can never succeed, e.g. the config never accepts a draw, or the worker's
--   generator version differs from the dataset's): state 'failed', message archived;
--   `heimdall-synth retry` / retry_failed_chunks() re-enqueues it.
-- Parameters: chunk_id, claim_token - the claim; error - text shown to admins (first
--   4000 characters kept); permanent; retry_in_s - 0 .. 86400.
-- Returns: the chunk's new state ('pending' or 'failed').
-- Errors: 22023 bad retry_in_s; P0002 unknown chunk; HS002 abandoned; HS001 claim lost.
-- Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.fail_chunk(chunk_id bigint, claim_token uuid, error text,
                                               permanent boolean DEFAULT false, retry_in_s integer DEFAULT 5)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch      heimdall.generation_chunks;
    v_perm  boolean := coalesce(fail_chunk.permanent, false);
BEGIN
    IF retry_in_s IS NULL OR retry_in_s < 0 OR retry_in_s > 86400 THEN
        RAISE EXCEPTION 'retry_in_s must be 0 .. 86400, got %', coalesce(retry_in_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ch := heimdall.lock_claimed_chunk(fail_chunk.chunk_id, fail_chunk.claim_token);
    UPDATE heimdall.generation_chunks c
       SET state = CASE WHEN v_perm THEN 'failed' ELSE 'pending' END,
           last_error = left(coalesce(fail_chunk.error, 'unknown error'), 4000),
           claimed_by = NULL, claim_token = NULL, updated_at = now(),
           msg_id = CASE WHEN v_perm THEN NULL ELSE c.msg_id END,
           finished_at = CASE WHEN v_perm THEN now() END
     WHERE c.id = ch.id;
    IF v_perm THEN
        PERFORM pgmq.archive(heimdall.queue_name(), ch.msg_id);
        RETURN 'failed';
    END IF;
    PERFORM pgmq.set_vt(heimdall.queue_name(), ch.msg_id, retry_in_s);
    RETURN 'pending';
END;
$$;

COMMENT ON FUNCTION heimdall.fail_chunk(bigint, uuid, text, boolean, integer) IS
    'Worker: record a chunk error; retry later or mark it failed for good.';
