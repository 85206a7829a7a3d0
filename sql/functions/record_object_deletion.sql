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
