-- heimdall.queue_name() -> text
--
-- Purpose: the one home of the pgmq queue name that carries one message per pending chunk.
--   Every function that talks to the queue calls this; sql/queue.sql creates it.
-- Returns: 'heimdall_chunks'. Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.queue_name()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$ SELECT 'heimdall_chunks'::text $$;

COMMENT ON FUNCTION heimdall.queue_name() IS
    'Internal: the pgmq queue of chunk messages (single home of its name).';
