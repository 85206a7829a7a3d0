-- heimdall.extend_chunk(chunk_id bigint, msg_id bigint, vt_s integer) -> timestamptz
--
-- Purpose: heartbeat of a long chunk: push its message's visibility vt_s seconds ahead so
--   no other worker takes it while this one is still working.
-- Parameters: chunk_id, msg_id - the claim; vt_s - seconds from now (1 .. 86400).
-- Returns: the new visibility time.
-- Errors: 22023 bad vt_s; 55000 the claim was lost (chunk no longer running under this
--   message: done by another worker, paused, re-enqueued) - the caller should stop.
-- Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.extend_chunk(chunk_id bigint, msg_id bigint, vt_s integer)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_vt timestamptz;
BEGIN
    IF vt_s IS NULL OR vt_s < 1 OR vt_s > 86400 THEN
        RAISE EXCEPTION 'vt_s must be 1 .. 86400 seconds, got %', coalesce(vt_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE heimdall.generation_chunks c
       SET visible_at = clock_timestamp() + make_interval(secs => vt_s), updated_at = now()
     WHERE c.id = extend_chunk.chunk_id AND c.msg_id = extend_chunk.msg_id AND c.state = 'running'
    RETURNING c.visible_at INTO v_vt;
    IF v_vt IS NULL THEN
        RAISE EXCEPTION 'chunk % is not running under message %: claim lost', chunk_id, msg_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pgmq.set_vt('heimdall_chunks', extend_chunk.msg_id, vt_s);
    RETURN v_vt;
END;
$$;

COMMENT ON FUNCTION heimdall.extend_chunk(bigint, bigint, integer) IS
    'Worker: extend the visibility timeout of a chunk in hand (heartbeat).';
