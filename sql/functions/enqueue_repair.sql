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
