-- heimdall.index_islands(indices integer[]) -> setof (first_idx integer, last_idx integer, count bigint)
--
-- Purpose: the one home of "group sample indices into ranges of consecutive indices"
--   (validate_dataset reports damage as ranges, repair regenerates ranges). Duplicates
--   are counted once; NULLs ignored.
-- Returns: one row per island, in index order.
-- Internal: executable by no heimdall role. Locks: none.
CREATE OR REPLACE FUNCTION heimdall.index_islands(indices integer[])
RETURNS TABLE (first_idx integer, last_idx integer, count bigint)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT min(i), max(i), count(*)
      FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS grp
              FROM (SELECT DISTINCT u AS i FROM unnest(indices) u WHERE u IS NOT NULL) d) g
     GROUP BY grp
     ORDER BY 1
$$;

COMMENT ON FUNCTION heimdall.index_islands(integer[]) IS
    'Internal: ranges of consecutive indices (first_idx, last_idx, count).';
