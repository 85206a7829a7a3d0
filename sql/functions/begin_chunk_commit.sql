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
