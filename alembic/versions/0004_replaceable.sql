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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    r           heimdall.generation_requests;
    d           heimdall.synthetic_datasets;
    v_from      integer;
    v_covered   bigint;
    v_msgs      bigint[];
BEGIN
    r := heimdall.request_row(abandon_request.request_id);
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
    PERFORM pgmq.delete(heimdall.queue_name(), array_remove(v_msgs, NULL));
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
-- heimdall.begin_chunk_commit(chunk_id bigint, claim_token uuid) -> boolean
--
-- Purpose: first statement of the worker's commit transaction. Locks the chunk (two
--   workers that both held it commit one after the other), checks the claim, and makes
--   this session's staging tables ready (see prepare_staging): the worker then COPYs the
--   chunk's rows into pg_temp.heimdall_stage_features / pg_temp.heimdall_stage_iq and
--   calls complete_chunk in the same transaction. For a repair chunk it removes the rows
--   of the range that exist (they are rewritten, bit-identical, in the same transaction),
--   so a repair never leaves a half-sample.
-- Parameters: chunk_id, claim_token - the claim.
-- Returns: true - stage the chunk's rows, then call complete_chunk; false - the chunk is
--   already done: stage nothing (complete_chunk is then a no-op).
-- Errors: P0002 unknown chunk; HS002 chunk abandoned (its indices were given back);
--   HS001 claim lost; 42501 a staging relation heimdall did not create.
-- Locks: the chunk row until the caller's transaction ends.
CREATE OR REPLACE FUNCTION heimdall.begin_chunk_commit(chunk_id bigint, claim_token uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    ch := heimdall.lock_claimed_chunk(begin_chunk_commit.chunk_id, begin_chunk_commit.claim_token, true);
    IF ch.state = 'done' THEN
        RETURN false;
    END IF;
    PERFORM heimdall.prepare_staging();
    IF ch.kind = 'repair' THEN
        DELETE FROM heimdall.measurement_features f
         WHERE f.dataset_id = ch.dataset_id AND f.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
        DELETE FROM heimdall.synthetic_iq_samples q
         WHERE q.dataset_id = ch.dataset_id AND q.sample_idx BETWEEN ch.first_idx AND ch.last_idx;
    END IF;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.begin_chunk_commit(bigint, uuid) IS
    'Worker: lock a claimed chunk at the start of its commit and prepare staging; false = already done.';


-- >>> sql/functions/check_staging.sql
-- heimdall.check_staging(stage text, target regclass) -> text
--
-- Purpose: the one check that a staging table of this session is heimdall's own before
--   the function owner reads or writes it: it must be a plain temp table owned by the
--   owner (made by prepare_staging), with no triggers, rules or row security a caller
--   could have attached. A caller's own relation of that name (table, view, anything) is
--   refused, so no caller-controlled code ever runs with the owner's rights.
-- Parameters: stage - table name in pg_temp; target - the sample table it stages for.
-- Returns: 'missing', 'ok', or 'stale' (heimdall's, but its columns no longer match
--   staged_columns(target): a migration changed the table; rebuild it).
-- Errors: 42501 a relation of that name exists that heimdall did not create.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.check_staging(stage text, target regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    rel     record;
    v_have  text[];
BEGIN
    SELECT c.oid, c.relowner, c.relkind, c.relpersistence, c.relhastriggers, c.relhasrules, c.relrowsecurity
      INTO rel FROM pg_catalog.pg_class c
     WHERE c.oid = to_regclass(format('pg_temp.%I', stage));
    IF rel.oid IS NULL THEN
        RETURN 'missing';
    END IF;
    IF rel.relowner <> (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
       OR rel.relkind <> 'r' OR rel.relpersistence <> 't' OR rel.relhastriggers OR rel.relhasrules
       OR rel.relrowsecurity THEN
        RAISE EXCEPTION 'pg_temp.% was not created by heimdall: refusing to use it', stage
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('DROP TABLE pg_temp.%I (or open a new session)', stage);
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO v_have
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN CASE WHEN v_have IS NOT DISTINCT FROM heimdall.staged_columns(target) THEN 'ok' ELSE 'stale' END;
END;
$$;

COMMENT ON FUNCTION heimdall.check_staging(text, regclass) IS
    'Internal: is pg_temp.<stage> heimdall''s own staging table (ok/missing/stale), else 42501.';


-- >>> sql/functions/claim_chunk.sql
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


-- >>> sql/functions/complete_chunk.sql
-- heimdall.complete_chunk(chunk_id bigint, claim_token uuid, generator_version text) -> boolean
--
-- Purpose: last statement of the worker's commit transaction, after begin_chunk_commit and
--   the COPY of the chunk's rows into this session's staging tables. Checks that every
--   staged row belongs to the claimed chunk (its dataset, its index range), moves the rows
--   into measurement_features / synthetic_iq_samples, checks every index of the chunk has
--   its rows, marks the chunk done and deletes its queue message (the message id comes
--   from the chunk row, never from the caller). num_samples is kept by the feature
--   triggers.
-- Parameters: chunk_id, claim_token - the claim; generator_version - version of the RF
--   core that made the rows; a dataset records the first one and refuses rows from
--   another (mixed generators would not be reproducible).
-- Returns: true - the chunk became done now; false - it was already done (no-op: the
--   staged rows are discarded).
-- Errors: P0002 unknown chunk; HS001 claim lost; HS002 chunk abandoned;
--   HS003 generator_version differs from the dataset's (fail the chunk for good);
--   HS004 a staged row lies outside the claimed chunk (nothing is moved);
--   55000 begin_chunk_commit was not called in this session; 42501 a relation named like
--   a staging table that heimdall did not create (check_staging);
--   23514 rows missing for some index of the chunk.
-- Locks: chunk row (already held after begin_chunk_commit), dataset row (via triggers).
-- Idempotency: completing twice is a no-op, never a duplicate.
CREATE OR REPLACE FUNCTION heimdall.complete_chunk(chunk_id bigint, claim_token uuid, generator_version text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch          heimdall.generation_chunks;
    d           heimdall.synthetic_datasets;
    v_features  integer;
    v_iq        integer;
    v_n         integer;
    v_bad       record;
    v_cols      text;
BEGIN
    ch := heimdall.lock_claimed_chunk(complete_chunk.chunk_id, complete_chunk.claim_token, true);
    IF heimdall.check_staging('heimdall_stage_features', 'heimdall.measurement_features') <> 'ok'
       OR heimdall.check_staging('heimdall_stage_iq', 'heimdall.synthetic_iq_samples') <> 'ok' THEN
        IF ch.state = 'done' THEN
            RETURN false;       -- begin_chunk_commit said "already done": nothing was staged
        END IF;
        RAISE EXCEPTION 'chunk %: no staging tables in this session: call heimdall.begin_chunk_commit first', ch.id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF ch.state = 'done' THEN
        DELETE FROM pg_temp.heimdall_stage_features;
        DELETE FROM pg_temp.heimdall_stage_iq;
        RETURN false;
    END IF;

    SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = ch.dataset_id;
    IF d.generator_version IS NOT NULL AND d.generator_version IS DISTINCT FROM complete_chunk.generator_version THEN
        RAISE EXCEPTION 'dataset % was generated by generator %, this worker runs %',
                d.id, d.generator_version, coalesce(complete_chunk.generator_version, 'NULL')
            USING ERRCODE = 'HS003',
                  HINT = 'run workers of the dataset''s generator version';
    END IF;

    -- Every staged row must be one of the claimed chunk's samples: a worker can only ever
    -- write the chunk it holds.
    SELECT s.tbl, s.dataset_id, s.sample_idx INTO v_bad
      FROM (SELECT 'measurement_features' AS tbl, f.dataset_id, f.sample_idx FROM pg_temp.heimdall_stage_features f
            UNION ALL
            SELECT 'synthetic_iq_samples', q.dataset_id, q.sample_idx FROM pg_temp.heimdall_stage_iq q) s
     WHERE s.dataset_id IS DISTINCT FROM ch.dataset_id
        OR s.sample_idx IS NULL OR s.sample_idx NOT BETWEEN ch.first_idx AND ch.last_idx
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'chunk % holds dataset % indices %..%: a staged % row for dataset %, index % lies outside it',
                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx, v_bad.tbl,
                coalesce(v_bad.dataset_id::text, 'NULL'), coalesce(v_bad.sample_idx::text, 'NULL')
            USING ERRCODE = 'HS004';
    END IF;

    SELECT string_agg(quote_ident(c), ', ') INTO v_cols FROM unnest(heimdall.staged_columns('heimdall.measurement_features')) c;
    EXECUTE format('INSERT INTO heimdall.measurement_features (%1$s) SELECT %1$s FROM pg_temp.heimdall_stage_features', v_cols);
    SELECT string_agg(quote_ident(c), ', ') INTO v_cols FROM unnest(heimdall.staged_columns('heimdall.synthetic_iq_samples')) c;
    EXECUTE format('INSERT INTO heimdall.synthetic_iq_samples (%1$s) SELECT %1$s FROM pg_temp.heimdall_stage_iq', v_cols);
    -- the staged rows go at commit (ON COMMIT DELETE ROWS); a second call finds the chunk done

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
       SET state = 'done', finished_at = now(), updated_at = now(), msg_id = NULL, visible_at = NULL,
           claim_token = NULL
     WHERE c.id = ch.id;
    IF ch.msg_id IS NOT NULL THEN
        PERFORM pgmq.delete(heimdall.queue_name(), ch.msg_id);
    END IF;
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

COMMENT ON FUNCTION heimdall.complete_chunk(bigint, uuid, text) IS
    'Worker: move the staged rows of a claimed chunk (all inside it), mark it done, drop its message (idempotent).';


-- >>> sql/functions/create_dataset.sql
-- heimdall.create_dataset(name, dataset_type, config, seed, num_samples) -> uuid
--
-- Purpose: create a dataset with a complete, normalized, immutable config and, if
--   num_samples > 0, request that many samples (exactly as expand_dataset does).
-- Parameters: name - unique, trimmed, 1..200 chars, no control characters, not readable
--   as a uuid (references that parse as a uuid are ids); dataset_type - 'feature_based'
--   or 'iq_raw'; config - partial config (see normalize_config); seed - generation seed, a
--   whole number 0 .. 2^63-1 (NULL: chosen at random and stored); num_samples - samples
--   to request now, a whole number 0 .. 10,000,000. Seed and count are numeric so any
--   number a client sends gets a clear error.
-- Returns: the new dataset id.
-- Errors: 22023 bad name / type / config / seed / num_samples; 22003 num_samples too
--   large or too many chunks;
--   23505 a dataset with that name exists (never silently appends to it).
-- Locks: inserts the dataset row. Not idempotent: a second call with the same name fails.
CREATE OR REPLACE FUNCTION heimdall.create_dataset(
    name text,
    dataset_type text,
    config jsonb DEFAULT '{}',
    seed numeric DEFAULT NULL,
    num_samples numeric DEFAULT 0
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_id        uuid;
    v_existing  uuid;
    v_request   uuid;
    v_samples   bigint;
    v_seed      bigint;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'dataset name must be 1 to 200 characters, got %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dataset_type IS NULL OR dataset_type NOT IN ('feature_based', 'iq_raw') THEN
        RAISE EXCEPTION 'dataset_type must be ''feature_based'' or ''iq_raw'', got %', coalesce(quote_literal(dataset_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION 'dataset name must not contain control characters (newline, tab, escape...), got %',
                quote_literal(regexp_replace(name, '[\u0001-\u001f\u007f-\u009f]', '?', 'g'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lower(translate(name, '{}-', '')) ~ '^(urn:uuid:)?[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'dataset name must not read as a uuid (references that parse as a uuid are ids), got %',
                quote_literal(name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_samples := heimdall.integer_arg(create_dataset.num_samples, 'num_samples', 0, 10000000, '22003');
    IF create_dataset.seed IS NOT NULL THEN
        v_seed := heimdall.integer_arg(create_dataset.seed, 'seed', 0, 9223372036854775807);
    END IF;

    INSERT INTO heimdall.synthetic_datasets AS d (name, dataset_type, config, seed)
    VALUES (btrim(create_dataset.name), create_dataset.dataset_type,
            heimdall.normalize_config(create_dataset.config),
            -- 62 random bits: a positive bigint that survives any JSON/float round trip
            coalesce(v_seed, ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint & 4611686018427387903))
    ON CONFLICT ON CONSTRAINT synthetic_datasets_name_key DO NOTHING
    RETURNING d.id INTO v_id;

    IF v_id IS NULL THEN
        SELECT d.id INTO v_existing FROM heimdall.synthetic_datasets d WHERE d.name = btrim(create_dataset.name);
        RAISE EXCEPTION 'dataset named "%" already exists (id %)', btrim(create_dataset.name), v_existing
            USING ERRCODE = 'unique_violation',
                  HINT = 'use heimdall.expand_dataset(id, n) to add samples to it';
    END IF;

    IF v_samples > 0 THEN
        SELECT heimdall.create_request(v_id, 'create', r.first_idx, r.last_idx) INTO v_request
          FROM heimdall.reserve_samples(v_id, v_samples) r;
    END IF;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.create_dataset(text, text, jsonb, numeric, numeric) IS
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
-- Errors: 22003 the range would make more than 100,000 chunks (one request stays a
--   bounded amount of work and of queue messages; use a larger chunk_size or several
--   requests); 23514 via the table checks if the range is empty or negative.
CREATE OR REPLACE FUNCTION heimdall.create_request(dataset_id uuid, kind text, first_idx integer, last_idx integer)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_chunk     integer;
    v_request   uuid;
BEGIN
    SELECT (d.config ->> 'chunk_size')::integer INTO v_chunk
      FROM heimdall.synthetic_datasets d WHERE d.id = create_request.dataset_id;
    IF (create_request.last_idx::bigint - create_request.first_idx + v_chunk) / v_chunk > 100000 THEN
        RAISE EXCEPTION 'dataset %: % samples in chunks of % would make % chunks; at most 100000 per request',
                create_request.dataset_id, create_request.last_idx::bigint - create_request.first_idx + 1, v_chunk,
                (create_request.last_idx::bigint - create_request.first_idx + v_chunk) / v_chunk
            USING ERRCODE = 'numeric_value_out_of_range',
                  HINT = 'request fewer samples at a time, or create the dataset with a larger chunk_size';
    END IF;

    INSERT INTO heimdall.generation_requests AS r (dataset_id, kind, first_idx, last_idx, chunk_size)
    VALUES (create_request.dataset_id, create_request.kind, create_request.first_idx, create_request.last_idx, v_chunk)
    RETURNING r.id INTO v_request;

    INSERT INTO heimdall.generation_chunks (request_id, dataset_id, kind, first_idx, last_idx)
    SELECT v_request, create_request.dataset_id,
           CASE WHEN create_request.kind = 'repair' THEN 'repair' ELSE 'generate' END,
           s::integer, least(s + v_chunk - 1, create_request.last_idx)::integer
      -- bigint: the last chunk of a range ending near 2^31 - 1 must not overflow
      FROM generate_series(create_request.first_idx::bigint, create_request.last_idx::bigint, v_chunk) AS s;

    PERFORM heimdall.enqueue_chunks(ARRAY(
        SELECT c.id FROM heimdall.generation_chunks c WHERE c.request_id = v_request ORDER BY c.first_idx));
    RETURN v_request;
END;
$$;

COMMENT ON FUNCTION heimdall.create_request(uuid, text, integer, integer) IS
    'Internal: record a request, split it into chunks, enqueue one message per chunk.';


-- >>> sql/functions/dataset_row.sql
-- heimdall.dataset_row(dataset_id uuid, lock boolean) -> heimdall.synthetic_datasets
--
-- Purpose: the one home of "this dataset, or P0002 naming it": every function that takes a
--   dataset id starts here. lock = true takes the row lock (FOR UPDATE) until the caller's
--   transaction ends (callers that also lock chunk rows take those first: chunk -> dataset,
--   the order of a worker's commit).
-- Returns: the dataset row. Errors: P0002 dataset does not exist.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.dataset_row(dataset_id uuid, lock boolean DEFAULT false)
RETURNS heimdall.synthetic_datasets
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d heimdall.synthetic_datasets;
BEGIN
    IF lock THEN
        SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = dataset_row.dataset_id FOR UPDATE;
    ELSE
        SELECT x.* INTO d FROM heimdall.synthetic_datasets x WHERE x.id = dataset_row.dataset_id;
    END IF;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'dataset % does not exist', coalesce(dataset_row.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN d;
END;
$$;

COMMENT ON FUNCTION heimdall.dataset_row(uuid, boolean) IS
    'Internal: a dataset row (optionally locked) or P0002 naming the id.';


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
SET search_path = pg_catalog, heimdall, pg_temp
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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d           heimdall.synthetic_datasets;
    v_request   uuid;
    v_feat      bigint;
    v_iq        bigint;
BEGIN
    d := heimdall.dataset_row(enqueue_repair.dataset_id, true);
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
-- heimdall.expand_dataset(dataset_id uuid, n numeric) -> uuid
--
-- Purpose: request n more samples for a dataset. In the caller's transaction: reserve
--   the next n indices, record a generation request, split the range into chunks of the
--   dataset's config.chunk_size, and enqueue one pgmq message per chunk (queue
--   'heimdall_chunks'). Workers pick the messages up after commit.
-- Parameters: dataset_id; n - samples to add, a whole number 1 .. 10,000,000.
-- Returns: the request id (see heimdall.request_progress).
-- Errors: as reserve_samples (P0002 unknown dataset, 22023 n not whole or <= 0, 22003 n
--   too large or past the largest index) and create_request (22003 too many chunks).
-- Locks: the dataset row until commit (via reserve_samples).
-- Idempotency: none; every call adds n samples. A rolled-back call leaves nothing behind.
CREATE OR REPLACE FUNCTION heimdall.expand_dataset(dataset_id uuid, n numeric)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
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

COMMENT ON FUNCTION heimdall.expand_dataset(uuid, numeric) IS
    'Reserve n more indices, record the request, split into chunks, enqueue one message per chunk.';


-- >>> sql/functions/extend_chunk.sql
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


-- >>> sql/functions/fail_chunk.sql
-- heimdall.fail_chunk(chunk_id bigint, claim_token uuid, error text, permanent boolean,
--                     retry_in_s integer) -> text
--
-- Purpose: a worker could not finish a chunk. Records the error. permanent = false: the
--   chunk goes back to pending and its message reappears after retry_in_s seconds (the
--   delivery count keeps growing; claim_chunk fails it after max_reads). permanent = true
--   (the chunk can never succeed, e.g. the config never accepts a draw, or the worker's
--   generator version differs from the dataset's): state 'failed', message archived;
--   `heimdall-synth retry` / retry_failed_chunks() re-enqueues it.
-- Parameters: chunk_id, claim_token - the claim; error - text shown to admins (first
--   4000 characters kept); permanent; retry_in_s - 0 .. 86400.
-- Returns: the chunk's new state ('pending' or 'failed').
-- Errors: 22023 bad retry_in_s; P0002 unknown chunk; HS002 abandoned; HS001 claim lost.
-- Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.fail_chunk(chunk_id bigint, claim_token uuid, error text,
                                               permanent boolean DEFAULT false, retry_in_s integer DEFAULT 5)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch      heimdall.generation_chunks;
    v_perm  boolean := coalesce(fail_chunk.permanent, false);
BEGIN
    IF retry_in_s IS NULL OR retry_in_s < 0 OR retry_in_s > 86400 THEN
        RAISE EXCEPTION 'retry_in_s must be 0 .. 86400, got %', coalesce(retry_in_s::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ch := heimdall.lock_claimed_chunk(fail_chunk.chunk_id, fail_chunk.claim_token);
    UPDATE heimdall.generation_chunks c
       SET state = CASE WHEN v_perm THEN 'failed' ELSE 'pending' END,
           last_error = left(coalesce(fail_chunk.error, 'unknown error'), 4000),
           claimed_by = NULL, claim_token = NULL, updated_at = now(),
           msg_id = CASE WHEN v_perm THEN NULL ELSE c.msg_id END,
           finished_at = CASE WHEN v_perm THEN now() END
     WHERE c.id = ch.id;
    IF v_perm THEN
        PERFORM pgmq.archive(heimdall.queue_name(), ch.msg_id);
        RETURN 'failed';
    END IF;
    PERFORM pgmq.set_vt(heimdall.queue_name(), ch.msg_id, retry_in_s);
    RETURN 'pending';
END;
$$;

COMMENT ON FUNCTION heimdall.fail_chunk(bigint, uuid, text, boolean, integer) IS
    'Worker: record a chunk error; retry later or mark it failed for good.';


-- >>> sql/functions/index_islands.sql
-- heimdall.index_islands(indices integer[]) -> setof (first_idx integer, last_idx integer, count bigint)
--
-- Purpose: the one home of "group sample indices into ranges of consecutive indices"
--   (validate_dataset reports damage as ranges, repair regenerates ranges). Duplicates
--   are counted once; NULLs ignored.
-- Returns: one row per island, in index order.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.index_islands(indices integer[])
RETURNS TABLE (first_idx integer, last_idx integer, count bigint)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT min(i), max(i), count(*)
      FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS grp
              FROM (SELECT DISTINCT u AS i FROM unnest(indices) u WHERE u IS NOT NULL) d) g
     GROUP BY grp
     ORDER BY 1
$$;

COMMENT ON FUNCTION heimdall.index_islands(integer[]) IS
    'Internal: ranges of consecutive indices (first_idx, last_idx, count).';


-- >>> sql/functions/integer_arg.sql
-- heimdall.integer_arg(value numeric, what text, min_value numeric, max_value numeric,
--                      too_large_sqlstate text) -> bigint
--
-- Purpose: the one home of "a count or seed argument is a whole number in range". Public
--   functions take such arguments as numeric, so any number a client sends (1.5, 2^63,
--   1e30) reaches a clear error instead of 42883 "function does not exist" or a bare
--   "out of range".
-- Parameters: value; what - the argument's name for the message; min_value..max_value -
--   inclusive range; too_large_sqlstate - SQLSTATE when value > max_value (22003 for
--   counts, 22023 otherwise).
-- Returns: value as bigint.
-- Errors: 22023 NULL, not a whole number, or below min_value; too_large_sqlstate above
--   max_value. Every message names the argument and the limit.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.integer_arg(value numeric, what text, min_value numeric, max_value numeric,
                                                too_large_sqlstate text DEFAULT '22023')
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    IF value IS NULL OR value = 'NaN'::numeric OR value <> trunc(value) THEN
        RAISE EXCEPTION '% must be a whole number, got %', what, coalesce(value::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value < min_value THEN
        RAISE EXCEPTION '% must be >= %, got %', what, min_value, value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value > max_value THEN
        RAISE EXCEPTION '% must be <= %, got %', what, max_value, value
            USING ERRCODE = too_large_sqlstate;
    END IF;
    RETURN value::bigint;
END;
$$;

COMMENT ON FUNCTION heimdall.integer_arg(numeric, text, numeric, numeric, text) IS
    'Internal: check a whole-number argument and its range (22023/22003 naming it).';


-- >>> sql/functions/list_terrain_sets.sql
-- heimdall.list_terrain_sets() -> table
--
-- Purpose: the registered terrain sets, for `heimdall-synth terrain list`.
-- Parameters: none.
-- Returns: one row per set, by name: name, resolution_arcsec (1 = SRTM1, 3 = SRTM3),
--   num_tiles, lat_min, lat_max, lon_min, lon_max (bounding box of the tiles, whole
--   degrees), bytes (all tiles), sha256 (the set's digest), datasets (how many datasets'
--   configs use the set), created_by, created_at.
-- Errors: none.
-- Locks: none (reads). Idempotent.
CREATE OR REPLACE FUNCTION heimdall.list_terrain_sets()
RETURNS TABLE (name text, resolution_arcsec integer, num_tiles integer, lat_min integer, lat_max integer,
               lon_min integer, lon_max integer, bytes bigint, sha256 text, datasets bigint,
               created_by text, created_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT s.name, s.resolution_arcsec, s.num_tiles, s.lat_min, s.lat_max, s.lon_min, s.lon_max, s.bytes,
           s.sha256,
           (SELECT count(*) FROM heimdall.synthetic_datasets d WHERE d.config -> 'propagation' ->> 'terrain' = s.name),
           s.created_by, s.created_at
      FROM heimdall.terrain_sets s
     ORDER BY s.name;
$$;

COMMENT ON FUNCTION heimdall.list_terrain_sets() IS
    'The registered terrain sets with their coverage and how many datasets use each.';


-- >>> sql/functions/lock_claimed_chunk.sql
-- heimdall.lock_claimed_chunk(chunk_id bigint, claim_token uuid, allow_done boolean)
--   -> heimdall.generation_chunks
--
-- Purpose: the one home of "lock the chunk a worker holds, or raise": every worker call
--   after claim_chunk (extend, release, fail, begin/complete commit) starts here.
-- Parameters: chunk_id, claim_token - what claim_chunk handed out; allow_done - return a
--   done chunk (idempotent commit) instead of raising claim lost.
-- Returns: the locked chunk row (state 'running' under this token, or 'done' if allowed).
-- Errors: P0002 unknown chunk; HS002 chunk abandoned (its indices were given back);
--   HS001 claim lost (the chunk is no longer running under this token: re-claimed by
--   another worker after the visibility timeout, paused, released, failed).
-- Locks: the chunk row (FOR UPDATE) until the caller's transaction ends.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.lock_claimed_chunk(chunk_id bigint, claim_token uuid,
                                                       allow_done boolean DEFAULT false)
RETURNS heimdall.generation_chunks
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    SELECT c.* INTO ch FROM heimdall.generation_chunks c WHERE c.id = lock_claimed_chunk.chunk_id FOR UPDATE;
    IF ch.id IS NULL THEN
        RAISE EXCEPTION 'chunk % does not exist (dataset deleted?)', coalesce(lock_claimed_chunk.chunk_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF ch.state = 'done' AND allow_done THEN
        RETURN ch;
    END IF;
    IF ch.state = 'abandoned' THEN
        RAISE EXCEPTION 'chunk % (dataset %, %..%) was abandoned: its indices were given back',
                ch.id, ch.dataset_id, ch.first_idx, ch.last_idx
            USING ERRCODE = 'HS002';
    END IF;
    IF ch.state <> 'running' OR ch.claim_token IS DISTINCT FROM lock_claimed_chunk.claim_token THEN
        RAISE EXCEPTION 'chunk % is not running under this claim (state %): claim lost', ch.id, ch.state
            USING ERRCODE = 'HS001',
                  HINT = 'another worker re-claimed it after the visibility timeout, or it was paused, released or failed';
    END IF;
    RETURN ch;
END;
$$;

COMMENT ON FUNCTION heimdall.lock_claimed_chunk(bigint, uuid, boolean) IS
    'Internal: lock the chunk a worker holds under its claim token, or raise (HS001/HS002/P0002).';


-- >>> sql/functions/mark_gc_done.sql
-- heimdall.mark_gc_done(dataset_id uuid) -> boolean
--
-- Purpose: `heimdall-synth gc` removed every object of a deleted dataset: record it in
--   heimdall.deleted_datasets (gc_done_at) so later runs skip it. Audited.
-- Parameters: dataset_id - a deleted dataset.
-- Returns: true if it was marked now, false if it was marked before (idempotent).
-- Errors: P0002 no deleted dataset with that id. Locks: its deleted_datasets row.
CREATE OR REPLACE FUNCTION heimdall.mark_gc_done(dataset_id uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_done timestamptz;
BEGIN
    SELECT x.gc_done_at INTO v_done FROM heimdall.deleted_datasets x
     WHERE x.dataset_id = mark_gc_done.dataset_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no deleted dataset %', coalesce(mark_gc_done.dataset_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_done IS NOT NULL THEN
        RETURN false;
    END IF;
    UPDATE heimdall.deleted_datasets x SET gc_done_at = now() WHERE x.dataset_id = mark_gc_done.dataset_id;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (mark_gc_done.dataset_id, 'gc_done', '{}');
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.mark_gc_done(uuid) IS
    'Admin: record that every object of a deleted dataset is gone (audited).';


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
-- Limits beyond each key's own range (heimdall.config_keys), so that one sample, one chunk
--   and one sample index stay bounded in memory and work:
--   * every number (nested ones included) must be exactly 0 or have a magnitude in
--     [2.2250738585072014e-308, 1.7976931348623157e308], the normal float64 range: the worker
--     reads numbers as float64, and a number outside it would read as 0.0 or infinity
--     (e.g. max_gdop 1e-400); JSON has no NaN or infinity (a string "NaN" is not a number);
--   * signal_mix weights: numbers in [0, 1000000] with a positive sum (the sum cannot overflow);
--   * bytes per sample = receivers (stations, or count_max) x IQ samples per receiver
--     (floor(sample_rate_hz * duration_ms / 1000), 64 .. 2,000,000) x 8 (complex64)
--     <= 67,108,864 (64 MiB);
--   * bytes per chunk object = chunk_size x bytes per sample <= 2,147,483,648 (2 GiB)
--     (the .npy header not counted); checked for every config, as it may be used for an
--     iq_raw dataset;
--   * max_attempts <= 10000 (its config_keys row): a config that never accepts then fails a
--     chunk after seconds, not days.
-- Propagation (revision 0002): "propagation" is an object whose given sub-keys override the
--   default object of its config_keys row (model "itm" | "free_space", terrain null = ITM area
--   mode or the name of a registered terrain set = point-to-point mode: the set must exist
--   and cover the receivers (fixed stations' box, or the random / hexagonal area) and the
--   transmitter's placement area (that box widened by outside_margin_km unless inside_ratio
--   is 1), and its digest is added as "terrain_sha256" (if given, it must match),
--   terrain_irregularity_m
--   0 .. 3000, surface_refractivity_n 250 .. 400, climate one of ITM's 7, ground_permittivity
--   > 1 .. 100, ground_conductivity_s_m > 0 .. 100, polarization, rx_siting / tx_siting,
--   nlos_excess_delay_mean_s 0 .. 1e-4); model "itm" needs frequency_mhz >= 20;
--   tx_height_agl_min_m <= tx_height_agl_max_m; every station (or a random / hexagonal
--   layout) gets height_agl_m (antenna above ground, 0.5 .. 3000 m, default 10) and an
--   antenna: {"pattern": "omni", "gain_dbi"} (default gain rx_antenna_gain_dbi, -20 .. 30)
--   or, fixed stations only, {"pattern": "directional", "gain_dbi", "azimuth_deg" [0, 360)
--   (required), "beamwidth_deg" 1 .. 360 (65), "front_to_back_db" 0 .. 60 (20)};
--   "tx_antenna" is an object merged like "propagation": body_loss_db 0 .. 40, tilt_max_deg
--   0 .. 90, xpd_los_db / xpd_nlos_db 0 .. 60. A stored config without "propagation" (made
--   before 0002) is never re-normalized and keeps its free-space path.
-- Receivers (revision 0003, issue 12): string keys (value_type 'string') must be one of
--   their values: "noise_environment" city | residential | rural | quiet_rural | none (ITU-R
--   P.372 man-made noise, network-wide), "tdoa_estimator" joint | coherent. Every fixed
--   station gets "noise_figure_db" (0 .. 40, default the network-wide noise_figure_db) and
--   "noise_environment" (default the network-wide one). A man-made environment other than
--   "none" (network-wide for random / hexagonal layouts, any station's for fixed ones)
--   needs frequency_mhz in P.372's 0.3 .. 250 MHz. A stored config without these keys keeps
--   one receiver noise figure for all sites and the coherent TDOA estimator.
-- Oscillators (revision 0003, issue 12): "tx_freq_error_ppm" (the transmitter's carrier
--   error, shared by all receivers) and "rx_lo_error_ppm" (each receiver's local oscillator)
--   are ppm of frequency_mhz; with freq_offset_max_hz (an extra per-receiver offset, Hz) the
--   largest offset must leave the FM signal inside the channel: 2 x ((tx_freq_error_ppm +
--   rx_lo_error_ppm) x frequency_mhz + freq_offset_max_hz) + 2 x (fm_deviation_hz + 3000)
--   <= bandwidth_hz (Carson's bandwidth, 3000 Hz the messages' audio band), bandwidth_hz <=
--   sample_rate_hz / 2. A stored config without them keeps one independent offset per
--   receiver (freq_offset_max_hz) and is never re-normalized, so never checked so.
-- Timing (revision 0003, issue 12 item 1): "timing" (network-wide; a fixed station may
--   override it) is "gps" (clock offset sigma 70 ns, sample-rate error 0.01 ppm), "ntp"
--   (3 ms, 1 ppm), "none" (0, 0) or {"clock_offset_std_s" 0 .. 0.05, "sample_rate_error_ppm"
--   0 .. 100}, both required; normalized to that object (every fixed station gets one). A
--   stored config without it keeps perfect clocks.
-- Splits (revision 0003, issue 13): "splits" is an object of fractions named train, val
--   and/or test (names left out get 0), each a number >= 0 and <= 1, summing to 1 within
--   1e-9; the result always holds all three. heimdall.split_of assigns samples from them.
--   A stored config without "splits" (made before 0003) uses 0.8 / 0.1 / 0.1.
-- ADC and messages (revision 0004, issue 12 items 4 and 6): "adc_bits" 8 .. 16,
--   "agc_target_dbfs" -60 .. 0, "agc_window_ms" 0.1 .. 10000 (the AGC's blocks; the loudest
--   sets the gain), "iq_dtype" ci16_le | complex64 (the caps above count 8
--   bytes per IQ sample for both); "tx_power_fluctuation_db" 0 .. 20, "tx_key_up_probability",
--   "tx_drop_probability", "ctcss_probability", "voice_min_active_fraction" 0 .. 1 (their
--   config_keys rows). A stored config without them keeps float IQ stored as complex64 and
--   generator 1.0.0's messages.
-- Errors: 22023 invalid_parameter_value, message naming the offending key(s) and the
--   limit, for an unknown key, a wrong type, a value out of range, a number a float64
--   cannot keep, a cap above exceeded or an inconsistent combination.
-- Locks: none. Idempotent: normalize_config(normalize_config(c)) = normalize_config(c).
CREATE OR REPLACE FUNCTION heimdall.normalize_config(config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
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
    bad         numeric;
    sample_bytes numeric;
    prop        jsonb;
    pk          record;
    ant         jsonb;
    tset        heimdall.terrain_sets;
    box         record;
    missing     text;
    n_missing   integer;
    lat_lo      float8;
    lat_hi      float8;
    lon_lo      float8;
    lon_hi      float8;
    dlat        float8;
    dlon        float8;
    max_off     numeric;
    carson      numeric;
    tk          record;
    tv          jsonb;
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
        -- Any number in the value (nested too) must survive the worker's float64 reading:
        -- exactly 0 or a normal float64 magnitude (else it reads as 0.0 or infinity).
        SELECT x::numeric INTO bad
          FROM jsonb_path_query(v, 'strict $.**') AS x
         WHERE jsonb_typeof(x) = 'number'
           AND (abs(x::numeric) > 1.7976931348623157e308
                OR (x::numeric <> 0 AND abs(x::numeric) < 2.2250738585072014e-308))
         LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'config key "%": % cannot be used: a float64 keeps magnitudes from 2.2250738585072014e-308 to 1.7976931348623157e308 (or exactly 0)',
                    k.key, btrim(to_char(bad, '9.999999EEEE'))
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
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
        ELSIF k.value_type = 'string' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                RAISE EXCEPTION 'config key "%": must be a string, got %', k.key, left(v::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);   -- values checked below
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
            IF jsonb_typeof(v) <> 'object' AND NOT (k.key = 'timing' AND jsonb_typeof(v) = 'string') THEN
                RAISE EXCEPTION 'config key "%": must be a JSON object, got %', k.key, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);   -- checked below
        END IF;
    END LOOP;

    -- string keys: their values (revision 0003)
    FOR pk IN SELECT * FROM (VALUES
            ('noise_environment', ARRAY['city', 'residential', 'rural', 'quiet_rural', 'none']),
            ('tdoa_estimator', ARRAY['joint', 'coherent']),
            ('iq_dtype', ARRAY['ci16_le', 'complex64'])) AS t(key, allowed) LOOP
        IF NOT (result ->> pk.key) = ANY (pk.allowed) THEN
            RAISE EXCEPTION 'config key "%": must be one of %, got %',
                    pk.key, array_to_string(pk.allowed, ', '), left((result -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    -- signal_mix: weights in [0, 1000000] of known kinds, not all zero (so their sum is
    -- positive and finite). A given mix replaces the default entirely (kinds it omits get
    -- weight 0).
    mix := result -> 'signal_mix';
    FOR mix_key IN SELECT jsonb_object_keys(mix) LOOP
        IF mix_key NOT IN ('voice', 'tone', 'dtmf', 'audio') THEN
            RAISE EXCEPTION 'config key "signal_mix": unknown kind "%"', mix_key
                USING ERRCODE = 'invalid_parameter_value', HINT = 'kinds: voice, tone, dtmf, audio';
        END IF;
        IF jsonb_typeof(mix -> mix_key) <> 'number' OR (mix ->> mix_key)::numeric < 0
           OR (mix ->> mix_key)::numeric > 1000000 THEN
            RAISE EXCEPTION 'config key "signal_mix": weight of "%" must be a number >= 0 and <= 1000000, got %',
                    mix_key, CASE WHEN jsonb_typeof(mix -> mix_key) = 'number'
                                   AND abs((mix ->> mix_key)::numeric) >= 1e15
                                  THEN btrim(to_char((mix ->> mix_key)::numeric, '9.999999EEEE'))
                                  ELSE (mix -> mix_key)::text END
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

    -- splits (revision 0003, issue 13): fractions of train / val / test, fixed at creation
    -- (heimdall.split_of). A given object replaces the default; names it omits get 0.
    v := result -> 'splits';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(v) key WHERE key NOT IN ('train', 'val', 'test');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "splits": unknown split(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value', HINT = 'splits: train, val, test';
    END IF;
    FOR mix_key IN SELECT jsonb_object_keys(v) LOOP
        IF jsonb_typeof(v -> mix_key) <> 'number' OR (v ->> mix_key)::numeric < 0
           OR (v ->> mix_key)::numeric > 1 THEN
            RAISE EXCEPTION 'config key "splits": fraction of "%" must be a number >= 0 and <= 1, got %',
                    mix_key, left((v -> mix_key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    v := jsonb_build_object('train', coalesce((v ->> 'train')::numeric, 0),
                            'val', coalesce((v ->> 'val')::numeric, 0),
                            'test', coalesce((v ->> 'test')::numeric, 0));
    IF abs((v ->> 'train')::numeric + (v ->> 'val')::numeric + (v ->> 'test')::numeric - 1) > 1e-9 THEN
        RAISE EXCEPTION 'config key "splits": fractions must sum to 1 (within 1e-9), got train % + val % + test % = %',
                v ->> 'train', v ->> 'val', v ->> 'test',
                (v ->> 'train')::numeric + (v ->> 'val')::numeric + (v ->> 'test')::numeric
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    result := jsonb_set(result, '{splits}', v);

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
            WHERE key NOT IN ('id', 'name', 'lat', 'lon', 'alt_m', 'height_agl_m', 'antenna', 'noise_figure_db',
                              'noise_environment', 'timing');
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION 'config key "receivers": unknown station key(s) %', unknown
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'station keys: id, name, lat, lon, alt_m, height_agl_m, antenna, noise_figure_db, noise_environment, timing';
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
            -- antenna height above ground (propagation; ITM's limits 0.5 .. 3000 m)
            IF st ? 'height_agl_m' AND (jsonb_typeof(st -> 'height_agl_m') <> 'number'
                                       OR (st ->> 'height_agl_m')::numeric NOT BETWEEN 0.5 AND 3000) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" height_agl_m must be a number in [0.5, 3000]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- receiving antenna (propagation): omni of gain rx_antenna_gain_dbi by default, or
            -- directional (azimuth_deg required; beamwidth_deg 65, front_to_back_db 20 by default)
            ant := coalesce(st -> 'antenna', '{}');
            IF jsonb_typeof(ant) <> 'object' THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna must be an object', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(ant) key
            WHERE key NOT IN ('pattern', 'gain_dbi', 'azimuth_deg', 'beamwidth_deg', 'front_to_back_db');
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna: unknown key(s) %', st ->> 'id', unknown
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'antenna keys: pattern, gain_dbi, azimuth_deg, beamwidth_deg, front_to_back_db';
            END IF;
            ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', result -> 'rx_antenna_gain_dbi') || ant;
            IF jsonb_typeof(ant -> 'pattern') IS DISTINCT FROM 'string' OR (ant ->> 'pattern') NOT IN ('omni', 'directional') THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna pattern must be "omni" or "directional", got %',
                        st ->> 'id', left((ant -> 'pattern')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF ant ->> 'pattern' = 'omni' THEN
                IF ant ?| ARRAY['azimuth_deg', 'beamwidth_deg', 'front_to_back_db'] THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna: azimuth_deg, beamwidth_deg and front_to_back_db need "pattern": "directional"', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', ant -> 'gain_dbi');
            ELSE
                ant := jsonb_build_object('beamwidth_deg', 65, 'front_to_back_db', 20) || ant;
                IF jsonb_typeof(ant -> 'azimuth_deg') IS DISTINCT FROM 'number'
                   OR (ant ->> 'azimuth_deg')::numeric < 0 OR (ant ->> 'azimuth_deg')::numeric >= 360 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" directional antenna needs azimuth_deg, a number in [0, 360)', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF jsonb_typeof(ant -> 'beamwidth_deg') <> 'number' OR (ant ->> 'beamwidth_deg')::numeric NOT BETWEEN 1 AND 360 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna beamwidth_deg must be a number in [1, 360]', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF jsonb_typeof(ant -> 'front_to_back_db') <> 'number' OR (ant ->> 'front_to_back_db')::numeric NOT BETWEEN 0 AND 60 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna front_to_back_db must be a number in [0, 60]', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END IF;
            IF jsonb_typeof(ant -> 'gain_dbi') <> 'number' OR (ant ->> 'gain_dbi')::numeric NOT BETWEEN -20 AND 30 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna gain_dbi must be a number in [-20, 30]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- the station's receiver noise figure and man-made noise environment (revision 0003)
            IF st ? 'noise_figure_db' AND (jsonb_typeof(st -> 'noise_figure_db') <> 'number'
                                          OR (st ->> 'noise_figure_db')::numeric NOT BETWEEN 0 AND 40) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" noise_figure_db must be a number in [0, 40], got %',
                        st ->> 'id', left((st -> 'noise_figure_db')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'noise_environment' AND (jsonb_typeof(st -> 'noise_environment') <> 'string'
                    OR (st ->> 'noise_environment') NOT IN ('city', 'residential', 'rural', 'quiet_rural', 'none')) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" noise_environment must be one of city, residential, rural, quiet_rural, none, got %',
                        st ->> 'id', left((st -> 'noise_environment')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'name' AND jsonb_typeof(st -> 'name') <> 'string' THEN
                RAISE EXCEPTION 'config key "receivers": station "%" name must be a string', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            stations := stations || jsonb_build_array(jsonb_build_object(
                'id', st -> 'id', 'name', coalesce(st -> 'name', st -> 'id'),
                'lat', st -> 'lat', 'lon', st -> 'lon', 'alt_m', coalesce(st -> 'alt_m', '0'),
                'height_agl_m', coalesce(st -> 'height_agl_m', '10'), 'antenna', ant,
                'noise_figure_db', coalesce(st -> 'noise_figure_db', result -> 'noise_figure_db'),
                'noise_environment', coalesce(st -> 'noise_environment', result -> 'noise_environment'),
                'timing', coalesce(st -> 'timing', result -> 'timing')));
        END LOOP;
        result := jsonb_set(result, '{receivers}', jsonb_build_object('mode', 'fixed', 'stations', stations));
        rx_max := jsonb_array_length(stations);
    ELSE
        SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(v) key
        WHERE key NOT IN ('mode', 'count_min', 'count_max', 'area', 'alt_m', 'height_agl_m', 'antenna');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "receivers": unknown key(s) % for mode "%"', unknown, rx_mode
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- Placement defaults: 4..8 receivers over the default network's area.
        v := jsonb_build_object('mode', rx_mode, 'count_min', 4, 'count_max', 8, 'alt_m', 200, 'height_agl_m', 10,
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
        IF jsonb_typeof(v -> 'height_agl_m') <> 'number' OR (v ->> 'height_agl_m')::numeric NOT BETWEEN 0.5 AND 3000 THEN
            RAISE EXCEPTION 'config key "receivers": height_agl_m must be a number in [0.5, 3000]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- one omni antenna for every receiver of the layout (directional ones need fixed stations)
        ant := v -> 'antenna';
        IF ant IS NOT NULL AND (jsonb_typeof(ant) <> 'object'
                                OR EXISTS (SELECT 1 FROM jsonb_object_keys(ant) key WHERE key NOT IN ('pattern', 'gain_dbi'))
                                OR coalesce(ant ->> 'pattern', 'omni') <> 'omni') THEN
            RAISE EXCEPTION 'config key "receivers": antenna of a % layout must be {"pattern": "omni", "gain_dbi": number}, got %',
                    rx_mode, left(ant::text, 100)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'directional antennas need fixed stations';
        END IF;
        ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', result -> 'rx_antenna_gain_dbi') || coalesce(ant, '{}');
        IF jsonb_typeof(ant -> 'gain_dbi') <> 'number' OR (ant ->> 'gain_dbi')::numeric NOT BETWEEN -20 AND 30 THEN
            RAISE EXCEPTION 'config key "receivers": antenna gain_dbi must be a number in [-20, 30]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v := jsonb_set(v, '{antenna}', ant);
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

    -- timing (revision 0003): the network-wide value and each fixed station's (its own or
    -- the network-wide one) become {"clock_offset_std_s", "sample_rate_error_ppm"}.
    FOR tk IN
        SELECT 'config key "timing"' AS what, result -> 'timing' AS val, NULL::integer AS idx
        UNION ALL
        SELECT format('config key "receivers": station "%s" timing', e.s ->> 'id'), e.s -> 'timing', (e.ord - 1)::integer
          FROM jsonb_array_elements(CASE WHEN result -> 'receivers' ->> 'mode' = 'fixed'
                                         THEN result -> 'receivers' -> 'stations' ELSE '[]' END)
               WITH ORDINALITY AS e(s, ord)
    LOOP
        tv := tk.val;
        IF jsonb_typeof(tv) = 'string' THEN
            tv := CASE tv #>> '{}'
                WHEN 'gps' THEN '{"clock_offset_std_s": 0.00000007, "sample_rate_error_ppm": 0.01}'
                WHEN 'ntp' THEN '{"clock_offset_std_s": 0.003, "sample_rate_error_ppm": 1}'
                WHEN 'none' THEN '{"clock_offset_std_s": 0, "sample_rate_error_ppm": 0}' END;
            IF tv IS NULL THEN
                RAISE EXCEPTION '%: must be "gps", "ntp", "none" or an object, got %', tk.what, left(tk.val::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF jsonb_typeof(tv) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION '%: must be "gps", "ntp", "none" or an object, got %', tk.what, left(tv::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown FROM jsonb_object_keys(tv) key
         WHERE key NOT IN ('clock_offset_std_s', 'sample_rate_error_ppm');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION '%: unknown key(s) %', tk.what, unknown
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'timing keys: clock_offset_std_s, sample_rate_error_ppm';
        END IF;
        IF jsonb_typeof(tv -> 'clock_offset_std_s') IS DISTINCT FROM 'number'
           OR (tv ->> 'clock_offset_std_s')::numeric NOT BETWEEN 0 AND 0.05 THEN
            RAISE EXCEPTION '%: clock_offset_std_s must be a number in [0, 0.05] s, got %', tk.what,
                    coalesce(left((tv -> 'clock_offset_std_s')::text, 100), 'nothing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(tv -> 'sample_rate_error_ppm') IS DISTINCT FROM 'number'
           OR (tv ->> 'sample_rate_error_ppm')::numeric NOT BETWEEN 0 AND 100 THEN
            RAISE EXCEPTION '%: sample_rate_error_ppm must be a number in [0, 100] ppm, got %', tk.what,
                    coalesce(left((tv -> 'sample_rate_error_ppm')::text, 100), 'nothing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF tk.idx IS NULL THEN
            result := jsonb_set(result, '{timing}', tv);
        ELSE
            result := jsonb_set(result, ARRAY['receivers', 'stations', tk.idx::text, 'timing'], tv);
        END IF;
    END LOOP;

    -- propagation: the given sub-keys override the default object of its config_keys row,
    -- whose keys are also the valid sub-keys. Enumerations are ITM's (worker/rf/itm.py);
    -- numeric ranges: ITM's own limits (N_s 250 .. 400) or physical ones.
    SELECT ck.default_value INTO prop FROM heimdall.config_keys ck WHERE ck.key = 'propagation';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(result -> 'propagation') key WHERE NOT prop ? key AND key <> 'terrain_sha256';
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "propagation": unknown key(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'keys: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM jsonb_object_keys(prop) key);
    END IF;
    prop := prop || (result -> 'propagation');
    FOR pk IN SELECT * FROM (VALUES
            ('model', ARRAY['itm', 'free_space']),
            ('climate', ARRAY['equatorial', 'continental_subtropical', 'maritime_subtropical', 'desert',
                              'continental_temperate', 'maritime_temperate_land', 'maritime_temperate_sea']),
            ('polarization', ARRAY['horizontal', 'vertical']),
            ('rx_siting', ARRAY['random', 'careful', 'very_careful']),
            ('tx_siting', ARRAY['random', 'careful', 'very_careful'])) AS t(key, allowed) LOOP
        IF jsonb_typeof(prop -> pk.key) IS DISTINCT FROM 'string' OR NOT (prop ->> pk.key) = ANY (pk.allowed) THEN
            RAISE EXCEPTION 'config key "propagation": "%" must be one of %, got %',
                    pk.key, array_to_string(pk.allowed, ', '), left((prop -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOR pk IN SELECT * FROM (VALUES
            ('terrain_irregularity_m', 0::numeric, false, 3000::numeric),
            ('surface_refractivity_n', 250, false, 400),
            ('ground_permittivity', 1, true, 100),
            ('ground_conductivity_s_m', 0, true, 100),
            ('nlos_excess_delay_mean_s', 0, false, 0.0001)) AS t(key, lo, lo_open, hi) LOOP
        IF jsonb_typeof(prop -> pk.key) IS DISTINCT FROM 'number'
           OR (prop ->> pk.key)::numeric < pk.lo OR (pk.lo_open AND (prop ->> pk.key)::numeric = pk.lo)
           OR (prop ->> pk.key)::numeric > pk.hi THEN
            RAISE EXCEPTION 'config key "propagation": "%" must be a number % % and <= %, got %',
                    pk.key, CASE WHEN pk.lo_open THEN '>' ELSE '>=' END, pk.lo, pk.hi, left((prop -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    -- terrain: null (ITM area mode) or the name of a registered terrain set (point-to-point
    -- mode, issue 11 item 3). The set's digest is added as "terrain_sha256" (if given, it
    -- must be that digest: a config pins the set's content), and the set must cover the
    -- receivers and the transmitter's placement area.
    IF jsonb_typeof(prop -> 'terrain') = 'string' THEN
        SELECT * INTO tset FROM heimdall.terrain_sets s WHERE s.name = prop ->> 'terrain';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'config key "propagation": "terrain": there is no terrain set named %',
                    left((prop -> 'terrain')::text, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = coalesce('terrain sets: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.name)
                                                             FROM heimdall.terrain_sets s),
                                      'no terrain set is registered')
                             || '; import one with: heimdall-synth terrain import NAME DIR';
        END IF;
        IF prop ? 'terrain_sha256' AND prop -> 'terrain_sha256' IS DISTINCT FROM to_jsonb(tset.sha256) THEN
            RAISE EXCEPTION 'config key "propagation": "terrain_sha256" % is not the digest of terrain set "%" (%)',
                    left((prop -> 'terrain_sha256')::text, 100), tset.name, tset.sha256
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'the set of that name in this database holds other tiles; leave terrain_sha256 out to take them';
        END IF;
        prop := prop || jsonb_build_object('terrain_sha256', tset.sha256);
        -- The receivers' box (fixed stations) or area (random / hexagonal), then the
        -- transmitter's placement area: that box widened by outside_margin_km, as
        -- worker/rf/geometry.place_transmitter draws it (dlat = margin / metres per degree on
        -- the sphere of radius 6371008.8 m, dlon = dlat / cos(mid latitude); for an area the
        -- widest case, its latitude farthest from the equator).
        IF rx_mode = 'fixed' THEN
            SELECT min((s ->> 'lat')::float8), max((s ->> 'lat')::float8), min((s ->> 'lon')::float8),
                   max((s ->> 'lon')::float8)
              INTO lat_lo, lat_hi, lon_lo, lon_hi
              FROM jsonb_array_elements(result -> 'receivers' -> 'stations') s;
            dlon := cos(radians(0.5 * (lat_lo + lat_hi)));
        ELSE
            lat_lo := (result #>> '{receivers,area,lat_min}')::float8;
            lat_hi := (result #>> '{receivers,area,lat_max}')::float8;
            lon_lo := (result #>> '{receivers,area,lon_min}')::float8;
            lon_hi := (result #>> '{receivers,area,lon_max}')::float8;
            dlon := cos(radians(greatest(abs(lat_lo), abs(lat_hi))));
        END IF;
        dlat := 0;
        IF (result ->> 'inside_ratio')::numeric < 1 AND (result ->> 'outside_margin_km')::numeric > 0 THEN
            dlat := (result ->> 'outside_margin_km')::float8 * 1000.0 / (6371008.8 * pi() / 180.0);
        END IF;
        dlon := dlat / greatest(dlon, 1e-6);
        FOR box IN SELECT * FROM (VALUES
                ('receivers', lat_lo, lat_hi, lon_lo, lon_hi),
                ('outside_margin_km', lat_lo - dlat, lat_hi + dlat, lon_lo - dlon, lon_hi + dlon)) AS v(key, a, b, c, d)
        LOOP
            -- whole-degree cells of the box (longitudes wrapped), those the set lacks
            SELECT string_agg(tile, ', ' ORDER BY tile) FILTER (WHERE rn <= 20), count(*)
              INTO missing, n_missing
              FROM (SELECT row_number() OVER (ORDER BY tile) AS rn, tile
                      FROM (SELECT format('%s%s%s%s', CASE WHEN la >= 0 THEN 'N' ELSE 'S' END, lpad(abs(la)::text, 2, '0'),
                                          CASE WHEN lo >= 0 THEN 'E' ELSE 'W' END, lpad(abs(lo)::text, 3, '0')) AS tile
                              FROM generate_series(greatest(floor(box.a)::int, -90),
                                                   least(greatest(floor(box.a)::int, ceil(box.b)::int - 1), 89)) la,
                                   generate_series(floor(box.c)::int, greatest(floor(box.c)::int, ceil(box.d)::int - 1)) lo_raw,
                                   LATERAL (SELECT ((lo_raw + 180) % 360 + 360) % 360 - 180 AS lo) w
                             WHERE NOT EXISTS (SELECT 1 FROM heimdall.terrain_tiles t
                                                WHERE t.set_name = tset.name AND t.lat = la AND t.lon = w.lo)) c) m;
            IF n_missing > 0 AND box.key = 'receivers' THEN
                RAISE EXCEPTION 'config key "receivers": terrain set "%" does not cover the receivers (lat % .. %, lon % .. %): it lacks tile(s) %',
                        tset.name, round(box.a::numeric, 4), round(box.b::numeric, 4), round(box.c::numeric, 4),
                        round(box.d::numeric, 4),
                        missing || CASE WHEN n_missing > 20 THEN format(' ... (%s in all)', n_missing) ELSE '' END
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'import a terrain set with these tiles (over the sea: a tile of zeros), or move the receivers';
            ELSIF n_missing > 0 THEN
                RAISE EXCEPTION 'config key "outside_margin_km": terrain set "%" does not cover the transmitter placement area (lat % .. %, lon % .. %: the receivers'' box widened by outside_margin_km): it lacks tile(s) %',
                        tset.name, round(box.a::numeric, 4), round(box.b::numeric, 4), round(box.c::numeric, 4),
                        round(box.d::numeric, 4),
                        missing || CASE WHEN n_missing > 20 THEN format(' ... (%s in all)', n_missing) ELSE '' END
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'import a terrain set with these tiles (over the sea: a tile of zeros), lower outside_margin_km, or set inside_ratio to 1';
            END IF;
        END LOOP;
    ELSIF jsonb_typeof(prop -> 'terrain') <> 'null' THEN
        RAISE EXCEPTION 'config key "propagation": "terrain" must be null (area mode) or the name of a terrain set, got %',
                left((prop -> 'terrain')::text, 100)
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF prop ? 'terrain_sha256' THEN
        RAISE EXCEPTION 'config key "propagation": "terrain_sha256" belongs to a terrain set: without "terrain" leave it out'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prop ->> 'model' = 'itm' AND (result ->> 'frequency_mhz')::numeric < 20 THEN
        RAISE EXCEPTION 'config key "frequency_mhz": propagation model "itm" needs 20 .. 20000 MHz, got %',
                result ->> 'frequency_mhz'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'or "propagation": {"model": "free_space"}';
    END IF;
    result := jsonb_set(result, '{propagation}', prop);
    -- tx_antenna: given sub-keys override the default object of its config_keys row
    SELECT ck.default_value INTO ant FROM heimdall.config_keys ck WHERE ck.key = 'tx_antenna';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(result -> 'tx_antenna') key WHERE NOT ant ? key;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "tx_antenna": unknown key(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'keys: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM jsonb_object_keys(ant) key);
    END IF;
    ant := ant || (result -> 'tx_antenna');
    FOR pk IN SELECT * FROM (VALUES ('body_loss_db', 40::numeric), ('tilt_max_deg', 90), ('xpd_los_db', 60),
                                    ('xpd_nlos_db', 60)) AS t(key, hi) LOOP
        IF jsonb_typeof(ant -> pk.key) IS DISTINCT FROM 'number' OR (ant ->> pk.key)::numeric < 0
           OR (ant ->> pk.key)::numeric > pk.hi THEN
            RAISE EXCEPTION 'config key "tx_antenna": "%" must be a number >= 0 and <= %, got %',
                    pk.key, pk.hi, left((ant -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    result := jsonb_set(result, '{tx_antenna}', ant);
    IF (result ->> 'tx_height_agl_min_m')::numeric > (result ->> 'tx_height_agl_max_m')::numeric THEN
        RAISE EXCEPTION 'config key "tx_height_agl_max_m": must be >= tx_height_agl_min_m (% < %)',
                result ->> 'tx_height_agl_max_m', result ->> 'tx_height_agl_min_m'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- man-made noise (ITU-R P.372) is defined for 0.3 .. 250 MHz
    IF (result ->> 'frequency_mhz')::numeric NOT BETWEEN 0.3 AND 250 THEN
        unknown := NULL;
        IF rx_mode = 'fixed' THEN
            SELECT string_agg(format('"%s" (%s)', s ->> 'id', s ->> 'noise_environment'), ', ') INTO unknown
              FROM jsonb_array_elements(result -> 'receivers' -> 'stations') s
             WHERE s ->> 'noise_environment' <> 'none';
        ELSIF result ->> 'noise_environment' <> 'none' THEN
            unknown := format('all (%s)', result ->> 'noise_environment');
        END IF;
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "noise_environment": ITU-R P.372 man-made noise is defined for 0.3 .. 250 MHz, frequency_mhz is %: receivers % need "none"',
                    result ->> 'frequency_mhz', unknown
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'set "noise_environment": "none" (and the stations'' overrides) and put the site noise into noise_figure_db';
        END IF;
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
    -- memory per sample and per chunk object (see the header)
    sample_bytes := rx_max * iq_len * 8;
    IF sample_bytes > 67108864 THEN
        RAISE EXCEPTION 'config keys "receivers", "sample_rate_hz", "duration_ms": % receivers x % IQ samples x 8 bytes = % bytes per sample, must be <= 67108864 (64 MiB)',
                rx_max, iq_len, sample_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'fewer receivers, a lower sample_rate_hz or a shorter duration_ms';
    END IF;
    IF (result ->> 'chunk_size')::numeric * sample_bytes > 2147483648 THEN
        RAISE EXCEPTION 'config key "chunk_size": % samples x % bytes per sample = % bytes per chunk object, must be <= 2147483648 (2 GiB): chunk_size at most % with these receivers, sample_rate_hz and duration_ms',
                result ->> 'chunk_size', sample_bytes, (result ->> 'chunk_size')::numeric * sample_bytes,
                floor(2147483648 / sample_bytes)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (result ->> 'min_receivers')::int > rx_max THEN
        RAISE EXCEPTION 'config key "min_receivers": % exceeds the % receivers of the layout', result ->> 'min_receivers', rx_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Oscillators (revision 0003, issue 12): the largest carrier offset a receiver can see
    -- (transmitter + its local oscillator, ppm of the carrier, + freq_offset_max_hz) plus
    -- half the Carson bandwidth 2 (fm_deviation_hz + 3000 Hz of audio) must stay inside
    -- the channel (|f| <= bandwidth_hz / 2, itself <= sample_rate_hz / 2, checked above).
    -- A config stored without these keys is never re-normalized.
    max_off := ((result ->> 'tx_freq_error_ppm')::numeric + (result ->> 'rx_lo_error_ppm')::numeric)
               * (result ->> 'frequency_mhz')::numeric + (result ->> 'freq_offset_max_hz')::numeric;
    carson := 2 * ((result ->> 'fm_deviation_hz')::numeric + 3000);
    IF 2 * max_off + carson > (result ->> 'bandwidth_hz')::numeric THEN
        RAISE EXCEPTION 'config keys "tx_freq_error_ppm", "rx_lo_error_ppm", "freq_offset_max_hz", "fm_deviation_hz", "bandwidth_hz": the signal does not fit the channel: largest carrier offset (% + %) ppm x % MHz + % Hz = % Hz, plus half the Carson bandwidth 2 x (fm_deviation_hz % + 3000 Hz audio) / 2 = % Hz, exceeds bandwidth_hz / 2 = % Hz',
                result ->> 'tx_freq_error_ppm', result ->> 'rx_lo_error_ppm', result ->> 'frequency_mhz',
                result ->> 'freq_offset_max_hz', round(max_off, 1), result ->> 'fm_deviation_hz', carson / 2,
                (result ->> 'bandwidth_hz')::numeric / 2
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('largest offset allowed: %s Hz; lower tx_freq_error_ppm / rx_lo_error_ppm / freq_offset_max_hz or fm_deviation_hz, or raise bandwidth_hz (<= sample_rate_hz / 2)',
                                greatest(round(((result ->> 'bandwidth_hz')::numeric - carson) / 2, 1), 0));
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


-- >>> sql/functions/prepare_staging.sql
-- heimdall.prepare_staging() -> void
--
-- Purpose: make this session's staging tables ready and empty. Workers have no write
--   privilege on the sample tables: they COPY a chunk's rows into
--     pg_temp.heimdall_stage_features   (columns: staged_columns('heimdall.measurement_features'))
--     pg_temp.heimdall_stage_iq         (columns: staged_columns('heimdall.synthetic_iq_samples'))
--   and complete_chunk moves them after checking every row lies in the claimed chunk.
--   The tables are created here, by the function owner, ON COMMIT DELETE ROWS, with
--   INSERT (only) granted to heimdall_worker; check_staging refuses any relation of
--   that name heimdall did not create. A table whose columns no longer match (a
--   migration changed the sample table) is rebuilt.
-- Errors: 42501 (check_staging) a staging relation exists that heimdall did not create.
-- Internal: called by begin_chunk_commit; executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.prepare_staging()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    t       record;
    v_state text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('heimdall_stage_features', 'heimdall.measurement_features'::regclass),
                                   ('heimdall_stage_iq', 'heimdall.synthetic_iq_samples'::regclass)) AS x(stage, target)
    LOOP
        v_state := heimdall.check_staging(t.stage, t.target);
        IF v_state = 'ok' THEN
            EXECUTE format('DELETE FROM pg_temp.%I', t.stage);
            CONTINUE;
        END IF;
        IF v_state = 'stale' THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t.stage);
        END IF;
        -- LIKE keeps the types, NOT NULLs and defaults (attempts, rejections...); the
        -- columns the database fills itself (identity, created_at) are dropped.
        EXECUTE format('CREATE TEMP TABLE %I (LIKE %s INCLUDING DEFAULTS) ON COMMIT DELETE ROWS', t.stage, t.target);
        EXECUTE (SELECT string_agg(format('ALTER TABLE pg_temp.%I DROP COLUMN %I', t.stage, a.attname), '; ')
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t.target AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attname::text <> ALL (heimdall.staged_columns(t.target)));
        EXECUTE format('GRANT INSERT ON pg_temp.%I TO heimdall_worker', t.stage);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION heimdall.prepare_staging() IS
    'Internal: create/empty this session''s staging tables (owner-made, INSERT for workers).';


-- >>> sql/functions/queue_messages.sql
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


-- >>> sql/functions/queue_name.sql
-- heimdall.queue_name() -> text
--
-- Purpose: the one home of the pgmq queue name that carries one message per pending chunk.
--   Every function that talks to the queue calls this; sql/queue.sql creates it.
-- Returns: 'heimdall_chunks'. Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.queue_name()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$ SELECT 'heimdall_chunks'::text $$;

COMMENT ON FUNCTION heimdall.queue_name() IS
    'Internal: the pgmq queue of chunk messages (single home of its name).';


-- >>> sql/functions/record_baseline_run.sql
-- heimdall.record_baseline_run(dataset_id uuid, first_idx numeric, last_idx numeric,
--                              solver_version text, figures jsonb) -> bigint
--
-- Purpose: record one run of the classical baseline localizer (`heimdall-synth baseline`,
--   issue 13) over samples first_idx..last_idx of a dataset: the figures it reached (the
--   number a localization model must beat), with the dataset's generator version (taken
--   from the dataset, not from the caller) and the solver's version. The dataset card
--   quotes the latest run.
-- Parameters: dataset_id; first_idx, last_idx - inclusive sample indices, whole numbers,
--   0 <= first_idx <= last_idx <= 2147483646, every index of which has a feature row (the
--   run scored committed samples only); solver_version - 1 to 100 characters without
--   control characters (heimdall_synth.baseline.SOLVER_VERSION); figures - a JSON object of
--   at most 1 MB (heimdall_synth.baseline.summarize: fraction_solved, status counts,
--   overall / by_gdop / by_receivers CEP50, CEP90, RMSE in metres, plus the run's settings).
-- Returns: the new run's id (heimdall.baseline_runs.id).
-- Errors: P0002 no_data_found - unknown dataset; 22023 invalid_parameter_value - a bad
--   index (not a whole number, negative, last before first), a range with uncommitted
--   samples (the message gives how many exist), a bad solver_version, figures not an
--   object or larger than 1 MB.
-- Locks: none beyond the key-share lock the foreign key takes on the dataset row (a
--   concurrent delete_dataset waits for this transaction).
-- Idempotent: no; every call records a new run (runs are a history).
CREATE OR REPLACE FUNCTION heimdall.record_baseline_run(dataset_id uuid, first_idx numeric, last_idx numeric,
                                                        solver_version text, figures jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d        heimdall.synthetic_datasets;
    v_first  bigint;
    v_last   bigint;
    v_rows   bigint;
    v_id     bigint;
BEGIN
    d := heimdall.dataset_row(record_baseline_run.dataset_id);
    v_first := heimdall.integer_arg(record_baseline_run.first_idx, 'first_idx', 0, 2147483646);
    v_last := heimdall.integer_arg(record_baseline_run.last_idx, 'last_idx', 0, 2147483646);
    IF v_last < v_first THEN
        RAISE EXCEPTION 'last_idx (%) must be >= first_idx (%)', v_last, v_first
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF record_baseline_run.solver_version IS NULL OR length(record_baseline_run.solver_version) NOT BETWEEN 1 AND 100
       OR record_baseline_run.solver_version ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION 'solver_version must be 1 to 100 characters without control characters, got %',
                coalesce(quote_literal(left(record_baseline_run.solver_version, 120)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF record_baseline_run.figures IS NULL OR jsonb_typeof(record_baseline_run.figures) <> 'object' THEN
        RAISE EXCEPTION 'figures must be a JSON object, got %', coalesce(left(record_baseline_run.figures::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_column_size(record_baseline_run.figures) > 1048576 THEN
        RAISE EXCEPTION 'figures must be at most 1 MB, got % bytes', pg_column_size(record_baseline_run.figures)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) INTO v_rows FROM heimdall.measurement_features f
     WHERE f.dataset_id = d.id AND f.sample_idx BETWEEN v_first AND v_last;
    IF v_rows <> v_last - v_first + 1 THEN
        RAISE EXCEPTION 'samples %..% of dataset % are not all committed: % of % exist', v_first, v_last, d.name,
                v_rows, v_last - v_first + 1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO heimdall.baseline_runs (dataset_id, first_idx, last_idx, generator_version, solver_version, figures)
    VALUES (d.id, v_first, v_last, d.generator_version, record_baseline_run.solver_version,
            record_baseline_run.figures)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.record_baseline_run(uuid, numeric, numeric, text, jsonb) IS
    'Admin: record a baseline localization run and its figures (errors: P0002, 22023).';


-- >>> sql/functions/record_object_deletion.sql
-- heimdall.record_object_deletion(dataset_id uuid, action text, keys text[], detail jsonb) -> bigint
--
-- Purpose: the audit record of object-store deletions made by `heimdall-synth gc` and by
--   `repair --apply` (orphans). The tools call it BEFORE deleting, so a deletion is never
--   left unaudited (a refused call stops the tool before anything is deleted).
-- Parameters: dataset_id - the dataset the objects belong to (NULL: several / deleted
--   datasets); action - 'gc' or 'delete_orphan'; keys - the object keys (first 1000 kept
--   in the record, with their total count); detail - extra facts (grace period, ages).
-- Returns: the audit_log id.
-- Errors: 22023 unknown action, no keys, or detail not a JSON object.
-- Locks: none (one insert). Not idempotent: each call is one audit row.
CREATE OR REPLACE FUNCTION heimdall.record_object_deletion(dataset_id uuid, action text, keys text[],
                                                           detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF action IS NULL OR action NOT IN ('gc', 'delete_orphan') THEN
        RAISE EXCEPTION 'action must be ''gc'' or ''delete_orphan'', got %', coalesce(quote_literal(action), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RAISE EXCEPTION 'keys must name at least one object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(coalesce(detail, '{}')) <> 'object' THEN
        RAISE EXCEPTION 'detail must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (record_object_deletion.dataset_id, record_object_deletion.action,
            coalesce(detail, '{}') || jsonb_build_object('removed', cardinality(keys),
                                                         'keys', to_jsonb(keys[1:1000])))
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.record_object_deletion(uuid, text, text[], jsonb) IS
    'Admin: audit object-store deletions (gc, orphans) before they happen.';


-- >>> sql/functions/register_terrain_set.sql
-- heimdall.register_terrain_set(name text, tiles jsonb) -> jsonb
--
-- Purpose: register a terrain set (SRTM .hgt elevation tiles for ITM point-to-point mode,
--   issue 11) whose tiles are already in the object store (`heimdall-synth terrain import
--   NAME DIR` uploads them, then calls this). A set is immutable: the same name can only
--   ever mean the same tiles. The set's digest, sha256 of the lines "<tile> <tile sha256>"
--   sorted by tile and joined by "\n" (no trailing newline), is its identity: a config that
--   uses the set carries it (normalize_config), so a set is part of a dataset's identity.
-- Parameters: name - 1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a letter or a
--   digit (it is part of object keys and file names); tiles - a JSON array of 1 to 65,000
--   objects {"tile": SRTM cell name [NS]dd[EW]ddd (N45E007: latitude 45..46, longitude 7..8;
--   S/W negative; latitude 0..89 N / 1..90 S, longitude 0..179 E / 1..180 W), "sha256": 64
--   lower-case hex digits of the file's bytes, "bytes": 25934402 (SRTM1, 3601 x 3601) or
--   2884802 (SRTM3, 1201 x 1201), the same for every tile, "object_key": where the bytes
--   are in the object store (1 .. 1024 characters, no control characters)}, every cell once.
-- Returns: {"name", "sha256", "resolution_arcsec", "num_tiles", "lat_min", "lat_max",
--   "lon_min", "lon_max", "bytes", "created": true} for a new set; the existing set with
--   "created": false when the same tiles (same digest) are registered again.
-- Errors: 22023 invalid_parameter_value - a bad name, tiles not an array of such objects,
--   a bad tile name, sha256, size or object key, a tile twice, mixed resolutions (the
--   message names the tile); 23505 unique_violation - a set of that name exists with other
--   tiles (the message gives both digests; import under a new name).
-- Locks: inserts the set row; a concurrent registration of the same name waits for it and
--   then compares digests. Audited in heimdall.audit_log (action 'terrain_import').
-- Idempotent: registering the same tiles again changes nothing.
CREATE OR REPLACE FUNCTION heimdall.register_terrain_set(name text, tiles jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_bad       text;
    v_sizes     bigint[];
    v_digest    text;
    v_count     integer;
    v_inserted  text;
    v_set       heimdall.terrain_sets;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'terrain set name must be 1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a letter or a digit, got %',
                coalesce(quote_literal(left(name, 120)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tiles IS NULL OR jsonb_typeof(tiles) <> 'array' OR jsonb_array_length(tiles) NOT BETWEEN 1 AND 65000 THEN
        RAISE EXCEPTION 'tiles must be a JSON array of 1 to 65000 tiles, got %', coalesce(left(tiles::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- every element: exactly the four keys, each well formed
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e) <> 'object'
        OR (SELECT count(*) FROM jsonb_object_keys(e) k WHERE k IN ('tile', 'sha256', 'bytes', 'object_key')) <> 4
        OR (SELECT count(*) FROM jsonb_object_keys(e)) <> 4
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'each tile must be {"tile", "sha256", "bytes", "object_key"}, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'tile') <> 'string'
        OR (e ->> 'tile') !~ '^(N[0-8][0-9]|S[0-8][1-9]|S[1-8]0|S90)(E(0[0-9][0-9]|1[0-7][0-9])|W(0[0-9][1-9]|0[1-9]0|1[0-7][0-9]|180))$'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile name must be an SRTM cell like N45E007 or S01W072 (N00..N89, S01..S90, E000..E179, W001..W180), got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'sha256') <> 'string' OR (e ->> 'sha256') !~ '^[0-9a-f]{64}$'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile sha256 must be 64 lower-case hex digits, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'bytes') <> 'number' OR (e ->> 'bytes') NOT IN ('25934402', '2884802')
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile bytes must be 25934402 (SRTM1, 3601 x 3601 samples) or 2884802 (SRTM3, 1201 x 1201), got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'object_key') <> 'string' OR length(e ->> 'object_key') NOT BETWEEN 1 AND 1024
        OR (e ->> 'object_key') ~ '[\u0001-\u001f\u007f-\u009f]'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile object_key must be 1 to 1024 characters without control characters, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e ->> 'tile' INTO v_bad FROM jsonb_array_elements(tiles) e GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile % is given more than once', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT (e ->> 'bytes')::bigint ORDER BY (e ->> 'bytes')::bigint) INTO v_sizes
      FROM jsonb_array_elements(tiles) e;
    IF cardinality(v_sizes) > 1 THEN
        RAISE EXCEPTION 'a terrain set has one resolution: its tiles mix SRTM1 (25934402 bytes) and SRTM3 (2884802 bytes)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT encode(sha256(convert_to(string_agg((e ->> 'tile') || ' ' || (e ->> 'sha256'), E'\n'
                                               ORDER BY e ->> 'tile'), 'UTF8')), 'hex'),
           count(*)
      INTO v_digest, v_count
      FROM jsonb_array_elements(tiles) e;

    INSERT INTO heimdall.terrain_sets AS s (name, resolution_arcsec, sha256, num_tiles, lat_min, lat_max,
                                            lon_min, lon_max, bytes)
    SELECT register_terrain_set.name, CASE WHEN v_sizes[1] = 25934402 THEN 1 ELSE 3 END, v_digest, v_count,
           min(c.lat), max(c.lat) + 1, min(c.lon), max(c.lon) + 1, v_sizes[1] * v_count
      FROM (SELECT CASE WHEN left(e ->> 'tile', 1) = 'N' THEN 1 ELSE -1 END * substr(e ->> 'tile', 2, 2)::int AS lat,
                   CASE WHEN substr(e ->> 'tile', 4, 1) = 'E' THEN 1 ELSE -1 END * substr(e ->> 'tile', 5, 3)::int AS lon
              FROM jsonb_array_elements(tiles) e) c
    ON CONFLICT ON CONSTRAINT terrain_sets_pkey DO NOTHING
    RETURNING s.name INTO v_inserted;

    IF v_inserted IS NULL THEN
        SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = register_terrain_set.name;
        IF v_set.sha256 <> v_digest THEN
            RAISE EXCEPTION 'terrain set "%" exists with other tiles (sha256 %, these tiles give %): a terrain set is immutable',
                    register_terrain_set.name, v_set.sha256, v_digest
                USING ERRCODE = 'unique_violation', HINT = 'import these tiles under a new name';
        END IF;
        RETURN to_jsonb(v_set) - 'created_by' - 'created_at' || jsonb_build_object('created', false);
    END IF;

    INSERT INTO heimdall.terrain_tiles (set_name, tile, lat, lon, sha256, bytes, object_key)
    SELECT register_terrain_set.name, e ->> 'tile',
           CASE WHEN left(e ->> 'tile', 1) = 'N' THEN 1 ELSE -1 END * substr(e ->> 'tile', 2, 2)::int,
           CASE WHEN substr(e ->> 'tile', 4, 1) = 'E' THEN 1 ELSE -1 END * substr(e ->> 'tile', 5, 3)::int,
           e ->> 'sha256', (e ->> 'bytes')::bigint, e ->> 'object_key'
      FROM jsonb_array_elements(tiles) e;
    SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = register_terrain_set.name;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (NULL, 'terrain_import', jsonb_build_object('terrain_set', v_set.name, 'sha256', v_set.sha256,
                                                       'num_tiles', v_set.num_tiles,
                                                       'resolution_arcsec', v_set.resolution_arcsec));
    RETURN to_jsonb(v_set) - 'created_by' - 'created_at' || jsonb_build_object('created', true);
END;
$$;

COMMENT ON FUNCTION heimdall.register_terrain_set(text, jsonb) IS
    'Admin: register an immutable terrain set (SRTM tiles already in the object store) (errors: 22023, 23505).';


-- >>> sql/functions/release_chunk.sql
-- heimdall.release_chunk(chunk_id bigint, claim_token uuid) -> boolean
--
-- Purpose: give a claimed chunk back untouched (worker shutting down): running -> pending
--   and its message visible again at once; the token is void afterwards.
-- Parameters: chunk_id, claim_token - the claim.
-- Returns: true.
-- Errors: P0002 unknown chunk; HS002 chunk abandoned; HS001 claim lost (nothing to give
--   back: the worker may just exit). Locks: the chunk row.
CREATE OR REPLACE FUNCTION heimdall.release_chunk(chunk_id bigint, claim_token uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    ch heimdall.generation_chunks;
BEGIN
    ch := heimdall.lock_claimed_chunk(release_chunk.chunk_id, release_chunk.claim_token);
    UPDATE heimdall.generation_chunks c
       SET state = 'pending', claimed_by = NULL, claim_token = NULL, visible_at = now(), updated_at = now()
     WHERE c.id = ch.id;
    PERFORM pgmq.set_vt(heimdall.queue_name(), ch.msg_id, 0);
    RETURN true;
END;
$$;

COMMENT ON FUNCTION heimdall.release_chunk(bigint, uuid) IS
    'Worker: hand a claimed chunk back (message visible again at once).';


-- >>> sql/functions/release_stuck_chunks.sql
-- heimdall.release_stuck_chunks(dataset_id uuid, stuck_after_s integer) -> integer
--
-- Purpose: give chunks claimed by a dead worker back at once: running chunks whose
--   visibility ended more than stuck_after_s seconds ago become pending and their
--   messages visible. (pgmq would redeliver them anyway; this is for admins who do not
--   want to wait, and the state shown in views becomes right at once.) Audited.
-- Parameters: dataset_id; stuck_after_s - seconds (>= 0; NULL: heimdall.stuck_after_s()).
-- Returns: number of chunks released. Errors: P0002 unknown dataset; 22023 bad seconds.
-- Locks: the chunk rows.
CREATE OR REPLACE FUNCTION heimdall.release_stuck_chunks(dataset_id uuid, stuck_after_s integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_msgs bigint[];
    v_ids  bigint[];
    v_stuck integer;
BEGIN
    PERFORM heimdall.dataset_row(release_stuck_chunks.dataset_id);
    v_stuck := coalesce(release_stuck_chunks.stuck_after_s, heimdall.stuck_after_s());
    IF v_stuck < 0 THEN
        RAISE EXCEPTION 'stuck_after_s must be >= 0, got %', v_stuck USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH upd AS (
        UPDATE heimdall.generation_chunks c
           SET state = 'pending', claimed_by = NULL, claim_token = NULL, visible_at = now(), updated_at = now()
         WHERE c.dataset_id = release_stuck_chunks.dataset_id AND c.state = 'running'
           AND c.visible_at < now() - make_interval(secs => v_stuck)
        RETURNING c.id, c.msg_id)
    SELECT array_agg(u.id), array_agg(u.msg_id) INTO v_ids, v_msgs FROM upd u;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pgmq.set_vt(heimdall.queue_name(), array_remove(v_msgs, NULL), 0);
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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_before integer;
    v_after  integer;
BEGIN
    v_before := (heimdall.dataset_row(repair_num_samples.dataset_id, true)).num_samples;
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


-- >>> sql/functions/repair_queue.sql
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


-- >>> sql/functions/request_row.sql
-- heimdall.request_row(request_id uuid, lock boolean) -> heimdall.generation_requests
--
-- Purpose: the one home of "this generation request, or P0002 naming it"; lock = true takes
--   the row lock until the caller's transaction ends.
-- Returns: the request row. Errors: P0002 request does not exist.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.request_row(request_id uuid, lock boolean DEFAULT false)
RETURNS heimdall.generation_requests
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    r heimdall.generation_requests;
BEGIN
    IF lock THEN
        SELECT x.* INTO r FROM heimdall.generation_requests x WHERE x.id = request_row.request_id FOR UPDATE;
    ELSE
        SELECT x.* INTO r FROM heimdall.generation_requests x WHERE x.id = request_row.request_id;
    END IF;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(request_row.request_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END;
$$;

COMMENT ON FUNCTION heimdall.request_row(uuid, boolean) IS
    'Internal: a generation request row (optionally locked) or P0002 naming the id.';


-- >>> sql/functions/reserve_samples.sql
-- heimdall.reserve_samples(dataset_id uuid, n numeric) -> TABLE(first_idx, last_idx)
--
-- Purpose: hand out the next n contiguous sample indices of a dataset from its own
--   counter (synthetic_datasets.next_idx). The only way indices are allocated.
-- Parameters: dataset_id; n - number of indices, a whole number 1 .. 10,000,000 (numeric,
--   so that 1.5 or 2^31 get a clear error rather than "function does not exist").
-- Returns: one row, first_idx .. last_idx inclusive (last_idx - first_idx + 1 = n).
-- Errors: P0002 unknown dataset; 22023 n NULL, not whole or <= 0; 22003 n > 10,000,000,
--   or the range would pass the largest sample index 2147483646 (the message says how
--   many indices are left). Sample indices are int4: 0 .. 2147483646.
-- Locks: the dataset row (FOR UPDATE semantics via UPDATE) until the caller's transaction
--   ends, so concurrent callers get disjoint ranges; a rolled-back reservation returns
--   its range (the counter update rolls back), so indices never have gaps.
-- Idempotency: none; every call reserves a new range.
CREATE OR REPLACE FUNCTION heimdall.reserve_samples(dataset_id uuid, n numeric)
RETURNS TABLE (first_idx integer, last_idx integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_n     bigint;
    v_next  integer;
    v_have  bigint;
BEGIN
    v_n := heimdall.integer_arg(reserve_samples.n, 'n (samples)', 1, 10000000, '22003');

    -- next_idx may reach 2147483647: the last index handed out is then 2147483646.
    UPDATE heimdall.synthetic_datasets d
       SET next_idx = d.next_idx + v_n::integer
     WHERE d.id = reserve_samples.dataset_id
       AND d.next_idx::bigint + v_n <= 2147483647
    RETURNING d.next_idx INTO v_next;

    IF v_next IS NULL THEN
        SELECT d.next_idx INTO v_have FROM heimdall.synthetic_datasets d WHERE d.id = reserve_samples.dataset_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dataset % does not exist', coalesce(reserve_samples.dataset_id::text, 'NULL')
                USING ERRCODE = 'no_data_found';
        END IF;
        RAISE EXCEPTION 'dataset %: % more samples would pass the largest sample index 2147483646 (next index %, at most % more)',
                reserve_samples.dataset_id, v_n, v_have, 2147483647 - v_have
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;

    first_idx := v_next - v_n::integer;
    last_idx := v_next - 1;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION heimdall.reserve_samples(uuid, numeric) IS
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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM heimdall.request_row(resume_request.request_id, true);
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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    PERFORM heimdall.dataset_row(retry_failed_chunks.dataset_id);
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


-- >>> sql/functions/sample_split.sql
-- heimdall.sample_split(dataset_id uuid, sample_idx integer) -> text
--
-- Purpose: the split ('train', 'val' or 'test') of one sample of a dataset: heimdall.split_of
--   with the dataset's seed and the "splits" of its stored config (0.8 / 0.1 / 0.1 for a
--   config stored before revision 0003). Defined for every index, committed or not: the
--   split of a sample a later expansion will generate is already fixed. For many samples
--   read heimdall.sample_splits (committed samples) or call split_of with the seed and
--   config once (as the exporter and the training loader do).
-- Parameters: dataset_id - the dataset; sample_idx - the index (>= 0).
-- Returns: the split; NULL for an unknown dataset, a NULL argument or a negative index.
-- Errors: none. Reads synthetic_datasets as the caller (heimdall_reader may).
-- Locks: none. STABLE.
CREATE OR REPLACE FUNCTION heimdall.sample_split(dataset_id uuid, sample_idx integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    -- plpgsql (not sql): built before split_of.sql, whose function it calls
    RETURN (SELECT heimdall.split_of(d.seed, sample_split.sample_idx, d.config -> 'splits')
              FROM heimdall.synthetic_datasets d
             WHERE d.id = sample_split.dataset_id);
END;
$$;

COMMENT ON FUNCTION heimdall.sample_split(uuid, integer) IS
    'Stable split (train/val/test) of one sample of a dataset (heimdall.split_of with its seed and config).';


-- >>> sql/functions/split_of.sql
-- heimdall.split_of(seed bigint, sample_idx integer, splits jsonb) -> text
--
-- Purpose: the one home, in SQL, of the stable train / val / test rule (issue 13). Its twin
--   in Python is heimdall_synth/splits.py; a test checks that both give every sample the
--   same split. A sample's split depends only on the dataset's seed, its index and the
--   fractions fixed at creation, so expanding a dataset never moves a sample.
-- Rule: h = sha256 of the UTF-8 text '<seed>:<sample_idx>' (plain decimal integers, the
--   seed signed as stored, e.g. '-7:42'); u = the first 6 bytes of h as a big-endian
--   unsigned integer, 0 <= u < 2^48 (exact in float8). With the fractions read as float8,
--   t = train and v = val: 'train' if u < t * 2^48, else 'val' if u < (t + v) * 2^48 (t + v
--   added in float8), else 'test'. So each split receives its fraction of the samples.
-- Parameters: seed - the dataset's seed; sample_idx - the sample index (>= 0); splits -
--   {"train", "val", "test"} as normalize_config stores it (a name left out counts 0);
--   NULL = the 0.8 / 0.1 / 0.1 of configs stored before revision 0003 (no "splits" key).
-- Returns: 'train', 'val' or 'test'; NULL when seed or sample_idx is NULL or sample_idx < 0.
-- Errors: none (fractions are not checked here: normalize_config checked them).
-- Locks: none. IMMUTABLE, PARALLEL SAFE: usable in indexes and parallel scans.
CREATE OR REPLACE FUNCTION heimdall.split_of(seed bigint, sample_idx integer, splits jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT CASE WHEN x.u < x.t * 281474976710656.0::float8 THEN 'train'
                WHEN x.u < (x.t + x.v) * 281474976710656.0::float8 THEN 'val'
                ELSE 'test' END
      FROM (SELECT ('x' || encode(substring(sha256(convert_to(split_of.seed::text || ':' || split_of.sample_idx::text,
                                                              'UTF8')) FROM 1 FOR 6), 'hex'))::bit(48)::bigint::float8 AS u,
                   coalesce((s.f ->> 'train')::float8, 0) AS t,
                   coalesce((s.f ->> 'val')::float8, 0) AS v
              FROM (SELECT coalesce(split_of.splits, '{"train": 0.8, "val": 0.1, "test": 0.1}'::jsonb) AS f) s) x
     WHERE split_of.seed IS NOT NULL AND split_of.sample_idx >= 0
$$;

COMMENT ON FUNCTION heimdall.split_of(bigint, integer, jsonb) IS
    'Stable split (train/val/test) of sample sample_idx of a dataset with this seed and these fractions.';


-- >>> sql/functions/staged_columns.sql
-- heimdall.staged_columns(target regclass) -> text[]
--
-- Purpose: the columns a worker writes into a sample table, in table order: every column
--   of `target` except identity/generated ones and created_at (the database fills those).
--   The one home of that list on the SQL side: the staging tables are built from it and
--   complete_chunk moves exactly these columns; worker/rows.py's COPY column lists are
--   checked against it by an integration test.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.staged_columns(target regclass)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT array_agg(a.attname::text ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attidentity = '' AND a.attgenerated = '' AND a.attname <> 'created_at'
$$;

COMMENT ON FUNCTION heimdall.staged_columns(regclass) IS
    'Internal: the columns a worker writes into a sample table (staging layout).';


-- >>> sql/functions/stuck_after_s.sql
-- heimdall.stuck_after_s() -> integer
--
-- Purpose: the one home of "stuck": a running chunk whose claim's visibility timeout ended
--   more than this many seconds ago (its worker neither finished nor sent a heartbeat) is
--   stuck. Used by the dataset_health view and as the default of validate_dataset and
--   release_stuck_chunks; the CLI's --stuck-after overrides it per call.
-- Returns: 600 (seconds).
CREATE OR REPLACE FUNCTION heimdall.stuck_after_s()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$ SELECT 600 $$;

COMMENT ON FUNCTION heimdall.stuck_after_s() IS
    'Seconds past a claim''s visibility timeout after which a running chunk counts as stuck.';


-- >>> sql/functions/terrain_set.sql
-- heimdall.terrain_set(name text) -> jsonb
--
-- Purpose: a terrain set with its tiles, for the workers that load it (ITM point-to-point
--   mode) and the tooling that imports it (to refuse other tiles under an existing name
--   before uploading anything).
-- Parameters: name - the terrain set's name (exact).
-- Returns: {"name", "sha256" (the set's digest, see register_terrain_set),
--   "resolution_arcsec" (1 or 3), "samples_per_side" (3601 or 1201), "num_tiles",
--   "lat_min", "lat_max", "lon_min", "lon_max" (bounding box, whole degrees), "bytes",
--   "created_by", "created_at", "tiles": [{"tile", "lat", "lon" (south-west corner),
--   "sha256", "bytes", "object_key"}, ... sorted by tile]}.
-- Errors: P0002 no_data_found - no terrain set of that name (the hint lists the sets).
-- Locks: none (reads). Idempotent.
CREATE OR REPLACE FUNCTION heimdall.terrain_set(name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_set   heimdall.terrain_sets;
BEGIN
    SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = terrain_set.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'terrain set % does not exist', coalesce(quote_literal(left(terrain_set.name, 120)), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = coalesce('terrain sets: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.name)
                                                         FROM heimdall.terrain_sets s),
                                  'no terrain set is registered: heimdall-synth terrain import NAME DIR');
    END IF;
    RETURN to_jsonb(v_set)
        || jsonb_build_object('samples_per_side', 3600 / v_set.resolution_arcsec + 1,
                              'tiles', (SELECT jsonb_agg(jsonb_build_object(
                                                 'tile', t.tile, 'lat', t.lat, 'lon', t.lon, 'sha256', t.sha256,
                                                 'bytes', t.bytes, 'object_key', t.object_key) ORDER BY t.tile)
                                          FROM heimdall.terrain_tiles t WHERE t.set_name = v_set.name));
END;
$$;

COMMENT ON FUNCTION heimdall.terrain_set(text) IS
    'A terrain set with its tiles (object keys, sha256) for workers and tooling (errors: P0002).';


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
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_msgs bigint[];
BEGIN
    SELECT array_agg(c.msg_id) INTO v_msgs FROM heimdall.generation_chunks c
     WHERE c.dataset_id = OLD.id AND c.msg_id IS NOT NULL;
    IF v_msgs IS NOT NULL THEN
        PERFORM pgmq.delete(heimdall.queue_name(), v_msgs);
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
--   triggers (proved by a secret marker, not by trigger depth) or to the true feature
--   count, which is what repair does; next_idx only
--   grows, except when abandon_request gives back a tail that holds no rows and no live
--   chunk. Errors: 23514 check_violation naming the dataset and column.
CREATE OR REPLACE FUNCTION heimdall.tg_datasets_guard()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
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
    -- Only the feature-row counting trigger may move num_samples without a recount: it
    -- alone knows the secret it puts in the transaction-local heimdall.count_key (see
    -- tg_features_counted). Anything else, from any depth, must set the true count.
    IF NEW.num_samples IS DISTINCT FROM OLD.num_samples
       AND coalesce(current_setting('heimdall.count_key', true), '') IS DISTINCT FROM
           (SELECT k.key FROM heimdall.trust_key k) THEN
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
-- Trust: the num_samples guard (tg_datasets_guard) lets this trigger's UPDATE through
--   without recounting every row because it runs with the transaction-local setting
--   heimdall.count_key equal to the secret in heimdall.trust_key, which no heimdall role
--   can read; the setting is cleared right after the UPDATE, so no other code ever sees it.
--   (A depth test such as pg_trigger_depth() > 1 could be met by any caller's own trigger.)
-- Locks: the dataset row (the UPDATE), which also serialises against reserve_samples.
CREATE OR REPLACE FUNCTION heimdall.tg_features_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    PERFORM set_config('heimdall.count_key', (SELECT k.key FROM heimdall.trust_key k), true);
    IF TG_OP = 'INSERT' THEN
        WITH n AS (SELECT dataset_id, count(*) AS cnt, max(sample_idx) AS max_idx
                     FROM changed GROUP BY dataset_id),
             upd AS (UPDATE heimdall.synthetic_datasets d
                        SET num_samples = d.num_samples + n.cnt
                       FROM n WHERE d.id = n.dataset_id
                     RETURNING d.id, d.next_idx, n.max_idx)
        SELECT * INTO bad FROM upd WHERE upd.max_idx >= upd.next_idx LIMIT 1;
        PERFORM set_config('heimdall.count_key', '', true);
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
        PERFORM set_config('heimdall.count_key', '', true);
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
SET search_path = pg_catalog, heimdall, pg_temp
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
SET search_path = pg_catalog, heimdall, pg_temp
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
SET search_path = pg_catalog, heimdall, pg_temp
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
SET search_path = pg_catalog, heimdall, pg_temp
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
--             stuck_after_s ago), chunk_without_message (a pending/running chunk whose
--             queue message is gone: no worker would ever take it), message_without_chunk
--             (a queue message of this dataset that no live chunk owns), orphan_object
--             (from the object store)
-- Status: critical if any critical issue, else warning if any warning, else healthy.
-- Parameters: dataset_id; extra_issues - JSON array of issues in the same shape;
--   stuck_after_s - grace after a claim's visibility timeout (>= 0; NULL: heimdall.stuck_after_s()).
-- Returns: {"dataset_id", "status", "checked_at", "counts": {...}, "issues": [...]}.
-- Errors: P0002 unknown dataset; 22023 extra_issues not an array / stuck_after_s < 0.
-- Locks: none beyond the UPDATE of the dataset's health columns. Idempotent.
CREATE OR REPLACE FUNCTION heimdall.validate_dataset(dataset_id uuid, extra_issues jsonb DEFAULT '[]',
                                                     stuck_after_s integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d           heimdall.synthetic_datasets;
    v_issues    jsonb := '[]';
    v_counts    jsonb;
    v_status    text;
    v_report    jsonb;
    v_stuck     integer;
BEGIN
    d := heimdall.dataset_row(validate_dataset.dataset_id);
    IF jsonb_typeof(coalesce(extra_issues, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'extra_issues must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_stuck := coalesce(validate_dataset.stuck_after_s, heimdall.stuck_after_s());
    IF v_stuck < 0 THEN
        RAISE EXCEPTION 'stuck_after_s must be >= 0, got %', v_stuck
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
              FROM heimdall.index_islands(ARRAY(
                       SELECT f.sample_idx FROM heimdall.measurement_features f WHERE f.dataset_id = d.id
                       EXCEPT
                       SELECT q.sample_idx FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id))
                   AS r(lo, hi, n)), '[]');
    END IF;
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'iq_without_features', 'severity', 'critical',
                   'first_idx', r.lo, 'last_idx', r.hi, 'count', r.n,
                   'detail', 'IQ rows without their feature row') ORDER BY r.lo)
          FROM heimdall.index_islands(ARRAY(
                   SELECT q.sample_idx FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id
                   EXCEPT
                   SELECT f.sample_idx FROM heimdall.measurement_features f WHERE f.dataset_id = d.id))
               AS r(lo, hi, n)), '[]');
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
          FROM heimdall.index_islands(ARRAY(
                   SELECT generate_series(0, d.next_idx - 1)
                   EXCEPT
                   SELECT f.sample_idx FROM heimdall.measurement_features f WHERE f.dataset_id = d.id
                   EXCEPT
                   SELECT q.sample_idx FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id
                   EXCEPT
                   SELECT generate_series(c.first_idx, c.last_idx) FROM heimdall.generation_chunks c
                    WHERE c.dataset_id = d.id AND c.state IN ('pending', 'running', 'paused', 'failed')))
               AS r(lo, hi, n)), '[]');
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
           AND c.visible_at < now() - make_interval(secs => v_stuck)), '[]');

    -- Chunks and queue messages must agree: a live chunk without its message is never
    -- picked up (and --until-idle would not wait for it); a message no live chunk owns is
    -- noise. Both are warnings, fixed by repair_queue (repair --apply).
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'chunk_without_message', 'severity', 'warning',
                   'first_idx', c.first_idx, 'last_idx', c.last_idx, 'count', c.last_idx - c.first_idx + 1,
                   'chunk_id', c.id,
                   'detail', format('chunk %s is %s but its queue message %s is gone', c.id, c.state,
                                    coalesce(c.msg_id::text, '(none)'))) ORDER BY c.first_idx)
          FROM heimdall.generation_chunks c
         WHERE c.dataset_id = d.id AND c.state IN ('pending', 'running')
           AND (c.msg_id IS NULL OR c.msg_id NOT IN (SELECT q.msg_id FROM heimdall.queue_messages() q))), '[]');
    v_issues := v_issues || coalesce((
        SELECT jsonb_agg(jsonb_build_object('kind', 'message_without_chunk', 'severity', 'warning',
                   'msg_id', q.msg_id, 'count', 1,
                   'detail', format('queue message %s (%s) belongs to no live chunk', q.msg_id, left(q.message::text, 200)))
                   ORDER BY q.msg_id)
          FROM heimdall.queue_messages() q
         WHERE q.message ->> 'dataset_id' = d.id::text
           AND NOT EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                            WHERE c.msg_id = q.msg_id AND c.state IN ('pending', 'running'))), '[]');

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


-- >>> sql/functions/work_in_flight.sql
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
--              than heimdall.stuck_after_s() past their visibility timeout (stuck);
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
                              AND x.visible_at < now() - make_interval(secs => heimdall.stuck_after_s())) AS stuck_chunks
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

-- Per committed sample: its stable split (issue 13), heimdall.split_of with the dataset's
-- seed and stored fractions. E.g. the split sizes of a dataset:
--   SELECT split, count(*) FROM heimdall.sample_splits WHERE dataset_id = '...' GROUP BY split;
CREATE VIEW heimdall.sample_splits AS
SELECT f.dataset_id,
       f.sample_idx,
       heimdall.split_of(d.seed, f.sample_idx, d.config -> 'splits') AS split
  FROM heimdall.measurement_features f
  JOIN heimdall.synthetic_datasets d ON d.id = f.dataset_id;

COMMENT ON VIEW heimdall.sample_splits IS
    'Per committed sample: its stable split (train/val/test), from heimdall.split_of.';


-- >>> sql/grants.sql
-- Roles and privileges: least privilege, each role exactly what it needs.
--   heimdall_reader - SELECT on the tables and views (analysts, training jobs); not the
--                     trust key, not the claim tokens. Executes normalize_config only.
--   heimdall_worker - no table privilege at all: the worker protocol functions only
--                     (claim/extend/release/fail/begin_chunk_commit/complete_chunk,
--                     work_in_flight). Rows reach the sample tables only through
--                     complete_chunk, which checks they lie in the chunk the worker claimed.
--   heimdall_admin  - reader + worker + the admin API (create/expand/pause/resume/abandon/
--                     retry/delete, validate, repair, gc bookkeeping, baseline runs); may rename a dataset,
--                     set num_samples to the true count, delete sample rows.
--   PUBLIC          - nothing. Internal functions (create_request, enqueue_chunks,
--                     lock_claimed_chunk, prepare_staging, queue_*, integer_arg,
--                     staged_columns, tg_*) are executable by no heimdall role.
-- This file is part of the replaceable set: a migration replays it after dropping and
-- recreating the functions, so it first takes back whatever the roles held.
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

REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM PUBLIC, heimdall_reader, heimdall_worker, heimdall_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA heimdall FROM PUBLIC, heimdall_reader, heimdall_worker, heimdall_admin;
-- Functions a later migration creates are not executable by PUBLIC until granted here.
-- (PostgreSQL grants EXECUTE to PUBLIC by a global default that a per-schema default
-- cannot take back, so this is the owner's global default in this database.)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA heimdall TO heimdall_reader, heimdall_worker, heimdall_admin;

-- reader: every table and view, except the trust key and the claim tokens (a token is
-- the capability to act on a claimed chunk).
GRANT SELECT ON ALL TABLES IN SCHEMA heimdall TO heimdall_reader;
REVOKE SELECT ON heimdall.trust_key, heimdall.generation_chunks FROM heimdall_reader;
DO $$
BEGIN
    EXECUTE format('GRANT SELECT (%s) ON heimdall.generation_chunks TO heimdall_reader',
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                      FROM pg_attribute a
                     WHERE a.attrelid = 'heimdall.generation_chunks'::regclass AND a.attnum > 0
                       AND NOT a.attisdropped AND a.attname <> 'claim_token'));
END
$$;
GRANT EXECUTE ON FUNCTION heimdall.normalize_config(jsonb), heimdall.stuck_after_s()
    TO heimdall_reader, heimdall_worker;
-- terrain sets (issue 11): a worker loads the set its config names; anyone may list them
GRANT EXECUTE ON FUNCTION heimdall.terrain_set(text) TO heimdall_reader, heimdall_worker;
GRANT EXECUTE ON FUNCTION heimdall.list_terrain_sets() TO heimdall_reader;
-- stable splits (issue 13): whoever reads the samples may ask for their split
GRANT EXECUTE ON FUNCTION heimdall.split_of(bigint, integer, jsonb), heimdall.sample_split(uuid, integer)
    TO heimdall_reader;

-- worker
GRANT EXECUTE ON FUNCTION
    heimdall.claim_chunk(text, integer, integer, text),
    heimdall.extend_chunk(bigint, uuid, integer),
    heimdall.release_chunk(bigint, uuid),
    heimdall.fail_chunk(bigint, uuid, text, boolean, integer),
    heimdall.begin_chunk_commit(bigint, uuid),
    heimdall.complete_chunk(bigint, uuid, text),
    heimdall.work_in_flight()
TO heimdall_worker;

-- admin
GRANT heimdall_reader TO heimdall_admin;
GRANT heimdall_worker TO heimdall_admin;
GRANT EXECUTE ON FUNCTION
    heimdall.create_dataset(text, text, jsonb, numeric, numeric),
    heimdall.expand_dataset(uuid, numeric),
    heimdall.reserve_samples(uuid, numeric),
    heimdall.delete_dataset(uuid),
    heimdall.pause_request(uuid),
    heimdall.resume_request(uuid),
    heimdall.abandon_request(uuid),
    heimdall.retry_failed_chunks(uuid),
    heimdall.validate_dataset(uuid, jsonb, integer),
    heimdall.repair_num_samples(uuid),
    heimdall.enqueue_repair(uuid, integer, integer, text),
    heimdall.release_stuck_chunks(uuid, integer),
    heimdall.repair_queue(uuid),
    heimdall.record_object_deletion(uuid, text, text[], jsonb),
    heimdall.mark_gc_done(uuid),
    heimdall.register_terrain_set(text, jsonb)
TO heimdall_admin;
-- baseline runs (issue 13): recording a run writes the run history, like validate_dataset
-- writes the health report: admin. Anyone who reads the data (reader) can compute the
-- baseline (`heimdall-synth baseline --no-store`) and read the recorded runs (SELECT on
-- heimdall.baseline_runs, granted with every table above).
GRANT EXECUTE ON FUNCTION heimdall.record_baseline_run(uuid, numeric, numeric, text, jsonb) TO heimdall_admin;
GRANT UPDATE (num_samples, name) ON heimdall.synthetic_datasets TO heimdall_admin;
GRANT DELETE ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_admin;

