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
