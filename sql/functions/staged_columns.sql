-- heimdall.staged_columns(target regclass) -> text[]
--
-- Purpose: the columns a worker writes into a sample table, in table order: every column
--   of `target` except identity/generated ones and created_at (the database fills those).
--   The one home of that list on the SQL side: the staging tables are built from it and
--   complete_chunk moves exactly these columns; worker/rows.py's COPY column lists are
--   checked against it by an integration test.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.staged_columns(target regclass)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT array_agg(a.attname::text ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attidentity = '' AND a.attgenerated = '' AND a.attname <> 'created_at'
$$;

COMMENT ON FUNCTION heimdall.staged_columns(regclass) IS
    'Internal: the columns a worker writes into a sample table (staging layout).';
