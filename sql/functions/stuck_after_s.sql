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
