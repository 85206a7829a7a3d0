-- heimdall.list_terrain_sets() -> table
--
-- Purpose: the registered terrain sets, for `heimdall-synth terrain list`.
-- Parameters: none.
-- Returns: one row per set, by name: name, resolution_arcsec (1 = SRTM1, 3 = SRTM3),
--   num_tiles, lat_min, lat_max, lon_min, lon_max (bounding box of the tiles, whole
--   degrees), bytes (all tiles), sha256 (the set's digest), datasets (how many datasets'
--   configs use the set), created_by, created_at.
-- Errors: none.
-- Locks: none (reads). Idempotent.
CREATE OR REPLACE FUNCTION heimdall.list_terrain_sets()
RETURNS TABLE (name text, resolution_arcsec integer, num_tiles integer, lat_min integer, lat_max integer,
               lon_min integer, lon_max integer, bytes bigint, sha256 text, datasets bigint,
               created_by text, created_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
    SELECT s.name, s.resolution_arcsec, s.num_tiles, s.lat_min, s.lat_max, s.lon_min, s.lon_max, s.bytes,
           s.sha256,
           (SELECT count(*) FROM heimdall.synthetic_datasets d WHERE d.config -> 'propagation' ->> 'terrain' = s.name),
           s.created_by, s.created_at
      FROM heimdall.terrain_sets s
     ORDER BY s.name;
$$;

COMMENT ON FUNCTION heimdall.list_terrain_sets() IS
    'The registered terrain sets with their coverage and how many datasets use each.';
