-- heimdall.terrain_set(name text) -> jsonb
--
-- Purpose: a terrain set with its tiles, for the workers that load it (ITM point-to-point
--   mode) and the tooling that imports it (to refuse other tiles under an existing name
--   before uploading anything).
-- Parameters: name - the terrain set's name (exact).
-- Returns: {"name", "sha256" (the set's digest, see register_terrain_set),
--   "resolution_arcsec" (1 or 3), "samples_per_side" (3601 or 1201), "num_tiles",
--   "lat_min", "lat_max", "lon_min", "lon_max" (bounding box, whole degrees), "bytes",
--   "created_by", "created_at", "tiles": [{"tile", "lat", "lon" (south-west corner),
--   "sha256", "bytes", "object_key"}, ... sorted by tile]}.
-- Errors: P0002 no_data_found - no terrain set of that name (the hint lists the sets).
-- Locks: none (reads). Idempotent.
CREATE OR REPLACE FUNCTION heimdall.terrain_set(name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_set   heimdall.terrain_sets;
BEGIN
    SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = terrain_set.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'terrain set % does not exist', coalesce(quote_literal(left(terrain_set.name, 120)), 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = coalesce('terrain sets: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.name)
                                                         FROM heimdall.terrain_sets s),
                                  'no terrain set is registered: heimdall-synth terrain import NAME DIR');
    END IF;
    RETURN to_jsonb(v_set)
        || jsonb_build_object('samples_per_side', 3600 / v_set.resolution_arcsec + 1,
                              'tiles', (SELECT jsonb_agg(jsonb_build_object(
                                                 'tile', t.tile, 'lat', t.lat, 'lon', t.lon, 'sha256', t.sha256,
                                                 'bytes', t.bytes, 'object_key', t.object_key) ORDER BY t.tile)
                                          FROM heimdall.terrain_tiles t WHERE t.set_name = v_set.name));
END;
$$;

COMMENT ON FUNCTION heimdall.terrain_set(text) IS
    'A terrain set with its tiles (object keys, sha256) for workers and tooling (errors: P0002).';
