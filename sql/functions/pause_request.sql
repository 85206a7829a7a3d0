-- heimdall.pause_request(request_id uuid) -> integer
--
-- Purpose: stop handing out a request's work: its pending chunks become paused and their
--   messages are withdrawn. Chunks already running finish normally (no half samples).
-- Parameters: request_id.
-- Returns: number of chunks paused.
-- Errors: P0002 unknown request; 55000 nothing left to pause (request finished, abandoned
--   or already paused).
-- Locks: the request's chunk rows.
CREATE OR REPLACE FUNCTION heimdall.pause_request(request_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_msgs  bigint[];
    v_n     integer;
BEGIN
    PERFORM heimdall.request_row(pause_request.request_id, true);
    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'paused', updated_at = now()
          FROM (SELECT x.id, x.msg_id FROM heimdall.generation_chunks x
                 WHERE x.request_id = pause_request.request_id AND x.state = 'pending' FOR UPDATE) old
         WHERE c.id = old.id
        RETURNING old.msg_id)
    SELECT array_agg(u.msg_id), count(*) INTO v_msgs, v_n FROM upd u;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'request % has no pending chunks to pause', pause_request.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pgmq.delete(heimdall.queue_name(), array_remove(v_msgs, NULL));
    UPDATE heimdall.generation_chunks c SET msg_id = NULL
     WHERE c.request_id = pause_request.request_id AND c.state = 'paused';
    UPDATE heimdall.generation_requests r SET paused_at = now() WHERE r.id = pause_request.request_id;
    RETURN v_n;
END;
$$;

COMMENT ON FUNCTION heimdall.pause_request(uuid) IS
    'Pause a request: pending chunks -> paused, messages withdrawn; running chunks finish.';
