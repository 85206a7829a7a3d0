-- The replaceable set of revision 0001 (functions, triggers, views, grants), cut from
-- 0001_initial.sql by worker.db.frozen_sections: replayed when downgrading to 0001.

-- >>> sql/functions/abandon_request.sql
-- heimdall.abandon_request(request_id uuid) -> TABLE(first_idx, last_idx)
--
-- Purpose: give up the unfinished part of a request and return its indices to the
--   dataset's counter. Allowed only where those unfinished ranges are the dataset's tail
--   (nothing committed or in flight after them), so no gap can ever appear. Audited.
-- Parameters: request_id.
-- Returns: the returned index range (one row), e.g. 200..349.
-- Errors: P0002 unknown request; 55000 nothing unfinished, a chunk of it is running
--   (pause first and wait), or its unfinished ranges are not the dataset's tail.
-- Locks: the request's chunk rows, then the dataset row (a worker's order).
CREATE OR REPLACE FUNCTION heimdall.abandon_request(request_id uuid)
RETURNS TABLE (first_idx integer, last_idx integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    r           heimdall.generation_requests;
    d           heimdall.synthetic_datasets;
    v_from      integer;
    v_covered   bigint;
    v_msgs      bigint[];
BEGIN
    SELECT x.* INTO r FROM heimdall.generation_requests x WHERE x.id = abandon_request.request_id;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(abandon_request.request_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    -- Lock order chunk rows -> dataset row, the order a worker's commit takes them
    -- (begin_chunk_commit, then the feature-row trigger), so the two cannot deadlock.
    PERFORM 1 FROM heimdall.generation_chunks c
     WHERE c.request_id = r.id AND c.state NOT IN ('done', 'abandoned') ORDER BY c.id FOR UPDATE;
    SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = r.dataset_id FOR UPDATE;

    IF EXISTS (SELECT 1 FROM heimdall.generation_chunks c WHERE c.request_id = r.id AND c.state = 'running') THEN
        RAISE EXCEPTION 'request % has chunks in flight: pause it and wait for them to finish', r.id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT min(c.first_idx), sum(c.last_idx - c.first_idx + 1) INTO v_from, v_covered
      FROM heimdall.generation_chunks c
     WHERE c.request_id = r.id AND c.state IN ('pending', 'paused', 'failed');
    IF v_from IS NULL THEN
        RAISE EXCEPTION 'request % has nothing unfinished to abandon', r.id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Tail: the unfinished chunks cover [v_from, next_idx) exactly and no other live chunk
    -- or committed sample lies there.
    IF v_covered <> d.next_idx - v_from
       OR EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                   WHERE c.dataset_id = d.id AND c.last_idx >= v_from AND c.state <> 'abandoned'
                     AND NOT (c.request_id = r.id AND c.state IN ('pending', 'paused', 'failed')))
       OR EXISTS (SELECT 1 FROM heimdall.measurement_features f
                   WHERE f.dataset_id = d.id AND f.sample_idx >= v_from) THEN
        RAISE EXCEPTION 'request %: its unfinished indices from % are not the tail of dataset % (reserved up to %)',
                r.id, v_from, d.id, d.next_idx - 1
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'only the newest unfinished work can be abandoned; resume or retry this request instead';
    END IF;

    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'abandoned', updated_at = now(), finished_at = now(), msg_id = NULL
          FROM (SELECT x.id, x.msg_id FROM heimdall.generation_chunks x
                 WHERE x.request_id = r.id AND x.state IN ('pending', 'paused', 'failed')) old
         WHERE c.id = old.id
        RETURNING old.msg_id)
    SELECT array_agg(u.msg_id) INTO v_msgs FROM upd u;
    PERFORM pgmq.delete('heimdall_chunks', array_remove(v_msgs, NULL));
    UPDATE heimdall.synthetic_datasets x SET next_idx = v_from WHERE x.id = d.id;
    UPDATE heimdall.generation_requests x SET abandoned_at = now() WHERE x.id = r.id;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (d.id, 'abandon_request', jsonb_build_object('request_id', r.id, 'first_idx', v_from,
            'last_idx', d.next_idx - 1, 'next_idx_before', d.next_idx, 'next_idx_after', v_from));
    first_idx := v_from;
    last_idx := d.next_idx - 1;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION heimdall.abandon_request(uuid) IS
    'Give back the unfinished tail of a request (never leaves a gap; audited).';


