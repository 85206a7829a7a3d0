-- heimdall.work_in_flight() -> bigint
--
-- Purpose: what `worker run --until-idle` waits for: chunks a worker is running, plus
--   pending chunks whose queue message exists (so a worker will get them). A pending
--   chunk whose message was lost is NOT counted, so --until-idle cannot wait forever on
--   it; validate_dataset reports it (chunk_without_message) and repair_queue fixes it.
-- Returns: the number of such chunks across all datasets (0 = idle).
-- Locks: none.
CREATE OR REPLACE FUNCTION heimdall.work_in_flight()
RETURNS bigint
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT count(*) FROM heimdall.generation_chunks c
     WHERE c.state = 'running'
        OR (c.state = 'pending' AND c.msg_id IN (SELECT q.msg_id FROM heimdall.queue_messages() q))
$$;

COMMENT ON FUNCTION heimdall.work_in_flight() IS
    'Worker: running chunks + pending chunks with a live message (0 = nothing left to wait for).';
