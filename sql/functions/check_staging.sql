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