-- >>> sql/functions/begin_chunk_commit.sql
-- heimdall.begin_chunk_commit(chunk_id bigint) -> boolean
--
-- Purpose: first statement of the worker's commit transaction. Locks the chunk so two
--   workers holding the same chunk (visibility timeout expired) commit one after the
--   other, and tells the caller whether its rows are still needed. For a repair chunk it
--   removes the rows of the range that exist (they are rewritten, bit-identical, in the
--   same transaction), so a repair never leaves a half-sample.
-- Parameters: chunk_id.
-- Returns: true - insert the chunk's rows, then call complete_chunk; false - the chunk is
--   already done: insert nothing, call complete_chunk (a no-op that drops the message).
-- Errors: P0002 unknown chunk; 55000 chunk abandoned (its indices were given back).
-- Locks: the chunk row until the caller's transaction ends.
CREATE OR REPLACE FUNCTION heimdall.begin_chunk_commit(chunk_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = begin_chunk_commit.chunk_id FOR UPDATE;
    IF ch.id IS NULL THEN
        RAISE EXCEPTION 'chunk % does not exist (dataset deleted?)', coalesce(begin_chunk_commit.chunk_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF ch.state = 'done' THEN
        RETURN false;
    END IF;
    IF ch.state = 'abandoned' THEN
        RAISE EXCEPTION 'chunk % (dataset %, %..%) was abandoned: its indices were given back',
                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF ch.kind = 'repair' THEN
        DELETE FROM heimdall.measurement_features f
         WHERE f.dataset_id = ch.dataset_id AND f.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
        DELETE FROM heimdall.synthetic_iq_samples q
         WHERE q.dataset_id = ch.dataset_id AND q.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
    END IF;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.begin_chunk_commit(bigint) IS
    'Worker: lock a chunk at the start of its commit; false = already done (insert nothing).';


-- >>> sql/functions/claim_chunk.sql
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


-- >>> sql/functions/complete_chunk.sql
-- heimdall.complete_chunk(chunk_id bigint, msg_id bigint, generator_version text) -> boolean
--
-- Purpose: last statement of the worker's commit transaction, after the chunk's feature
--   (and IQ) rows were inserted: checks every index of the chunk has its rows, marks the
--   chunk done, deletes its queue message. num_samples is kept by the feature triggers.
-- Parameters: chunk_id; msg_id - the message the worker holds (deleted; may be stale);
--   generator_version - version of the RF core that made the rows; a dataset records the
--   first one and refuses rows from another (mixed generators would not be reproducible).
-- Returns: true - the chunk became done now; false - it was already done (no-op).
-- Errors: P0002 unknown chunk; 23514 rows missing for some index of the chunk;
--   55000 generator_version differs from the dataset's.
-- Locks: chunk row (already held after begin_chunk_commit), dataset row (via triggers).
-- Idempotency: completing twice is a no-op, never a duplicate.
CREATE OR REPLACE FUNCTION heimdall.complete_chunk(chunk_id bigint, msg_id bigint, generator_version text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    ch          heimdall.generation_chunks;
    d           heimdall.synthetic_datasets;
    v_features  integer;
    v_iq        integer;
    v_n         integer;
BEGIN
    SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = complete_chunk.chunk_id FOR UPDATE;
    IF ch.id IS NULL THEN
        RAISE EXCEPTION 'chunk % does not exist (dataset deleted?)', coalesce(complete_chunk.chunk_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF complete_chunk.msg_id IS NOT NULL THEN
        PERFORM pgmq.delete('heimdall_chunks', complete_chunk.msg_id);
    END IF;
    IF ch.state = 'done' THEN
        RETURN false;
    END IF;

    SELECT * INTO d FROM heimdall.synthetic_datasets x WHERE x.id = ch.dataset_id;
    IF d.generator_version IS NOT NULL AND d.generator_version IS DISTINCT FROM complete_chunk.generator_version THEN
        RAISE EXCEPTION 'dataset % was generated by generator %, this worker runs %',
                d.id, d.generator_version, coalesce(complete_chunk.generator_version, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'run workers of the dataset''s generator version';
    END IF;

    v_n := ch.last_idx - ch.first_idx + 1;
    SELECT count(*) INTO v_features FROM heimdall.measurement_features f
     WHERE f.dataset_id = ch.dataset_id AND f.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
    IF v_features <> v_n THEN
        RAISE EXCEPTION 'chunk % (dataset %, %..%): % of % feature rows present',
                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx, v_features, v_n
            USING ERRCODE = 'check_violation';
    END IF;
    IF d.dataset_type = 'iq_raw' THEN
        SELECT count(*) INTO v_iq FROM heimdall.synthetic_iq_samples q
         WHERE q.dataset_id = ch.dataset_id AND q.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
        IF v_iq <> v_n THEN
            RAISE EXCEPTION 'chunk % (dataset %, %..%): % of % IQ rows present',
                    ch.id, ch.dataset_id, ch.first_idx, ch.last_idx, v_iq, v_n
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;

    UPDATE heimdall.generation_chunks c
       SET state = 'done', finished_at = now(), updated_at = now(), msg_id = NULL, visible_at = NULL
     WHERE c.id = ch.id AND c.state <> 'done';
    IF ch.kind = 'repair' THEN
        -- the "after" half of the repair's audit trail (enqueue_repair wrote the "before")
        INSERT INTO heimdall.audit_log (dataset_id, action, detail)
        VALUES (d.id, 'repair_chunk_done', jsonb_build_object('chunk_id', ch.id, 'request_id', ch.request_id,
                'first_idx', ch.first_idx, 'last_idx', ch.last_idx, 'feature_rows_after', v_features,
                'iq_rows_after', coalesce(v_iq, 0)));
    END IF;
    IF d.generator_version IS NULL THEN
        UPDATE heimdall.synthetic_datasets x SET generator_version = complete_chunk.generator_version
         WHERE x.id = d.id;
    END IF;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.complete_chunk(bigint, bigint, text) IS
    'Worker: check the chunk''s rows are all there, mark it done, drop its message (idempotent).';


-- >>> sql/functions/create_dataset.sql
-- heimdall.create_dataset(name, dataset_type, config, seed, num_samples) -> uuid
--
-- Purpose: create a dataset with a complete, normalized, immutable config and, if
--   num_samples > 0, request that many samples (exactly as expand_dataset does).
-- Parameters: name - unique, trimmed, 1..200 chars; dataset_type - 'feature_based' or
--   'iq_raw'; config - partial config (see normalize_config); seed - generation seed
--   (NULL: chosen at random and stored); num_samples - samples to request now (>= 0).
-- Returns: the new dataset id.
-- Errors: 22023 bad name / type / config / num_samples < 0; 22003 num_samples too large;
--   23505 a dataset with that name exists (never silently appends to it).
-- Locks: inserts the dataset row. Not idempotent: a second call with the same name fails.
CREATE OR REPLACE FUNCTION heimdall.create_dataset(
    name text,
    dataset_type text,
    config jsonb DEFAULT '{}',
    seed bigint DEFAULT NULL,
    num_samples integer DEFAULT 0
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_id        uuid;
    v_existing  uuid;
    v_request   uuid;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'dataset name must be 1 to 200 characters, got %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dataset_type IS NULL OR dataset_type NOT IN ('feature_based', 'iq_raw') THEN
        RAISE EXCEPTION 'dataset_type must be ''feature_based'' or ''iq_raw'', got %', coalesce(quote_literal(dataset_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF num_samples IS NULL OR num_samples < 0 THEN
        RAISE EXCEPTION 'num_samples must be >= 0, got %', coalesce(num_samples::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO heimdall.synthetic_datasets AS d (name, dataset_type, config, seed)
    VALUES (btrim(create_dataset.name), create_dataset.dataset_type,
            heimdall.normalize_config(create_dataset.config),
            -- 62 random bits: a positive bigint that survives any JSON/float round trip
            coalesce(create_dataset.seed, ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint & 4611686018427387903))
    ON CONFLICT ON CONSTRAINT synthetic_datasets_name_key DO NOTHING
    RETURNING d.id INTO v_id;

    IF v_id IS NULL THEN
        SELECT d.id INTO v_existing FROM heimdall.synthetic_datasets d WHERE d.name = btrim(create_dataset.name);
        RAISE EXCEPTION 'dataset named "%" already exists (id %)', btrim(create_dataset.name), v_existing
            USING ERRCODE = 'unique_violation',
                  HINT = 'use heimdall.expand_dataset(id, n) to add samples to it';
    END IF;

    IF create_dataset.num_samples > 0 THEN
        SELECT heimdall.create_request(v_id, 'create', r.first_idx, r.last_idx) INTO v_request
          FROM heimdall.reserve_samples(v_id, create_dataset.num_samples) r;
    END IF;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.create_dataset(text, text, jsonb, bigint, integer) IS
    'Create a dataset (normalized config, seed) and optionally request its first samples.';


-- >>> sql/functions/create_request.sql
-- heimdall.create_request(dataset_id uuid, kind text, first_idx integer, last_idx integer) -> uuid
--   (internal)
--
-- Purpose: the one place a generation request becomes work: record the request, split
--   first_idx..last_idx into chunks of the dataset's config.chunk_size ('generate' chunks
--   for create/expand, 'repair' chunks for repair) and enqueue one message per chunk.
--   Callers (expand_dataset, enqueue_repair) own the checks on the range and the locks.
-- Parameters: dataset_id; kind - 'create', 'expand' or 'repair'; first_idx..last_idx.
-- Returns: the request id.
-- Errors: 23514 via the table checks if the range is empty or negative.
CREATE OR REPLACE FUNCTION heimdall.create_request(dataset_id uuid, kind text, first_idx integer, last_idx integer)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_chunk     integer;
    v_request   uuid;
BEGIN
    SELECT (d.config ->> 'chunk_size')::integer INTO v_chunk
      FROM heimdall.synthetic_datasets d WHERE d.id = create_request.dataset_id;

    INSERT INTO heimdall.generation_requests AS r (dataset_id, kind, first_idx, last_idx, chunk_size)
    VALUES (create_request.dataset_id, create_request.kind, create_request.first_idx, create_request.last_idx, v_chunk)
    RETURNING r.id INTO v_request;

    INSERT INTO heimdall.generation_chunks (request_id, dataset_id, kind, first_idx, last_idx)
    SELECT v_request, create_request.dataset_id,
           CASE WHEN create_request.kind = 'repair' THEN 'repair' ELSE 'generate' END,
           s, least(s + v_chunk - 1, create_request.last_idx)
      FROM generate_series(create_request.first_idx, create_request.last_idx, v_chunk) AS s;

    PERFORM heimdall.enqueue_chunks(ARRAY(
        SELECT c.id FROM heimdall.generation_chunks c WHERE c.request_id = v_request ORDER BY c.first_idx));
    RETURN v_request;
END;
$$;

COMMENT ON FUNCTION heimdall.create_request(uuid, text, integer, integer) IS
    'Internal: record a request, split it into chunks, enqueue one message per chunk.';


-- >>> sql/functions/delete_dataset.sql
-- heimdall.delete_dataset(dataset_id uuid) -> boolean
--
-- Purpose: delete a dataset with all its rows, requests, chunks and queue messages. Its
--   objects are recorded in heimdall.deleted_datasets (by trigger, so a raw DELETE does
--   the same) and removed by `heimdall-synth gc` after the grace period. Audited.
-- Parameters: dataset_id.
-- Returns: true.
-- Errors: P0002 unknown dataset.
-- Locks: the dataset's chunk rows, then the dataset row (a worker's order), cascaded rows.
CREATE OR REPLACE FUNCTION heimdall.delete_dataset(dataset_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    d heimdall.synthetic_datasets;
BEGIN
    -- Chunk rows first, then the dataset row: the order of a worker's commit. A worker
    -- committing a chunk of this dataset finishes first; then its rows go too.
    PERFORM 1 FROM heimdall.generation_chunks c
     WHERE c.dataset_id = delete_dataset.dataset_id ORDER BY c.id FOR UPDATE;
    DELETE FROM heimdall.synthetic_datasets x WHERE x.id = delete_dataset.dataset_id RETURNING x.* INTO d;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(delete_dataset.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (d.id, 'delete_dataset', jsonb_build_object('name', d.name, 'num_samples', d.num_samples,
                                                       'dataset_type', d.dataset_type));
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.delete_dataset(uuid) IS
    'Delete a dataset and its rows; its objects are queued for the object-store GC.';


-- >>> sql/functions/enqueue_chunks.sql
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
SET search_path = pg_catalog, heimdall
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
    SELECT array_agg(m) INTO v_ids FROM pgmq.send_batch('heimdall_chunks', v_msgs) AS m;
    UPDATE heimdall.generation_chunks c
       SET msg_id = q.msg_id, updated_at = now()
      FROM pgmq.q_heimdall_chunks q
     WHERE q.msg_id = ANY (v_ids) AND (q.message ->> 'chunk_id')::bigint = c.id;
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.enqueue_chunks(bigint[]) IS
    'Internal: send one queue message per pending chunk and record its msg_id.';


-- >>> sql/functions/enqueue_repair.sql
-- heimdall.enqueue_repair(dataset_id uuid, first_idx integer, last_idx integer, reason text) -> uuid
--
-- Purpose: regenerate indices first_idx..last_idx of a dataset: records a 'repair'
--   request and enqueues repair chunks (config.chunk_size each). A worker rewrites each
--   chunk's range in one transaction (existing rows of the range are replaced by
--   bit-identical regenerated ones, missing ones are created), so good data is never
--   dropped and nothing is ever half-written. Audited with reason and counts.
-- Parameters: dataset_id; first_idx..last_idx inside [0, next_idx); reason - free text.
-- Returns: the repair request id.
-- Errors: P0002 unknown dataset; 22023 range empty or outside the reserved range;
--   55000 a live chunk already covers part of the range (let it finish first).
-- Locks: the dataset row.
CREATE OR REPLACE FUNCTION heimdall.enqueue_repair(dataset_id uuid, first_idx integer, last_idx integer,
                                                   reason text DEFAULT 'repair')
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    d           heimdall.synthetic_datasets;
    v_request   uuid;
    v_feat      bigint;
    v_iq        bigint;
BEGIN
    SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = enqueue_repair.dataset_id FOR UPDATE;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(enqueue_repair.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF first_idx IS NULL OR last_idx IS NULL OR first_idx < 0 OR last_idx < first_idx OR last_idx >= d.next_idx THEN
        RAISE EXCEPTION 'dataset %: repair range %..% must lie inside the reserved range 0..%',
                d.id, first_idx, last_idx, d.next_idx - 1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                WHERE c.dataset_id = d.id AND c.state IN ('pending', 'running', 'paused', 'failed')
                  AND c.first_idx <= enqueue_repair.last_idx AND c.last_idx >= enqueue_repair.first_idx) THEN
        RAISE EXCEPTION 'dataset %: indices %..% overlap a chunk that is still queued, running, paused or failed',
                d.id, first_idx, last_idx
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'let it finish, retry it, or abandon it first';
    END IF;
    v_request := heimdall.create_request(d.id, 'repair', enqueue_repair.first_idx, enqueue_repair.last_idx);
    SELECT count(*) INTO v_feat FROM heimdall.measurement_features f
     WHERE f.dataset_id = d.id AND f.sample_idx BETWEEN enqueue_repair.first_idx AND enqueue_repair.last_idx;
    SELECT count(*) INTO v_iq FROM heimdall.synthetic_iq_samples q
     WHERE q.dataset_id = d.id AND q.sample_idx BETWEEN enqueue_repair.first_idx AND enqueue_repair.last_idx;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (d.id, 'enqueue_repair', jsonb_build_object('request_id', v_request, 'first_idx', enqueue_repair.first_idx,
            'last_idx', enqueue_repair.last_idx, 'reason', enqueue_repair.reason,
            'feature_rows_before', v_feat, 'iq_rows_before', v_iq));
    RETURN v_request;
END;
$$;

COMMENT ON FUNCTION heimdall.enqueue_repair(uuid, integer, integer, text) IS
    'Regenerate an index range of a dataset through repair chunks (audited).';


-- >>> sql/functions/expand_dataset.sql
-- heimdall.expand_dataset(dataset_id uuid, n integer) -> uuid
--
-- Purpose: request n more samples for a dataset. In the caller's transaction: reserve
--   the next n indices, record a generation request, split the range into chunks of the
--   dataset's config.chunk_size, and enqueue one pgmq message per chunk (queue
--   'heimdall_chunks'). Workers pick the messages up after commit.
-- Parameters: dataset_id; n - samples to add, 1 .. 10,000,000.
-- Returns: the request id (see heimdall.request_progress).
-- Errors: as reserve_samples (P0002 unknown dataset, 22023 n <= 0, 22003 n too large).
-- Locks: the dataset row until commit (via reserve_samples).
-- Idempotency: none; every call adds n samples. A rolled-back call leaves nothing behind.
CREATE OR REPLACE FUNCTION heimdall.expand_dataset(dataset_id uuid, n integer)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_first     integer;
    v_last      integer;
BEGIN
    SELECT r.first_idx, r.last_idx INTO v_first, v_last
    FROM heimdall.reserve_samples(expand_dataset.dataset_id, expand_dataset.n) r;
    RETURN heimdall.create_request(expand_dataset.dataset_id, 'expand', v_first, v_last);
END;
$$;

COMMENT ON FUNCTION heimdall.expand_dataset(uuid, integer) IS
    'Reserve n more indices, record the request, split into chunks, enqueue one message per chunk.';


-- >>> sql/functions/extend_chunk.sql
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


-- >>> sql/functions/fail_chunk.sql
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


-- >>> sql/functions/normalize_config.sql
-- heimdall.normalize_config(config jsonb) -> jsonb
--
-- Purpose: the single home of generation defaults and limits. Merges the defaults of
--   heimdall.config_keys into `config`, rejects unknown keys, wrong JSON types and
--   out-of-range values, checks cross-key constraints, and returns the complete,
--   normalized config that is stored with a dataset (immutable from then on).
-- Parameters: config - a JSON object with any subset of the keys of heimdall.config_keys
--   (units in the key names: *_mhz, *_dbm, *_hz, *_ms, *_db, *_km, *_m, *_us). NULL or
--   '{}' gives the defaults. Falsy values (0 dBm, ratio 0) are honoured, not replaced.
-- Returns: the normalized config (every key present, structured keys fully expanded).
-- Errors: 22023 invalid_parameter_value, message naming the offending key, for an unknown
--   key, a wrong type, a value out of range or an inconsistent combination.
-- Locks: none. Idempotent: normalize_config(normalize_config(c)) = normalize_config(c).
CREATE OR REPLACE FUNCTION heimdall.normalize_config(config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    k           record;
    v           jsonb;
    n           numeric;
    result      jsonb := '{}';
    unknown     text;
    st          jsonb;
    stations    jsonb;
    ids         text[] := '{}';
    area        jsonb;
    mix         jsonb;
    mix_key     text;
    mix_total   numeric := 0;
    rx_mode     text;
    rx_max      integer;
    iq_len      numeric;
BEGIN
    config := coalesce(config, '{}');
    IF jsonb_typeof(config) <> 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object, got %', jsonb_typeof(config)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
    FROM jsonb_object_keys(config) AS key
    WHERE key NOT IN (SELECT ck.key FROM heimdall.config_keys ck);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s): %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'valid keys: ' || (SELECT string_agg(ck.key, ', ' ORDER BY ck.key) FROM heimdall.config_keys ck);
    END IF;

    FOR k IN SELECT * FROM heimdall.config_keys ORDER BY key LOOP
        v := coalesce(config -> k.key, k.default_value);
        IF k.value_type IN ('number', 'integer') THEN
            IF jsonb_typeof(v) <> 'number' THEN
                RAISE EXCEPTION 'config key "%": must be a %, got %', k.key, k.value_type, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            n := (v #>> '{}')::numeric;
            IF k.value_type = 'integer' AND n <> trunc(n) THEN
                RAISE EXCEPTION 'config key "%": must be an integer, got %', k.key, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF k.min_value IS NOT NULL AND (n < k.min_value OR (k.min_exclusive AND n = k.min_value)) THEN
                RAISE EXCEPTION 'config key "%": must be % %, got %', k.key,
                        CASE WHEN k.min_exclusive THEN '>' ELSE '>=' END, k.min_value, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF k.max_value IS NOT NULL AND n > k.max_value THEN
                RAISE EXCEPTION 'config key "%": must be <= %, got %', k.key, k.max_value, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key,
                CASE WHEN k.value_type = 'integer' THEN to_jsonb(n::bigint) ELSE to_jsonb(n) END);
        ELSIF k.value_type = 'string_or_null' THEN
            IF jsonb_typeof(v) NOT IN ('string', 'null') THEN
                RAISE EXCEPTION 'config key "%": must be a string or null, got %', k.key, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') = '' THEN
                RAISE EXCEPTION 'config key "%": must not be empty (use null)', k.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);
        ELSIF k.value_type = 'object' THEN
            IF jsonb_typeof(v) <> 'object' THEN
                RAISE EXCEPTION 'config key "%": must be a JSON object, got %', k.key, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);   -- checked below
        END IF;
    END LOOP;

    -- signal_mix: weights >= 0 of known kinds, not all zero. A given mix replaces the
    -- default entirely (kinds it omits get weight 0).
    mix := result -> 'signal_mix';
    FOR mix_key IN SELECT jsonb_object_keys(mix) LOOP
        IF mix_key NOT IN ('voice', 'tone', 'dtmf', 'audio') THEN
            RAISE EXCEPTION 'config key "signal_mix": unknown kind "%"', mix_key
                USING ERRCODE = 'invalid_parameter_value', HINT = 'kinds: voice, tone, dtmf, audio';
        END IF;
        IF jsonb_typeof(mix -> mix_key) <> 'number' OR (mix ->> mix_key)::numeric < 0 THEN
            RAISE EXCEPTION 'config key "signal_mix": weight of "%" must be a number >= 0, got %',
                    mix_key, (mix -> mix_key)::text
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        mix_total := mix_total + (mix ->> mix_key)::numeric;
    END LOOP;
    IF mix_total <= 0 THEN
        RAISE EXCEPTION 'config key "signal_mix": at least one weight must be > 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    mix := jsonb_build_object(
        'voice', coalesce((mix ->> 'voice')::numeric, 0), 'tone', coalesce((mix ->> 'tone')::numeric, 0),
        'dtmf', coalesce((mix ->> 'dtmf')::numeric, 0), 'audio', coalesce((mix ->> 'audio')::numeric, 0));
    IF (mix ->> 'audio')::numeric > 0 AND jsonb_typeof(result -> 'audio_library') = 'null' THEN
        RAISE EXCEPTION 'config key "signal_mix": weight "audio" > 0 needs config key "audio_library"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    result := jsonb_set(result, '{signal_mix}', mix);

    -- receivers
    v := result -> 'receivers';
    rx_mode := v ->> 'mode';
    IF rx_mode IS NULL OR rx_mode NOT IN ('fixed', 'random', 'hexagonal') THEN
        RAISE EXCEPTION 'config key "receivers": "mode" must be "fixed", "random" or "hexagonal", got %',
                coalesce((v -> 'mode')::text, 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rx_mode = 'fixed' THEN
        SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(v) key
        WHERE key NOT IN ('mode', 'stations');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "receivers": unknown key(s) % for mode "fixed"', unknown
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v -> 'stations') IS DISTINCT FROM 'array' OR jsonb_array_length(v -> 'stations') < 3
           OR jsonb_array_length(v -> 'stations') > 64 THEN
            RAISE EXCEPTION 'config key "receivers": "stations" must be an array of 3 to 64 stations'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        stations := '[]';
        FOR st IN SELECT jsonb_array_elements(v -> 'stations') LOOP
            IF jsonb_typeof(st) <> 'object' THEN
                RAISE EXCEPTION 'config key "receivers": each station must be an object, got %', st::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(st) key
            WHERE key NOT IN ('id', 'name', 'lat', 'lon', 'alt_m');
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION 'config key "receivers": unknown station key(s) %', unknown
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'station keys: id, name, lat, lon, alt_m';
            END IF;
            IF jsonb_typeof(st -> 'id') IS DISTINCT FROM 'string' OR btrim(st ->> 'id') = '' THEN
                RAISE EXCEPTION 'config key "receivers": every station needs a non-empty string "id", got %', st::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF (st ->> 'id') = ANY (ids) THEN
                RAISE EXCEPTION 'config key "receivers": duplicate station id "%"', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ids := ids || (st ->> 'id');
            IF jsonb_typeof(st -> 'lat') IS DISTINCT FROM 'number' OR (st ->> 'lat')::numeric NOT BETWEEN -90 AND 90 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" lat must be a number in [-90, 90]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(st -> 'lon') IS DISTINCT FROM 'number' OR (st ->> 'lon')::numeric NOT BETWEEN -180 AND 180 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" lon must be a number in [-180, 180]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'alt_m' AND (jsonb_typeof(st -> 'alt_m') <> 'number' OR (st ->> 'alt_m')::numeric NOT BETWEEN -500 AND 9000) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" alt_m must be a number in [-500, 9000]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'name' AND jsonb_typeof(st -> 'name') <> 'string' THEN
                RAISE EXCEPTION 'config key "receivers": station "%" name must be a string', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            stations := stations || jsonb_build_array(jsonb_build_object(
                'id', st -> 'id', 'name', coalesce(st -> 'name', st -> 'id'),
                'lat', st -> 'lat', 'lon', st -> 'lon', 'alt_m', coalesce(st -> 'alt_m', '0')));
        END LOOP;
        result := jsonb_set(result, '{receivers}', jsonb_build_object('mode', 'fixed', 'stations', stations));
        rx_max := jsonb_array_length(stations);
    ELSE
        SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(v) key
        WHERE key NOT IN ('mode', 'count_min', 'count_max', 'area', 'alt_m');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "receivers": unknown key(s) % for mode "%"', unknown, rx_mode
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- Placement defaults: 4..8 receivers over the default network's area.
        v := jsonb_build_object('mode', rx_mode, 'count_min', 4, 'count_max', 8, 'alt_m', 200,
                 'area', '{"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3}'::jsonb)
             || (v - 'mode');
        IF jsonb_typeof(v -> 'count_min') <> 'number' OR jsonb_typeof(v -> 'count_max') <> 'number'
           OR (v ->> 'count_min')::numeric <> trunc((v ->> 'count_min')::numeric)
           OR (v ->> 'count_max')::numeric <> trunc((v ->> 'count_max')::numeric)
           OR (v ->> 'count_min')::numeric < 3 OR (v ->> 'count_max')::numeric > 64
           OR (v ->> 'count_min')::numeric > (v ->> 'count_max')::numeric THEN
            RAISE EXCEPTION 'config key "receivers": need integers 3 <= count_min <= count_max <= 64, got % and %',
                    (v -> 'count_min')::text, (v -> 'count_max')::text
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v -> 'alt_m') <> 'number' OR (v ->> 'alt_m')::numeric NOT BETWEEN -500 AND 9000 THEN
            RAISE EXCEPTION 'config key "receivers": alt_m must be a number in [-500, 9000]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        area := v -> 'area';
        IF jsonb_typeof(area) <> 'object'
           OR (SELECT count(*) FROM jsonb_object_keys(area) key WHERE key IN ('lat_min', 'lat_max', 'lon_min', 'lon_max')) <> 4
           OR (SELECT count(*) FROM jsonb_object_keys(area)) <> 4
           OR (SELECT bool_or(jsonb_typeof(val) <> 'number') FROM jsonb_each(area) AS e(key, val)) THEN
            RAISE EXCEPTION 'config key "receivers": "area" must be {"lat_min","lat_max","lon_min","lon_max"} numbers'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT ((area ->> 'lat_min')::numeric >= -90 AND (area ->> 'lat_min')::numeric < (area ->> 'lat_max')::numeric
                AND (area ->> 'lat_max')::numeric <= 90
                AND (area ->> 'lon_min')::numeric >= -180 AND (area ->> 'lon_min')::numeric < (area ->> 'lon_max')::numeric
                AND (area ->> 'lon_max')::numeric <= 180) THEN
            RAISE EXCEPTION 'config key "receivers": "area" needs -90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 180'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v := jsonb_set(v, '{count_min}', to_jsonb((v ->> 'count_min')::int));
        v := jsonb_set(v, '{count_max}', to_jsonb((v ->> 'count_max')::int));
        result := jsonb_set(result, '{receivers}', v);
        rx_max := (v ->> 'count_max')::int;
    END IF;

    -- cross-key constraints
    IF (result ->> 'tx_alt_min_m')::numeric > (result ->> 'tx_alt_max_m')::numeric THEN
        RAISE EXCEPTION 'config key "tx_alt_max_m": must be >= tx_alt_min_m (% < %)',
                result ->> 'tx_alt_max_m', result ->> 'tx_alt_min_m'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The noise floor is estimated from the spectrum outside the channel: keep half the
    -- sampled band free.
    IF (result ->> 'bandwidth_hz')::numeric > 0.5 * (result ->> 'sample_rate_hz')::numeric THEN
        RAISE EXCEPTION 'config key "bandwidth_hz": must be <= sample_rate_hz / 2 (% > % / 2)',
                result ->> 'bandwidth_hz', result ->> 'sample_rate_hz'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    iq_len := floor((result ->> 'sample_rate_hz')::numeric * (result ->> 'duration_ms')::numeric / 1000);
    IF iq_len < 64 OR iq_len > 2000000 THEN
        RAISE EXCEPTION 'config key "duration_ms": sample_rate_hz * duration_ms / 1000 = % IQ samples per receiver, must be in [64, 2000000]', iq_len
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (result ->> 'min_receivers')::int > rx_max THEN
        RAISE EXCEPTION 'config key "min_receivers": % exceeds the % receivers of the layout', result ->> 'min_receivers', rx_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN result;
END;
$$;

COMMENT ON FUNCTION heimdall.normalize_config(jsonb) IS
    'Merge defaults, validate and return the complete generation config (errors: 22023).';


-- >>> sql/functions/pause_request.sql
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
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_msgs  bigint[];
    v_n     integer;
BEGIN
    PERFORM 1 FROM heimdall.generation_requests r WHERE r.id = pause_request.request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(pause_request.request_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
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
    PERFORM pgmq.delete('heimdall_chunks', array_remove(v_msgs, NULL));
    UPDATE heimdall.generation_chunks c SET msg_id = NULL
     WHERE c.request_id = pause_request.request_id AND c.state = 'paused';
    UPDATE heimdall.generation_requests r SET paused_at = now() WHERE r.id = pause_request.request_id;
    RETURN v_n;
END;
$$;

COMMENT ON FUNCTION heimdall.pause_request(uuid) IS
    'Pause a request: pending chunks -> paused, messages withdrawn; running chunks finish.';


-- >>> sql/functions/release_chunk.sql
-- heimdall.release_chunk(chunk_id bigint, msg_id bigint) -> boolean
--
-- Purpose: give a claimed chunk back untouched (worker shutting down): running -> pending
--   and its message visible again at once.
-- Parameters: chunk_id, msg_id - the claim.
-- Returns: true if released; false if the claim was already gone (done/paused/other msg).
-- Errors: none for a lost claim (shutdown must not fail). Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.release_chunk(chunk_id bigint, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_id bigint;
BEGIN
    UPDATE heimdall.generation_chunks c
       SET state = 'pending', claimed_by = NULL, visible_at = now(), updated_at = now()
     WHERE c.id = release_chunk.chunk_id AND c.msg_id = release_chunk.msg_id AND c.state = 'running'
    RETURNING c.id INTO v_id;
    IF v_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pgmq.set_vt('heimdall_chunks', release_chunk.msg_id, 0);
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.release_chunk(bigint, bigint) IS
    'Worker: hand a claimed chunk back (message visible again at once).';


-- >>> sql/functions/release_stuck_chunks.sql
-- heimdall.release_stuck_chunks(dataset_id uuid, stuck_after_s integer) -> integer
--
-- Purpose: give chunks claimed by a dead worker back at once: running chunks whose
--   visibility ended more than stuck_after_s seconds ago become pending and their
--   messages visible. (pgmq would redeliver them anyway; this is for admins who do not
--   want to wait, and the state shown in views becomes right at once.) Audited.
-- Returns: number of chunks released. Errors: P0002 unknown dataset; 22023 bad seconds.
-- Locks: the chunk rows.
CREATE OR REPLACE FUNCTION heimdall.release_stuck_chunks(dataset_id uuid, stuck_after_s integer DEFAULT 600)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_msgs bigint[];
    v_ids  bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d WHERE d.id = release_stuck_chunks.dataset_id) THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(release_stuck_chunks.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF stuck_after_s IS NULL OR stuck_after_s < 0 THEN
        RAISE EXCEPTION 'stuck_after_s must be >= 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'pending', claimed_by = NULL, visible_at = now(), updated_at = now()
         WHERE c.dataset_id = release_stuck_chunks.dataset_id AND c.state = 'running'
           AND c.visible_at < now() - make_interval(secs => stuck_after_s)
        RETURNING c.id, c.msg_id)
    SELECT array_agg(u.id), array_agg(u.msg_id) INTO v_ids, v_msgs FROM upd u;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pgmq.set_vt('heimdall_chunks', array_remove(v_msgs, NULL), 0);
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (release_stuck_chunks.dataset_id, 'release_stuck_chunks', jsonb_build_object('chunks', to_jsonb(v_ids)));
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.release_stuck_chunks(uuid, integer) IS
    'Release chunks held by dead workers (running past their visibility timeout), audited.';


-- >>> sql/functions/repair_num_samples.sql
-- heimdall.repair_num_samples(dataset_id uuid) -> integer
--
-- Purpose: set num_samples to the number of feature rows (the source of truth), e.g.
--   after a client bypassed the triggers. Audited with the before/after values.
-- Returns: the new num_samples. Errors: P0002 unknown dataset.
-- Locks: the dataset row. Idempotent.
CREATE OR REPLACE FUNCTION heimdall.repair_num_samples(dataset_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_before integer;
    v_after  integer;
BEGIN
    SELECT d.num_samples INTO v_before FROM heimdall.synthetic_datasets d
     WHERE d.id = repair_num_samples.dataset_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(repair_num_samples.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT count(*) INTO v_after FROM heimdall.measurement_features f WHERE f.dataset_id = repair_num_samples.dataset_id;
    IF v_after <> v_before THEN
        UPDATE heimdall.synthetic_datasets d SET num_samples = v_after WHERE d.id = repair_num_samples.dataset_id;
        INSERT INTO heimdall.audit_log (dataset_id, action, detail)
        VALUES (repair_num_samples.dataset_id, 'repair_num_samples',
                jsonb_build_object('before', v_before, 'after', v_after));
    END IF;
    RETURN v_after;
END;
$$;

COMMENT ON FUNCTION heimdall.repair_num_samples(uuid) IS
    'Set num_samples to the true feature row count (audited).';


-- >>> sql/functions/reserve_samples.sql
-- heimdall.reserve_samples(dataset_id uuid, n integer) -> TABLE(first_idx, last_idx)
--
-- Purpose: hand out the next n contiguous sample indices of a dataset from its own
--   counter (synthetic_datasets.next_idx). The only way indices are allocated.
-- Parameters: dataset_id; n - number of indices, 1 .. 10,000,000.
-- Returns: one row, first_idx .. last_idx inclusive (last_idx - first_idx + 1 = n).
-- Errors: P0002 unknown dataset; 22023 n NULL or <= 0; 22003 n > 10,000,000 or the
--   counter would pass 2^31 - 1.
-- Locks: the dataset row (FOR UPDATE semantics via UPDATE) until the caller's transaction
--   ends, so concurrent callers get disjoint ranges; a rolled-back reservation returns
--   its range (the counter update rolls back), so indices never have gaps.
-- Idempotency: none; every call reserves a new range.
CREATE OR REPLACE FUNCTION heimdall.reserve_samples(dataset_id uuid, n integer)
RETURNS TABLE (first_idx integer, last_idx integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_next integer;
BEGIN
    IF n IS NULL OR n <= 0 THEN
        RAISE EXCEPTION 'n must be a positive number of samples, got %', coalesce(n::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > 10000000 THEN
        RAISE EXCEPTION 'n = % is too large: at most 10000000 samples per request', n
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    UPDATE heimdall.synthetic_datasets d
       SET next_idx = d.next_idx + n
     WHERE d.id = reserve_samples.dataset_id
       AND d.next_idx <= 2147483647 - n
    RETURNING d.next_idx INTO v_next;

    IF v_next IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d WHERE d.id = reserve_samples.dataset_id) THEN
            RAISE EXCEPTION 'dataset % does not exist', coalesce(reserve_samples.dataset_id::text, 'NULL')
                USING ERRCODE = 'no_data_found';
        END IF;
        RAISE EXCEPTION 'dataset %: reserving % more samples would pass the largest sample index', reserve_samples.dataset_id, n
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    first_idx := v_next - n;
    last_idx := v_next - 1;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION heimdall.reserve_samples(uuid, integer) IS
    'Reserve the next n contiguous sample indices of a dataset (row lock; rollback returns them).';


-- >>> sql/functions/resume_request.sql
-- heimdall.resume_request(request_id uuid) -> integer
--
-- Purpose: undo pause_request: paused chunks -> pending, one fresh message each.
-- Parameters: request_id.
-- Returns: number of chunks resumed.
-- Errors: P0002 unknown request; 55000 the request has no paused chunk.
-- Locks: the request's chunk rows.
CREATE OR REPLACE FUNCTION heimdall.resume_request(request_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM 1 FROM heimdall.generation_requests r WHERE r.id = resume_request.request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(resume_request.request_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    WITH upd AS (
        UPDATE heimdall.generation_chunks c SET state = 'pending', updated_at = now()
         WHERE c.request_id = resume_request.request_id AND c.state = 'paused'
        RETURNING c.id)
    SELECT array_agg(id) INTO v_ids FROM upd;
    IF v_ids IS NULL THEN
        RAISE EXCEPTION 'request % has no paused chunks to resume', resume_request.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM heimdall.enqueue_chunks(v_ids);
    UPDATE heimdall.generation_requests r SET paused_at = NULL WHERE r.id = resume_request.request_id;
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.resume_request(uuid) IS
    'Resume a paused request: paused chunks -> pending with fresh messages.';


-- >>> sql/functions/retry_failed_chunks.sql
-- heimdall.retry_failed_chunks(dataset_id uuid) -> integer
--
-- Purpose: re-enqueue every failed chunk of a dataset (after the cause was fixed):
--   failed -> pending with a fresh message and the attempt count reset. Audited.
-- Parameters: dataset_id.
-- Returns: number of chunks re-enqueued (0 if none failed).
-- Errors: P0002 unknown dataset. Locks: the chunk rows.
CREATE OR REPLACE FUNCTION heimdall.retry_failed_chunks(dataset_id uuid)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d WHERE d.id = retry_failed_chunks.dataset_id) THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(retry_failed_chunks.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'pending', attempts = 0, finished_at = NULL, claimed_by = NULL, updated_at = now()
         WHERE c.dataset_id = retry_failed_chunks.dataset_id AND c.state = 'failed'
        RETURNING c.id)
    SELECT array_agg(id) INTO v_ids FROM upd;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM heimdall.enqueue_chunks(v_ids);
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (retry_failed_chunks.dataset_id, 'retry_failed_chunks', jsonb_build_object('chunks', to_jsonb(v_ids)));
    RETURN cardinality(v_ids);
END;
$$;

COMMENT ON FUNCTION heimdall.retry_failed_chunks(uuid) IS
    'Re-enqueue the failed chunks of a dataset (audited).';


-- >>> sql/functions/tg_datasets_before_delete.sql
-- heimdall.tg_datasets_before_delete() - BEFORE DELETE row trigger on synthetic_datasets
--
-- Purpose: whoever deletes a dataset (delete_dataset() or a raw DELETE), its queue
--   messages are withdrawn and its object prefix is recorded for the object-store GC, in
--   the same transaction (a rolled-back delete records nothing).
CREATE OR REPLACE FUNCTION heimdall.tg_datasets_before_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_msgs bigint[];
BEGIN
    SELECT array_agg(c.msg_id) INTO v_msgs FROM heimdall.generation_chunks c
     WHERE c.dataset_id = OLD.id AND c.msg_id IS NOT NULL;
    IF v_msgs IS NOT NULL THEN
        PERFORM pgmq.delete('heimdall_chunks', v_msgs);
    END IF;
    INSERT INTO heimdall.deleted_datasets (dataset_id, name, dataset_type, object_prefix)
    VALUES (OLD.id, OLD.name, OLD.dataset_type, 'datasets/' || OLD.id || '/')
    ON CONFLICT (dataset_id) DO NOTHING;
    RETURN OLD;
END;
$$;


-- >>> sql/functions/tg_datasets_guard.sql
-- heimdall.tg_datasets_guard() - BEFORE UPDATE trigger on synthetic_datasets
--
-- Purpose: keep what defines a dataset immutable and its counters honest, for every
--   client: id, dataset_type, config, seed, config_version, created_* never change;
--   generator_version is set once; num_samples changes only through the feature-row
--   triggers (or to the true feature count, which is what repair does); next_idx only
--   grows, except when abandon_request gives back a tail that holds no rows and no live
--   chunk. Errors: 23514 check_violation naming the dataset and column.
CREATE OR REPLACE FUNCTION heimdall.tg_datasets_guard()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.dataset_type IS DISTINCT FROM OLD.dataset_type
       OR NEW.config IS DISTINCT FROM OLD.config OR NEW.seed IS DISTINCT FROM OLD.seed
       OR NEW.config_version IS DISTINCT FROM OLD.config_version
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'dataset %: id, dataset_type, config, seed and config_version are immutable', OLD.id
            USING ERRCODE = 'check_violation',
                  HINT = 'create a new dataset with the config you want';
    END IF;
    IF OLD.generator_version IS NOT NULL AND NEW.generator_version IS DISTINCT FROM OLD.generator_version THEN
        RAISE EXCEPTION 'dataset %: generator_version is % and cannot change', OLD.id, OLD.generator_version
            USING ERRCODE = 'check_violation';
    END IF;
    -- Depth 1 = a client statement; deeper = the feature-row counting trigger.
    IF NEW.num_samples IS DISTINCT FROM OLD.num_samples AND pg_trigger_depth() <= 1 THEN
        SELECT count(*) INTO v_count FROM heimdall.measurement_features f WHERE f.dataset_id = OLD.id;
        IF NEW.num_samples <> v_count THEN
            RAISE EXCEPTION 'dataset %: num_samples can only equal the number of feature rows (%), not %',
                    OLD.id, v_count, NEW.num_samples
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.next_idx < OLD.next_idx THEN
        IF EXISTS (SELECT 1 FROM heimdall.measurement_features f
                    WHERE f.dataset_id = OLD.id AND f.sample_idx >= NEW.next_idx)
           OR EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                       WHERE c.dataset_id = OLD.id AND c.last_idx >= NEW.next_idx AND c.state <> 'abandoned') THEN
            RAISE EXCEPTION 'dataset %: cannot lower next_idx from % to %: indices above it are committed or in work',
                    OLD.id, OLD.next_idx, NEW.next_idx
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;


-- >>> sql/functions/tg_features_counted.sql
-- heimdall.tg_features_counted() - AFTER INSERT / AFTER DELETE statement trigger on
--   measurement_features (transition table `changed`)
--
-- Purpose: keep synthetic_datasets.num_samples equal to the feature row count, once per
--   statement (COPY of a whole chunk = one UPDATE per dataset), and on insert check that
--   every sample_idx lies in the dataset's reserved range [0, next_idx).
-- Errors: 23514 check_violation naming the dataset and the first offending index.
-- Locks: the dataset row (the UPDATE), which also serialises against reserve_samples.
CREATE OR REPLACE FUNCTION heimdall.tg_features_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    bad record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH n AS (SELECT dataset_id, count(*) AS cnt, max(sample_idx) AS max_idx
                     FROM changed GROUP BY dataset_id),
             upd AS (UPDATE heimdall.synthetic_datasets d
                        SET num_samples = d.num_samples + n.cnt
                       FROM n WHERE d.id = n.dataset_id
                     RETURNING d.id, d.next_idx, n.max_idx)
        SELECT * INTO bad FROM upd WHERE upd.max_idx >= upd.next_idx LIMIT 1;
        IF bad.id IS NOT NULL THEN
            RAISE EXCEPTION 'dataset %: sample_idx % lies outside its reserved range [0, %)',
                    bad.id, bad.max_idx, bad.next_idx
                USING ERRCODE = 'check_violation',
                      HINT = 'indices come from heimdall.reserve_samples / expand_dataset';
        END IF;
    ELSE
        UPDATE heimdall.synthetic_datasets d
           SET num_samples = d.num_samples - n.cnt
          FROM (SELECT dataset_id, count(*) AS cnt FROM changed GROUP BY dataset_id) n
         WHERE d.id = n.dataset_id;
    END IF;
    RETURN NULL;
END;
$$;


-- >>> sql/functions/tg_features_need_iq.sql
-- heimdall.tg_features_need_iq() - DEFERRED constraint trigger, AFTER INSERT on
--   measurement_features, per row
--
-- Purpose: at commit, a feature row of an iq_raw dataset must have its IQ row (the FK
--   gives the reverse direction). Checked at commit, so a worker may insert features
--   first and IQ rows next in the same transaction.
-- Errors: 23514 check_violation naming dataset and sample_idx.
CREATE OR REPLACE FUNCTION heimdall.tg_features_need_iq()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d
                WHERE d.id = NEW.dataset_id AND d.dataset_type = 'iq_raw')
       AND EXISTS (SELECT 1 FROM heimdall.measurement_features f
                    WHERE f.dataset_id = NEW.dataset_id AND f.sample_idx = NEW.sample_idx)
       AND NOT EXISTS (SELECT 1 FROM heimdall.synthetic_iq_samples q
                        WHERE q.dataset_id = NEW.dataset_id AND q.sample_idx = NEW.sample_idx) THEN
        RAISE EXCEPTION 'iq_raw dataset %: sample % has a feature row but no IQ row', NEW.dataset_id, NEW.sample_idx
            USING ERRCODE = 'check_violation',
                  HINT = 'insert the feature and IQ rows of a sample in the same transaction';
    END IF;
    RETURN NULL;
END;
$$;


-- >>> sql/functions/tg_iq_deleted.sql
-- heimdall.tg_iq_deleted() - DEFERRED constraint trigger, AFTER DELETE on
--   synthetic_iq_samples, per row
--
-- Purpose: at commit, deleting an IQ row must not leave its feature row behind (the old
--   repair did exactly that). Delete the feature row instead (it cascades to the IQ row).
-- Errors: 23514 check_violation naming dataset and sample_idx.
CREATE OR REPLACE FUNCTION heimdall.tg_iq_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM heimdall.measurement_features f
                WHERE f.dataset_id = OLD.dataset_id AND f.sample_idx = OLD.sample_idx)
       AND NOT EXISTS (SELECT 1 FROM heimdall.synthetic_iq_samples q
                        WHERE q.dataset_id = OLD.dataset_id AND q.sample_idx = OLD.sample_idx) THEN
        RAISE EXCEPTION 'iq_raw dataset %: deleting the IQ row of sample % would leave its feature row without IQ',
                OLD.dataset_id, OLD.sample_idx
            USING ERRCODE = 'check_violation',
                  HINT = 'delete the feature row (cascades) or repair by regenerating the sample';
    END IF;
    RETURN NULL;
END;
$$;


-- >>> sql/functions/tg_iq_inserted.sql
-- heimdall.tg_iq_inserted() - AFTER INSERT statement trigger on synthetic_iq_samples
--   (transition table `changed`)
--
-- Purpose: feature_based datasets have no IQ rows.
-- Errors: 23514 check_violation naming the dataset.
CREATE OR REPLACE FUNCTION heimdall.tg_iq_inserted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_id uuid;
BEGIN
    SELECT d.id INTO v_id FROM heimdall.synthetic_datasets d
     WHERE d.dataset_type <> 'iq_raw' AND d.id IN (SELECT DISTINCT dataset_id FROM changed) LIMIT 1;
    IF v_id IS NOT NULL THEN
        RAISE EXCEPTION 'dataset % is feature_based: it cannot have IQ rows', v_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;


-- >>> sql/functions/tg_sample_key_immutable.sql
-- heimdall.tg_sample_key_immutable() - BEFORE UPDATE OF dataset_id, sample_idx trigger on
--   measurement_features and synthetic_iq_samples
--
-- Purpose: a sample's key never moves (moving it would bypass the reservation and
--   pairing checks). Errors: 23514 check_violation.
CREATE OR REPLACE FUNCTION heimdall.tg_sample_key_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall
AS $$
BEGIN
    IF NEW.dataset_id IS DISTINCT FROM OLD.dataset_id OR NEW.sample_idx IS DISTINCT FROM OLD.sample_idx THEN
        RAISE EXCEPTION '%: (dataset_id, sample_idx) of sample % of dataset % cannot change',
                TG_TABLE_NAME, OLD.sample_idx, OLD.dataset_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;


-- >>> sql/functions/validate_dataset.sql
-- heimdall.validate_dataset(dataset_id uuid, extra_issues jsonb, stuck_after_s integer) -> jsonb
--
-- Purpose: check a dataset both ways with what SQL can see, merge issues found elsewhere
--   (the CLI passes the object-store checks as extra_issues), compute the health status,
--   store it on the dataset (health_status, health_checked_at, health_report) and return
--   the report. Work in flight is not damage: indices covered by a pending, running,
--   paused or failed chunk are never reported as gaps.
-- Issue kinds (each {kind, severity, first_idx, last_idx, count, detail}):
--   critical: num_samples_mismatch, features_missing_iq, iq_without_features,
--             iq_in_feature_based, out_of_range, duplicate_index, gap (index reserved, no
--             row, no chunk working on it); from the object store: missing_object,
--             object_too_short, corrupt_sample, corrupt_object
--   warning:  failed_chunks, stuck_chunks (running, visibility timeout passed more than
--             stuck_after_s ago), orphan_object (from the object store)
-- Status: critical if any critical issue, else warning if any warning, else healthy.
-- Parameters: dataset_id; extra_issues - JSON array of issues in the same shape;
--   stuck_after_s - grace after a claim's visibility timeout (>= 0, default 600).
-- Returns: {"dataset_id", "status", "checked_at", "counts": {...}, "issues": [...]}.
-- Errors: P0002 unknown dataset; 22023 extra_issues not an array / stuck_after_s < 0.
-- Locks: none beyond the UPDATE of the dataset's health columns. Idempotent.
CREATE OR REPLACE FUNCTION heimdall.validate_dataset(dataset_id uuid, extra_issues jsonb DEFAULT '[]',
                                                     stuck_after_s integer DEFAULT 600)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    d           heimdall.synthetic_datasets;
    v_issues    jsonb := '[]';
    v_counts    jsonb;
    v_status    text;
    v_report    jsonb;
BEGIN
    SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = validate_dataset.dataset_id;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(validate_dataset.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF jsonb_typeof(coalesce(extra_issues, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'extra_issues must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF stuck_after_s IS NULL OR stuck_after_s < 0 THEN
        RAISE EXCEPTION 'stuck_after_s must be >= 0, got %', coalesce(stuck_after_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- One statement, one snapshot: num_samples and the row counts are compared as of the
    -- same instant, so a chunk committing during validation is not a mismatch.
    SELECT jsonb_build_object(
               'num_samples', x.num_samples, 'reserved', x.next_idx,
               'feature_rows', (SELECT count(*) FROM heimdall.measurement_features f WHERE f.dataset_id = d.id),
               'iq_rows', (SELECT count(*) FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id),
               'open_chunks', (SELECT count(*) FROM heimdall.generation_chunks c
                                WHERE c.dataset_id = d.id AND c.state IN ('pending', 'running', 'paused')))
      INTO v_counts
      FROM heimdall.synthetic_datasets x WHERE x.id = d.id;

    IF (v_counts ->> 'feature_rows')::bigint <> (v_counts ->> 'num_samples')::bigint THEN
        v_issues := v_issues || jsonb_build_object('kind', 'num_samples_mismatch', 'severity', 'critical',
            'count', abs((v_counts ->> 'feature_rows')::bigint - (v_counts ->> 'num_samples')::bigint),
            'detail', format('num_samples is %s but there are %s feature rows', v_counts ->> 'num_samples',
                             v_counts ->> 'feature_rows'));
    END IF;

    -- Ranges of consecutive indices ("islands") for the pairing checks, one statement each;
    -- EXCEPT keeps them linear even before the planner has statistics for fresh rows.
    IF d.dataset_type = 'iq_raw' THEN
        v_issues := v_issues || coalesce((
            SELECT jsonb_agg(jsonb_build_object('kind', 'features_missing_iq', 'severity', 'critical',
                       'first_idx', r.lo, 'last_idx', r.hi, 'count', r.n,
                       'detail', 'feature rows without their IQ row') ORDER BY r.lo)
              FROM (SELECT min(i) AS lo, max(i) AS hi, count(*) AS n FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS grp
                      FROM (SELECT f.sample_idx AS i FROM heimdall.measurement_features f WHERE f.dataset_id = d.id
                            EXCEPT
                            SELECT q.sample_idx FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id) m) g
             GROUP BY grp) r), '[]');
    END IF;
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'iq_without_features', 'severity', 'critical',
                   'first_idx', r.lo, 'last_idx', r.hi, 'count', r.n,
                   'detail', 'IQ rows without their feature row') ORDER BY r.lo)
          FROM (SELECT min(i) AS lo, max(i) AS hi, count(*) AS n FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS grp
                  FROM (SELECT q.sample_idx AS i FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id
                        EXCEPT
                        SELECT f.sample_idx FROM heimdall.measurement_features f WHERE f.dataset_id = d.id) m) g
         GROUP BY grp) r), '[]');
    IF d.dataset_type = 'feature_based' AND (v_counts ->> 'iq_rows')::bigint > 0 THEN
        v_issues := v_issues || jsonb_build_object('kind', 'iq_in_feature_based', 'severity', 'critical',
            'count', (v_counts ->> 'iq_rows')::bigint, 'detail', 'a feature_based dataset has IQ rows');
    END IF;
    v_issues := v_issues || coalesce((
        SELECT jsonb_build_array(jsonb_build_object('kind', 'out_of_range', 'severity', 'critical',
                   'first_idx', min(f.sample_idx), 'last_idx', max(f.sample_idx), 'count', count(*),
                   'detail', format('rows beyond the reserved range [0, %s)', d.next_idx)))
          FROM heimdall.measurement_features f WHERE f.dataset_id = d.id AND f.sample_idx >= d.next_idx
        HAVING count(*) > 0), '[]');
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'duplicate_index', 'severity', 'critical',
                   'first_idx', x.sample_idx, 'last_idx', x.sample_idx, 'count', x.n,
                   'detail', x.tbl || ' has this index more than once'))
          FROM (SELECT 'measurement_features' AS tbl, f.sample_idx, count(*) AS n
                  FROM heimdall.measurement_features f WHERE f.dataset_id = d.id
                 GROUP BY f.sample_idx HAVING count(*) > 1
                UNION ALL
                SELECT 'synthetic_iq_samples', q.sample_idx, count(*)
                  FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id
                 GROUP BY q.sample_idx HAVING count(*) > 1) x), '[]');
    -- Gaps: reserved indices with no row at all and no chunk working on them. EXCEPT (a
    -- hash or sort set operation) keeps this linear whatever the planner's statistics.
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'gap', 'severity', 'critical',
                   'first_idx', r.lo, 'last_idx', r.hi, 'count', r.n,
                   'detail', 'reserved indices with no rows and no chunk to fill them') ORDER BY r.lo)
          FROM (SELECT min(i) AS lo, max(i) AS hi, count(*) AS n
                  FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS grp
                          FROM (SELECT generate_series(0, d.next_idx - 1) AS i
                                EXCEPT
                                SELECT f.sample_idx FROM heimdall.measurement_features f WHERE f.dataset_id = d.id
                                EXCEPT
                                SELECT q.sample_idx FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id
                                EXCEPT
                                SELECT generate_series(c.first_idx, c.last_idx) FROM heimdall.generation_chunks c
                                 WHERE c.dataset_id = d.id AND c.state IN ('pending', 'running', 'paused', 'failed')
                               ) missing) g
                 GROUP BY grp) r), '[]');
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'failed_chunks', 'severity', 'warning',
                   'first_idx', c.first_idx, 'last_idx', c.last_idx, 'count', c.last_idx - c.first_idx + 1,
                   'detail', format('chunk %s failed after %s attempts: %s', c.id, c.attempts, c.last_error))
                   ORDER BY c.first_idx)
          FROM heimdall.generation_chunks c WHERE c.dataset_id = d.id AND c.state = 'failed'), '[]');
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'stuck_chunks', 'severity', 'warning',
                   'first_idx', c.first_idx, 'last_idx', c.last_idx, 'count', c.last_idx - c.first_idx + 1,
                   'detail', format('chunk %s claimed by %s at %s, visibility ended %s', c.id,
                                    coalesce(c.claimed_by, '?'), c.claimed_at, c.visible_at))
                   ORDER BY c.first_idx)
          FROM heimdall.generation_chunks c
         WHERE c.dataset_id = d.id AND c.state = 'running'
           AND c.visible_at < now() - make_interval(secs => stuck_after_s)), '[]');

    v_issues := v_issues || coalesce(extra_issues, '[]');
    v_status := CASE
        WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(v_issues) e WHERE e ->> 'severity' = 'critical') THEN 'critical'
        WHEN jsonb_array_length(v_issues) > 0 THEN 'warning'
        ELSE 'healthy' END;
    v_report := jsonb_build_object('dataset_id', d.id, 'name', d.name, 'status', v_status, 'checked_at', now(),
                                   'counts', v_counts, 'issues', v_issues);
    UPDATE heimdall.synthetic_datasets x
       SET health_status = v_status, health_checked_at = now(), health_report = v_report
     WHERE x.id = d.id;
    RETURN v_report;
