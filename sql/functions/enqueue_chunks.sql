-- heimdall.enqueue_chunks(chunk_ids bigint[]) -> integer   (internal)
--
-- Purpose: send one pgmq message per chunk (queue 'heimdall_chunks') and remember the
--   message id on the chunk, so that pause/delete can withdraw it and claim_chunk can
--   recognise stale messages (a chunk only answers to its current msg_id).
-- Parameters: chunk_ids - chunks in state 'pending'.
-- Returns: number of messages sent.
-- Errors: 55000 if a chunk is not pending.
-- Locks: the chunk rows. Payload: {"chunk_id", "dataset_id", "kind", "first_idx", "last_idx"}.
CREATE OR REPLACE FUNCTION heimdall.enqueue_chunks(chunk_ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_msgs  jsonb[];
    v_ids   bigint[];
    v_bad   bigint;
BEGIN
    SELECT c.id INTO v_bad FROM heimdall.generation_chunks c
    WHERE c.id = ANY (chunk_ids) AND c.state <> 'pending' LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'chunk % is not pending: cannot enqueue it', v_bad
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    SELECT array_agg(jsonb_build_object('chunk_id', c.id, 'dataset_id', c.dataset_id, 'kind', c.kind,
                                        'first_idx', c.first_idx, 'last_idx', c.last_idx) ORDER BY c.id)
      INTO v_msgs
      FROM heimdall.generation_chunks c WHERE c.id = ANY (chunk_ids);
    IF v_msgs IS NULL THEN
        RETURN 0;
    END IF;

    -- send_batch returns ids but does not promise their order: match them back by payload.
    SELECT array_agg(m) INTO v_ids FROM pgmq.send_batch(heimdall.queue_name(), v_msgs) AS m;
    UPDATE heimdall.generation_chunks c
       SET msg_id = q.msg_id, updated_at = now()
      FROM heimdall.queue_messages() q
     WHERE q.msg_id = ANY (v_ids) AND (q.message ->> 'chunk_id')::bigint = c.id;
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.enqueue_chunks(bigint[]) IS
    'Internal: send one queue message per pending chunk and record its msg_id.';
