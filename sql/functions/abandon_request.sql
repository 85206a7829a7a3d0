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