END;
$$;

COMMENT ON FUNCTION heimdall.validate_dataset(uuid, jsonb, integer) IS
    'Check a dataset both ways (plus issues found in the object store), store and return its health.';


-- >>> sql/triggers.sql
-- Triggers: the invariants every client gets (functions in sql/functions/tg_*.sql).

CREATE TRIGGER datasets_guard
    BEFORE UPDATE ON heimdall.synthetic_datasets
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_datasets_guard();

CREATE TRIGGER datasets_before_delete
    BEFORE DELETE ON heimdall.synthetic_datasets
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_datasets_before_delete();

CREATE TRIGGER features_counted_insert
    AFTER INSERT ON heimdall.measurement_features
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_features_counted();

CREATE TRIGGER features_counted_delete
    AFTER DELETE ON heimdall.measurement_features
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_features_counted();

CREATE CONSTRAINT TRIGGER features_need_iq
    AFTER INSERT ON heimdall.measurement_features
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_features_need_iq();

CREATE TRIGGER features_key_immutable
    BEFORE UPDATE OF dataset_id, sample_idx ON heimdall.measurement_features
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_sample_key_immutable();

CREATE TRIGGER iq_inserted
    AFTER INSERT ON heimdall.synthetic_iq_samples
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION heimdall.tg_iq_inserted();

