-- heimdall.request_row(request_id uuid, lock boolean) -> heimdall.generation_requests
--
-- Purpose: the one home of "this generation request, or P0002 naming it"; lock = true takes
--   the row lock until the caller's transaction ends.
-- Returns: the request row. Errors: P0002 request does not exist.
-- Internal: executable by no heimdall role.
CREATE OR REPLACE FUNCTION heimdall.request_row(request_id uuid, lock boolean DEFAULT false)
RETURNS heimdall.generation_requests
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    r heimdall.generation_requests;
BEGIN
    IF lock THEN
        SELECT x.* INTO r FROM heimdall.generation_requests x WHERE x.id = request_row.request_id FOR UPDATE;
    ELSE
        SELECT x.* INTO r FROM heimdall.generation_requests x WHERE x.id = request_row.request_id;
    END IF;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(request_row.request_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END;
$$;

COMMENT ON FUNCTION heimdall.request_row(uuid, boolean) IS
    'Internal: a generation request row (optionally locked) or P0002 naming the id.';
