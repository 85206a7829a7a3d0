-- heimdall.queue_messages() -> setof (msg_id bigint, read_ct integer, vt timestamptz, message jsonb)
--
-- Purpose: the messages currently in the chunk queue, visible or not, without touching them
--   (pgmq has no read-only peek; this is the one place that reads its queue table, so a
--   change of pgmq's layout has one home). Used by validate_dataset, repair_queue and
--   work_in_flight to find chunks without a message and messages without a chunk.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.queue_messages()
RETURNS TABLE (msg_id bigint, read_ct integer, vt timestamptz, message jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT q.msg_id, q.read_ct, q.vt, q.message FROM pgmq.%I q',
                                'q_' || heimdall.queue_name());
END;
$$;

COMMENT ON FUNCTION heimdall.queue_messages() IS
    'Internal: the chunk queue''s messages, read-only.';