CREATE CONSTRAINT TRIGGER iq_deleted
    AFTER DELETE ON heimdall.synthetic_iq_samples
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_iq_deleted();

CREATE TRIGGER iq_key_immutable
    BEFORE UPDATE OF dataset_id, sample_idx ON heimdall.synthetic_iq_samples
    FOR EACH ROW EXECUTE FUNCTION heimdall.tg_sample_key_immutable();


-- >>> sql/views.sql
-- Admin views (psql): health and progress. Read-only; computed from the rows themselves,
-- never from cached counters, so they cannot disagree with the data.

-- Per dataset: counts from every table, pairing gaps, chunk states, the contiguous ready
-- prefix (samples 0..ready_prefix-1 are all committed: what a training job can use), and
-- a status:
--   critical - data disagrees with itself: num_samples <> feature rows, features missing
--              IQ or IQ without features (iq_raw), IQ rows in a feature_based dataset,
--              duplicate or out-of-range indices (impossible unless triggers were bypassed);
--   warning  - failed chunks, or chunks claimed by a worker and not heard of for longer
--              than 10 minutes past their visibility timeout (stuck);
--   building - pending/running/paused chunks;
--   healthy  - none of the above.
CREATE VIEW heimdall.dataset_health AS
SELECT d.id AS dataset_id,
       d.name,
       d.dataset_type,
       d.num_samples,
       d.next_idx AS reserved,
       f.feature_rows,
       q.iq_rows,
       CASE WHEN d.dataset_type = 'iq_raw' THEN f.feature_rows - pq.paired ELSE 0 END AS features_missing_iq,
       q.iq_rows - pq.paired AS iq_without_features,
       f.out_of_range,
       c.pending_chunks,
       c.running_chunks,
       c.paused_chunks,
       c.failed_chunks,
       c.stuck_chunks,
       f.ready_prefix,
       CASE
           WHEN d.num_samples <> f.feature_rows
                OR (d.dataset_type = 'iq_raw' AND f.feature_rows <> pq.paired)
                OR q.iq_rows <> pq.paired
                OR (d.dataset_type = 'feature_based' AND q.iq_rows > 0)
                OR f.out_of_range > 0 THEN 'critical'
           WHEN c.failed_chunks > 0 OR c.stuck_chunks > 0 THEN 'warning'
           WHEN c.pending_chunks + c.running_chunks + c.paused_chunks > 0 THEN 'building'
           ELSE 'healthy'
       END AS status,
       d.health_status AS last_validation_status,
       d.health_checked_at AS last_validated_at
  FROM heimdall.synthetic_datasets d
  CROSS JOIN LATERAL (
      SELECT count(*) AS feature_rows,
             count(*) FILTER (WHERE s.sample_idx >= d.next_idx) AS out_of_range,
             count(*) FILTER (WHERE s.sample_idx = s.rn - 1) AS ready_prefix
        FROM (SELECT x.sample_idx, row_number() OVER (ORDER BY x.sample_idx) AS rn
                FROM heimdall.measurement_features x WHERE x.dataset_id = d.id) s) f
  CROSS JOIN LATERAL (
      SELECT count(*) AS iq_rows FROM heimdall.synthetic_iq_samples x WHERE x.dataset_id = d.id) q
  CROSS JOIN LATERAL (
      SELECT count(*) AS paired
        FROM heimdall.synthetic_iq_samples x
        JOIN heimdall.measurement_features y ON y.dataset_id = x.dataset_id AND y.sample_idx = x.sample_idx
       WHERE x.dataset_id = d.id) pq
  CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE x.state = 'pending') AS pending_chunks,
             count(*) FILTER (WHERE x.state = 'running') AS running_chunks,
             count(*) FILTER (WHERE x.state = 'paused') AS paused_chunks,
             count(*) FILTER (WHERE x.state = 'failed') AS failed_chunks,
             count(*) FILTER (WHERE x.state = 'running'
                              AND x.visible_at < now() - interval '10 minutes') AS stuck_chunks
        FROM heimdall.generation_chunks x WHERE x.dataset_id = d.id AND x.state <> 'done') c;

