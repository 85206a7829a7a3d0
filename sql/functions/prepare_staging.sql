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
