-- heimdall.extend_chunk(chunk_id bigint, claim_token uuid, vt_s integer) -> timestamptz
--
-- Purpose: heartbeat of a long chunk: push its message's visibility vt_s seconds ahead so
--   no other worker takes it while this one is still working.
-- Parameters: chunk_id, claim_token - the claim (from claim_chunk); vt_s - seconds from
--   now (1 .. 86400).
-- Returns: the new visibility time.
-- Errors: 22023 bad vt_s; P0002 unknown chunk; HS002 chunk abandoned; HS001 claim lost
--   (another worker holds it now, or it was paused/released/failed) - the caller stops.
-- Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.extend_chunk(chunk_id bigint, claim_token uuid, vt_s integer)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch      heimdall.generation_chunks;
    v_vt    timestamptz;
BEGIN
    IF vt_s IS NULL OR vt_s < 1 OR vt_s > 86400 THEN
        RAISE EXCEPTION 'vt_s must be 1 .. 86400 seconds, got %', coalesce(vt_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ch := heimdall.lock_claimed_chunk(extend_chunk.chunk_id, extend_chunk.claim_token);
    UPDATE heimdall.generation_chunks c
       SET visible_at = clock_timestamp() + make_interval(secs => vt_s), updated_at = now()
     WHERE c.id = ch.id
    RETURNING c.visible_at INTO v_vt;
    PERFORM pgmq.set_vt(heimdall.queue_name(), ch.msg_id, vt_s);
    RETURN v_vt;
END;
$$;

COMMENT ON FUNCTION heimdall.extend_chunk(bigint, uuid, integer) IS
    'Worker: extend the visibility timeout of a chunk in hand (heartbeat).';