COMMENT ON VIEW heimdall.dataset_health IS
    'Per dataset: counts from every table, pairing gaps, chunk states, ready prefix, status.';

-- Per request: chunk counts by state, samples done, rate and ETA.
CREATE VIEW heimdall.request_progress AS
SELECT r.id AS request_id,
       r.dataset_id,
       d.name AS dataset_name,
       r.kind,
       r.first_idx,
       r.last_idx,
       r.num_samples,
       c.chunks_total,
       c.chunks_done,
       c.chunks_running,
       c.chunks_pending,
       c.chunks_paused,
       c.chunks_failed,
       c.chunks_abandoned,
       c.samples_done,
       r.created_at,
       c.last_done_at,
       CASE
           WHEN c.chunks_abandoned > 0 AND c.chunks_done + c.chunks_abandoned = c.chunks_total THEN 'abandoned'
           WHEN c.chunks_done = c.chunks_total THEN 'done'
           WHEN c.chunks_failed > 0 THEN 'failed'
           WHEN c.chunks_paused > 0 AND c.chunks_running = 0 AND c.chunks_pending = 0 THEN 'paused'
           WHEN c.chunks_running > 0 OR c.chunks_done > 0 THEN 'running'
           ELSE 'queued'
       END AS state,
       round((c.samples_done / nullif(extract(epoch FROM (c.last_done_at - c.first_claimed_at)), 0))::numeric, 2)
           AS samples_per_s,
       CASE WHEN c.samples_done > 0 AND c.samples_done < r.num_samples AND c.last_done_at > c.first_claimed_at THEN
           (c.last_done_at - c.first_claimed_at) * ((r.num_samples - c.samples_done)::double precision / c.samples_done)
       END AS eta
  FROM heimdall.generation_requests r
  JOIN heimdall.synthetic_datasets d ON d.id = r.dataset_id
  CROSS JOIN LATERAL (
      SELECT count(*) AS chunks_total,
             count(*) FILTER (WHERE x.state = 'done') AS chunks_done,
             count(*) FILTER (WHERE x.state = 'running') AS chunks_running,
             count(*) FILTER (WHERE x.state = 'pending') AS chunks_pending,
             count(*) FILTER (WHERE x.state = 'paused') AS chunks_paused,
             count(*) FILTER (WHERE x.state = 'failed') AS chunks_failed,
             count(*) FILTER (WHERE x.state = 'abandoned') AS chunks_abandoned,
             coalesce(sum(x.last_idx - x.first_idx + 1) FILTER (WHERE x.state = 'done'), 0) AS samples_done,
             min(x.claimed_at) AS first_claimed_at,
             max(x.finished_at) FILTER (WHERE x.state = 'done') AS last_done_at
        FROM heimdall.generation_chunks x WHERE x.request_id = r.id) c;

