-- heimdall.claim_chunk(worker_id text, vt_s integer, max_reads integer) -> one chunk or none
--
-- Purpose: the worker's "give me work". Reads one message from pgmq (invisible for vt_s
--   seconds), checks it against its chunk and marks the chunk running. Messages that
--   cannot be used are settled here, so no worker loops on them: malformed payload or
--   unknown chunk -> archived + heimdall.dead_letters; stale message (chunk done, paused,
--   abandoned, or superseded by a newer message) -> deleted; delivered more than
--   max_reads times (workers crashed on it) -> chunk 'failed', message archived.
-- Parameters: worker_id - free text shown in progress views; vt_s - visibility timeout,
--   whole seconds (1 .. 86400); max_reads - deliveries before a chunk is failed (>= 1).
-- Returns: zero rows (queue empty) or one row: chunk, message, dataset type/config/seed,
--   attempt (= delivery count).
-- Errors: 22023 vt_s or max_reads out of range.
-- Locks: the message (pgmq, SKIP LOCKED) and the chunk row. Call it in its own
--   transaction (autocommit) so the claim is visible at once.
CREATE OR REPLACE FUNCTION heimdall.claim_chunk(worker_id text, vt_s integer DEFAULT 300, max_reads integer DEFAULT 5)
RETURNS TABLE (chunk_id bigint, msg_id bigint, dataset_id uuid, dataset_type text, kind text,
               first_idx integer, last_idx integer, seed bigint, config jsonb, attempt integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    m       pgmq.message_record;
    ch      heimdall.generation_chunks;
    v_cid   bigint;
BEGIN
    IF vt_s IS NULL OR vt_s < 1 OR vt_s > 86400 THEN
        RAISE EXCEPTION 'vt_s must be 1 .. 86400 seconds, got %', coalesce(vt_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_reads IS NULL OR max_reads < 1 THEN
        RAISE EXCEPTION 'max_reads must be >= 1, got %', coalesce(max_reads::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    LOOP
        SELECT * INTO m FROM pgmq.read('heimdall_chunks', vt_s, 1);
        IF m.msg_id IS NULL THEN
            RETURN;
        END IF;

        v_cid := NULL;
        IF jsonb_typeof(m.message) = 'object' AND jsonb_typeof(m.message -> 'chunk_id') = 'number' THEN
            v_cid := (m.message ->> 'chunk_id')::numeric::bigint;
        END IF;
        IF v_cid IS NULL THEN
            INSERT INTO heimdall.dead_letters (msg_id, payload, error)
            VALUES (m.msg_id, m.message, 'malformed payload: expected {"chunk_id": <integer>, ...}');
            PERFORM pgmq.archive('heimdall_chunks', m.msg_id);
            CONTINUE;
        END IF;

        SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = v_cid FOR UPDATE;
        IF ch.id IS NULL THEN
            INSERT INTO heimdall.dead_letters (msg_id, payload, error)
            VALUES (m.msg_id, m.message, format('unknown chunk %s (dataset deleted?)', v_cid));
            PERFORM pgmq.archive('heimdall_chunks', m.msg_id);
            CONTINUE;
        END IF;
        IF (m.message ->> 'dataset_id') IS DISTINCT FROM ch.dataset_id::text
           OR (m.message ->> 'first_idx') IS DISTINCT FROM ch.first_idx::text
           OR (m.message ->> 'last_idx') IS DISTINCT FROM ch.last_idx::text THEN
            INSERT INTO heimdall.dead_letters (msg_id, payload, error)
            VALUES (m.msg_id, m.message, format('payload does not match chunk %s (dataset %s, %s..%s)',
                                                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx));
            PERFORM pgmq.archive('heimdall_chunks', m.msg_id);
            CONTINUE;
        END IF;
        IF ch.msg_id IS DISTINCT FROM m.msg_id OR ch.state NOT IN ('pending', 'running') THEN
            -- stale: the chunk was finished, paused, abandoned or re-enqueued meanwhile
            PERFORM pgmq.delete('heimdall_chunks', m.msg_id);
            CONTINUE;
        END IF;
        IF m.read_ct > max_reads THEN
            UPDATE heimdall.generation_chunks c
               SET state = 'failed', updated_at = now(), finished_at = now(), claimed_by = NULL,
                   last_error = format('gave up after %s deliveries; last error: %s',
                                       m.read_ct - 1, coalesce(c.last_error, 'none (worker died?)'))
             WHERE c.id = ch.id;
            PERFORM pgmq.archive('heimdall_chunks', m.msg_id);
            CONTINUE;
        END IF;

        UPDATE heimdall.generation_chunks c
           SET state = 'running', attempts = m.read_ct, claimed_by = claim_chunk.worker_id,
               claimed_at = now(), visible_at = m.vt, updated_at = now()
         WHERE c.id = ch.id AND c.state IN ('pending', 'running');

        RETURN QUERY
        SELECT ch.id, m.msg_id, d.id, d.dataset_type, ch.kind, ch.first_idx, ch.last_idx,
               d.seed, d.config, m.read_ct
          FROM heimdall.synthetic_datasets d WHERE d.id = ch.dataset_id;
        RETURN;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION heimdall.claim_chunk(text, integer, integer) IS
    'Worker: claim the next chunk from the queue (settles unusable messages on the way).';
