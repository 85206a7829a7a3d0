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
