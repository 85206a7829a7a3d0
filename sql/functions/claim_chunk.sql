-- heimdall.claim_chunk(worker_id text, vt_s integer, max_reads integer, generator_version text)
--   -> one chunk or none
--
-- Purpose: the worker's "give me work". Reads one message from the chunk queue (invisible
--   for vt_s seconds), checks it against its chunk, marks the chunk running and hands out
--   a fresh claim token. Every later call about this chunk (extend_chunk, release_chunk,
--   fail_chunk, begin_chunk_commit, complete_chunk) must present chunk id + token; the
--   message id stays inside the database. Messages that cannot be used are settled here,
--   so no worker loops on them and no payload can stop a worker:
--     anything that is not {"chunk_id": <integer 1 .. 2^63-1>, ...} (huge or fractional
--     numbers, strings, arrays, null, missing keys), an unknown chunk, a payload that does
--     not match its chunk, or any unexpected error while checking it
--       -> archived + a row in heimdall.dead_letters with the reason;
--     a stale message (chunk done, paused, abandoned, or superseded by a newer message)
--       -> deleted;
--     delivered more than max_reads times (workers crashed on it) -> chunk 'failed';
--     the dataset was made by another generator version than the worker's
--       -> chunk 'failed' for good with that reason (mixed generators would not be
--          reproducible; run workers of the dataset's version, then retry).
-- Parameters: worker_id - free text shown in progress views (<= 200 characters kept);
--   vt_s - visibility timeout, whole seconds (1 .. 86400); max_reads - deliveries before
--   a chunk is failed (1 .. 1000); generator_version - the worker's RF core version.
-- Returns: zero rows (nothing claimable now) or one row: chunk_id, claim_token, dataset
--   id/type/config/seed, kind, index range, attempt (= delivery count).
-- Errors: 22023 vt_s, max_reads or generator_version out of range / NULL.
-- Locks: the message (pgmq, SKIP LOCKED) and the chunk row. Call it in its own
--   transaction (autocommit) so the claim is visible at once.
CREATE OR REPLACE FUNCTION heimdall.claim_chunk(worker_id text, vt_s integer, max_reads integer,
                                                generator_version text)
RETURNS TABLE (chunk_id bigint, claim_token uuid, dataset_id uuid, dataset_type text, kind text,
               first_idx integer, last_idx integer, seed bigint, config jsonb, attempt integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    m           pgmq.message_record;
    ch          heimdall.generation_chunks;
    d           heimdall.synthetic_datasets;
    v_cid       bigint;
    v_reason    text;
    v_token     uuid;
BEGIN
    IF vt_s IS NULL OR vt_s < 1 OR vt_s > 86400 THEN
        RAISE EXCEPTION 'vt_s must be 1 .. 86400 seconds, got %', coalesce(vt_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_reads IS NULL OR max_reads < 1 OR max_reads > 1000 THEN
        RAISE EXCEPTION 'max_reads must be 1 .. 1000, got %', coalesce(max_reads::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF generator_version IS NULL OR length(generator_version) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'generator_version must be 1 .. 100 characters, got %',
                coalesce(quote_literal(left(generator_version, 120)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    LOOP
        SELECT * INTO m FROM pgmq.read(heimdall.queue_name(), vt_s, 1);
        IF m.msg_id IS NULL THEN
            RETURN;
        END IF;

        v_reason := NULL;
        ch := NULL;
        BEGIN
            -- A chunk id is a JSON integer that fits a bigint; anything else is a poison message.
            v_cid := NULL;
            IF jsonb_typeof(m.message) = 'object' AND jsonb_typeof(m.message -> 'chunk_id') = 'number'
               AND (m.message ->> 'chunk_id') ~ '^[1-9][0-9]{0,17}$' THEN
                v_cid := (m.message ->> 'chunk_id')::bigint;
            END IF;
            IF v_cid IS NULL THEN
                v_reason := 'malformed payload: expected {"chunk_id": <integer 1 .. 999999999999999999>, ...}';
            ELSE
                SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = v_cid FOR UPDATE;
                IF ch.id IS NULL THEN
                    v_reason := format('unknown chunk %s (dataset deleted?)', v_cid);
                ELSIF (m.message ->> 'dataset_id') IS DISTINCT FROM ch.dataset_id::text
                   OR (m.message ->> 'first_idx') IS DISTINCT FROM ch.first_idx::text
                   OR (m.message ->> 'last_idx') IS DISTINCT FROM ch.last_idx::text THEN
                    v_reason := format('payload does not match chunk %s (dataset %s, %s..%s)',
                                       ch.id, ch.dataset_id, ch.first_idx, ch.last_idx);
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- never let one message stop every worker: record it and go on
            v_reason := format('unusable message: %s (SQLSTATE %s)', SQLERRM, SQLSTATE);
        END;
        IF v_reason IS NOT NULL THEN
            INSERT INTO heimdall.dead_letters (msg_id, payload, error) VALUES (m.msg_id, m.message, v_reason);
            PERFORM pgmq.archive(heimdall.queue_name(), m.msg_id);
            CONTINUE;
        END IF;

        IF ch.msg_id IS DISTINCT FROM m.msg_id OR ch.state NOT IN ('pending', 'running') THEN
            -- stale: the chunk was finished, paused, abandoned or re-enqueued meanwhile
            PERFORM pgmq.delete(heimdall.queue_name(), m.msg_id);
            CONTINUE;
        END IF;
        IF m.read_ct > max_reads THEN
            UPDATE heimdall.generation_chunks c
               SET state = 'failed', updated_at = now(), finished_at = now(), claimed_by = NULL,
                   claim_token = NULL, msg_id = NULL,
                   last_error = format('gave up after %s deliveries; last error: %s',
                                       m.read_ct - 1, coalesce(c.last_error, 'none (worker died?)'))
             WHERE c.id = ch.id;
            PERFORM pgmq.archive(heimdall.queue_name(), m.msg_id);
            CONTINUE;
        END IF;

        SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = ch.dataset_id;
        IF d.generator_version IS NOT NULL AND d.generator_version <> claim_chunk.generator_version THEN
            UPDATE heimdall.generation_chunks c
               SET state = 'failed', updated_at = now(), finished_at = now(), claimed_by = NULL,
                   claim_token = NULL, msg_id = NULL,
                   last_error = format('generator version mismatch: dataset %s was generated by %s, '
                                       'worker %s runs %s; run workers of version %s, then retry',
                                       d.id, d.generator_version, left(claim_chunk.worker_id, 200),
                                       claim_chunk.generator_version, d.generator_version)
             WHERE c.id = ch.id;
            PERFORM pgmq.archive(heimdall.queue_name(), m.msg_id);
            CONTINUE;
        END IF;

        v_token := gen_random_uuid();
        UPDATE heimdall.generation_chunks c
           SET state = 'running', attempts = m.read_ct, claimed_by = left(claim_chunk.worker_id, 200),
               claim_token = v_token, claimed_at = now(), visible_at = m.vt, updated_at = now()
         WHERE c.id = ch.id;

        chunk_id := ch.id;
        claim_token := v_token;
        dataset_id := d.id;
        dataset_type := d.dataset_type;
        kind := ch.kind;
        first_idx := ch.first_idx;
        last_idx := ch.last_idx;
        seed := d.seed;
        config := d.config;
        attempt := m.read_ct;
        RETURN NEXT;
        RETURN;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION heimdall.claim_chunk(text, integer, integer, text) IS
    'Worker: claim the next chunk from the queue and get its claim token (settles unusable messages on the way).';