COMMENT ON VIEW heimdall.request_progress IS
    'Per request: chunks done/total by state, samples done, samples/s and ETA.';


-- >>> sql/grants.sql
-- Roles and privileges. Tables are private; the functions are the API.
--   heimdall_reader - SELECT on tables and views (analysts, training jobs)
--   heimdall_worker - claim/extend/release/fail/complete chunks, insert sample rows
--   heimdall_admin  - reader + worker + create/expand/pause/resume/abandon/retry/delete
--                     and repair (sets num_samples to the true count)
-- Roles are cluster-wide: created if missing, never dropped by a downgrade.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_reader') THEN
        CREATE ROLE heimdall_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_worker') THEN
        CREATE ROLE heimdall_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_admin') THEN
        CREATE ROLE heimdall_admin NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA heimdall FROM PUBLIC;

GRANT USAGE ON SCHEMA heimdall TO heimdall_reader, heimdall_worker, heimdall_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA heimdall TO heimdall_reader, heimdall_admin;
GRANT EXECUTE ON FUNCTION heimdall.normalize_config(jsonb) TO heimdall_reader, heimdall_worker, heimdall_admin;

-- The worker needs nothing else: its functions are SECURITY DEFINER, COPY needs INSERT,
-- and `--until-idle` counts open chunks.
GRANT SELECT ON heimdall.generation_chunks TO heimdall_worker;
GRANT INSERT ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_worker;
GRANT EXECUTE ON FUNCTION
    heimdall.claim_chunk(text, integer, integer),
    heimdall.begin_chunk_commit(bigint),
    heimdall.complete_chunk(bigint, bigint, text),
    heimdall.extend_chunk(bigint, bigint, integer),
    heimdall.release_chunk(bigint, bigint),
    heimdall.fail_chunk(bigint, bigint, text, boolean, integer)
TO heimdall_worker;

GRANT heimdall_reader TO heimdall_admin;
GRANT heimdall_worker TO heimdall_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA heimdall TO heimdall_admin;
GRANT UPDATE (num_samples, name) ON heimdall.synthetic_datasets TO heimdall_admin;
GRANT DELETE ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_admin;

