-- heimdall.repair_queue(dataset_id uuid) -> jsonb
--
-- Purpose: make a dataset's chunks and queue messages agree again (what validate_dataset
--   reports as chunk_without_message / message_without_chunk): every pending chunk
--   without a live message, and every running chunk whose message is gone, gets a new
--   message (running ones go back to pending; their worker's claim is void); every
--   message of this dataset that no live chunk owns is deleted. Audited.
-- Parameters: dataset_id.
-- Returns: {"reenqueued": [chunk ids], "messages_deleted": [msg ids]}.
-- Errors: P0002 unknown dataset.
-- Locks: the dataset's open chunk rows (in id order, as delete_dataset does).
-- Idempotency: a second call finds nothing to do.
CREATE OR REPLACE FUNCTION heimdall.repair_queue(dataset_id uuid)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_chunks    bigint[];
    v_msgs      bigint[];
BEGIN
    PERFORM heimdall.dataset_row(repair_queue.dataset_id);
    PERFORM 1 FROM heimdall.generation_chunks c
     WHERE c.dataset_id = repair_queue.dataset_id AND c.state IN ('pending', 'running') ORDER BY c.id FOR UPDATE;

    WITH lost AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'pending', claimed_by = NULL, claim_token = NULL, msg_id = NULL, updated_at = now()
         WHERE c.dataset_id = repair_queue.dataset_id AND c.state IN ('pending', 'running')
           AND (c.msg_id IS NULL OR c.msg_id NOT IN (SELECT q.msg_id FROM heimdall.queue_messages() q))
        RETURNING c.id)
    SELECT array_agg(id ORDER BY id) INTO v_chunks FROM lost;
    IF v_chunks IS NOT NULL THEN
        PERFORM heimdall.enqueue_chunks(v_chunks);
    END IF;

    SELECT array_agg(q.msg_id ORDER BY q.msg_id) INTO v_msgs
      FROM heimdall.queue_messages() q
     WHERE q.message ->> 'dataset_id' = repair_queue.dataset_id::text
       AND NOT EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                        WHERE c.msg_id = q.msg_id AND c.state IN ('pending', 'running'));
    IF v_msgs IS NOT NULL THEN
        PERFORM pgmq.delete(heimdall.queue_name(), v_msgs);
    END IF;

    IF v_chunks IS NOT NULL OR v_msgs IS NOT NULL THEN
        INSERT INTO heimdall.audit_log (dataset_id, action, detail)
        VALUES (repair_queue.dataset_id, 'repair_queue',
                jsonb_build_object('reenqueued', coalesce(to_jsonb(v_chunks), '[]'),
                                   'messages_deleted', coalesce(to_jsonb(v_msgs), '[]')));
    END IF;
    RETURN jsonb_build_object('reenqueued', coalesce(to_jsonb(v_chunks), '[]'),
                              'messages_deleted', coalesce(to_jsonb(v_msgs), '[]'));
END;
$$;

COMMENT ON FUNCTION heimdall.repair_queue(uuid) IS
    'Admin: give every live chunk of a dataset a message and drop messages no chunk owns (audited).';
