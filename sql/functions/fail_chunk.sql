-- heimdall.fail_chunk(chunk_id bigint, msg_id bigint, error text, permanent boolean, retry_in_s integer)
--   -> text
--
-- Purpose: a worker could not finish a chunk. Records the error. permanent = false: the
--   chunk goes back to pending and its message reappears after retry_in_s seconds (the
--   delivery count keeps growing; claim_chunk fails it after max_reads). permanent = true
--   (the chunk can never succeed, e.g. the config never accepts a draw): state 'failed',
--   message archived; `heimdall-synth retry` / retry_failed_chunks() re-enqueues it.
-- Parameters: chunk_id, msg_id - the claim; error - text shown to admins;
--   permanent; retry_in_s - 0 .. 86400.
-- Returns: the chunk's new state ('pending' or 'failed'), or NULL if the claim was lost.
-- Errors: 22023 bad retry_in_s. Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.fail_chunk(chunk_id bigint, msg_id bigint, error text,
                                               permanent boolean DEFAULT false, retry_in_s integer DEFAULT 5)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_state text;
BEGIN
    IF retry_in_s IS NULL OR retry_in_s < 0 OR retry_in_s > 86400 THEN
        RAISE EXCEPTION 'retry_in_s must be 0 .. 86400, got %', coalesce(retry_in_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE heimdall.generation_chunks c
       SET state = CASE WHEN permanent THEN 'failed' ELSE 'pending' END,
           last_error = left(coalesce(fail_chunk.error, 'unknown error'), 4000),
           claimed_by = NULL, updated_at = now(),
           finished_at = CASE WHEN permanent THEN now() END
     WHERE c.id = fail_chunk.chunk_id AND c.msg_id = fail_chunk.msg_id AND c.state = 'running'
    RETURNING c.state INTO v_state;
    IF v_state IS NULL THEN
        RETURN NULL;
    END IF;
    IF permanent THEN
        PERFORM pgmq.archive('heimdall_chunks', fail_chunk.msg_id);
        UPDATE heimdall.generation_chunks c SET msg_id = NULL WHERE c.id = fail_chunk.chunk_id;
    ELSE
        PERFORM pgmq.set_vt('heimdall_chunks', fail_chunk.msg_id, retry_in_s);
    END IF;
    RETURN v_state;
END;
$$;

COMMENT ON FUNCTION heimdall.fail_chunk(bigint, bigint, text, boolean, integer) IS
    'Worker: record a chunk error; retry later or mark it failed for good.';
