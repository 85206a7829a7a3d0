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
