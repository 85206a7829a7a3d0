-- heimdall.register_terrain_set(name text, tiles jsonb) -> jsonb
--
-- Purpose: register a terrain set (SRTM .hgt elevation tiles for ITM point-to-point mode,
--   issue 11) whose tiles are already in the object store (`heimdall-synth terrain import
--   NAME DIR` uploads them, then calls this). A set is immutable: the same name can only
--   ever mean the same tiles. The set's digest, sha256 of the lines "<tile> <tile sha256>"
--   sorted by tile and joined by "\n" (no trailing newline), is its identity: a config that
--   uses the set carries it (normalize_config), so a set is part of a dataset's identity.
-- Parameters: name - 1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a letter or a
--   digit (it is part of object keys and file names); tiles - a JSON array of 1 to 65,000
--   objects {"tile": SRTM cell name [NS]dd[EW]ddd (N45E007: latitude 45..46, longitude 7..8;
--   S/W negative; latitude 0..89 N / 1..90 S, longitude 0..179 E / 1..180 W), "sha256": 64
--   lower-case hex digits of the file's bytes, "bytes": 25934402 (SRTM1, 3601 x 3601) or
--   2884802 (SRTM3, 1201 x 1201), the same for every tile, "object_key": where the bytes
--   are in the object store (1 .. 1024 characters, no control characters)}, every cell once.
-- Returns: {"name", "sha256", "resolution_arcsec", "num_tiles", "lat_min", "lat_max",
--   "lon_min", "lon_max", "bytes", "created": true} for a new set; the existing set with
--   "created": false when the same tiles (same digest) are registered again.
-- Errors: 22023 invalid_parameter_value - a bad name, tiles not an array of such objects,
--   a bad tile name, sha256, size or object key, a tile twice, mixed resolutions (the
--   message names the tile); 23505 unique_violation - a set of that name exists with other
--   tiles (the message gives both digests; import under a new name).
-- Locks: inserts the set row; a concurrent registration of the same name waits for it and
--   then compares digests. Audited in heimdall.audit_log (action 'terrain_import').
-- Idempotent: registering the same tiles again changes nothing.
CREATE OR REPLACE FUNCTION heimdall.register_terrain_set(name text, tiles jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_bad       text;
    v_sizes     bigint[];
    v_digest    text;
    v_count     integer;
    v_inserted  text;
    v_set       heimdall.terrain_sets;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' THEN
        RAISE EXCEPTION 'terrain set name must be 1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a letter or a digit, got %',
                coalesce(quote_literal(left(name, 120)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tiles IS NULL OR jsonb_typeof(tiles) <> 'array' OR jsonb_array_length(tiles) NOT BETWEEN 1 AND 65000 THEN
        RAISE EXCEPTION 'tiles must be a JSON array of 1 to 65000 tiles, got %', coalesce(left(tiles::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- every element: exactly the four keys, each well formed
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e) <> 'object'
        OR (SELECT count(*) FROM jsonb_object_keys(e) k WHERE k IN ('tile', 'sha256', 'bytes', 'object_key')) <> 4
        OR (SELECT count(*) FROM jsonb_object_keys(e)) <> 4
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'each tile must be {"tile", "sha256", "bytes", "object_key"}, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'tile') <> 'string'
        OR (e ->> 'tile') !~ '^(N[0-8][0-9]|S[0-8][1-9]|S[1-8]0|S90)(E(0[0-9][0-9]|1[0-7][0-9])|W(0[0-9][1-9]|0[1-9]0|1[0-7][0-9]|180))$'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile name must be an SRTM cell like N45E007 or S01W072 (N00..N89, S01..S90, E000..E179, W001..W180), got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'sha256') <> 'string' OR (e ->> 'sha256') !~ '^[0-9a-f]{64}$'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile sha256 must be 64 lower-case hex digits, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'bytes') <> 'number' OR (e ->> 'bytes') NOT IN ('25934402', '2884802')
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile bytes must be 25934402 (SRTM1, 3601 x 3601 samples) or 2884802 (SRTM3, 1201 x 1201), got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT left(e::text, 200) INTO v_bad
      FROM jsonb_array_elements(tiles) e
     WHERE jsonb_typeof(e -> 'object_key') <> 'string' OR length(e ->> 'object_key') NOT BETWEEN 1 AND 1024
        OR (e ->> 'object_key') ~ '[\u0001-\u001f\u007f-\u009f]'
     LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile object_key must be 1 to 1024 characters without control characters, got %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e ->> 'tile' INTO v_bad FROM jsonb_array_elements(tiles) e GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'tile % is given more than once', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT (e ->> 'bytes')::bigint ORDER BY (e ->> 'bytes')::bigint) INTO v_sizes
      FROM jsonb_array_elements(tiles) e;
    IF cardinality(v_sizes) > 1 THEN
        RAISE EXCEPTION 'a terrain set has one resolution: its tiles mix SRTM1 (25934402 bytes) and SRTM3 (2884802 bytes)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT encode(sha256(convert_to(string_agg((e ->> 'tile') || ' ' || (e ->> 'sha256'), E'\n'
                                               ORDER BY e ->> 'tile'), 'UTF8')), 'hex'),
           count(*)
      INTO v_digest, v_count
      FROM jsonb_array_elements(tiles) e;

    INSERT INTO heimdall.terrain_sets AS s (name, resolution_arcsec, sha256, num_tiles, lat_min, lat_max,
                                            lon_min, lon_max, bytes)
    SELECT register_terrain_set.name, CASE WHEN v_sizes[1] = 25934402 THEN 1 ELSE 3 END, v_digest, v_count,
           min(c.lat), max(c.lat) + 1, min(c.lon), max(c.lon) + 1, v_sizes[1] * v_count
      FROM (SELECT CASE WHEN left(e ->> 'tile', 1) = 'N' THEN 1 ELSE -1 END * substr(e ->> 'tile', 2, 2)::int AS lat,
                   CASE WHEN substr(e ->> 'tile', 4, 1) = 'E' THEN 1 ELSE -1 END * substr(e ->> 'tile', 5, 3)::int AS lon
              FROM jsonb_array_elements(tiles) e) c
    ON CONFLICT ON CONSTRAINT terrain_sets_pkey DO NOTHING
    RETURNING s.name INTO v_inserted;

    IF v_inserted IS NULL THEN
        SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = register_terrain_set.name;
        IF v_set.sha256 <> v_digest THEN
            RAISE EXCEPTION 'terrain set "%" exists with other tiles (sha256 %, these tiles give %): a terrain set is immutable',
                    register_terrain_set.name, v_set.sha256, v_digest
                USING ERRCODE = 'unique_violation', HINT = 'import these tiles under a new name';
        END IF;
        RETURN to_jsonb(v_set) - 'created_by' - 'created_at' || jsonb_build_object('created', false);
    END IF;

    INSERT INTO heimdall.terrain_tiles (set_name, tile, lat, lon, sha256, bytes, object_key)
    SELECT register_terrain_set.name, e ->> 'tile',
           CASE WHEN left(e ->> 'tile', 1) = 'N' THEN 1 ELSE -1 END * substr(e ->> 'tile', 2, 2)::int,
           CASE WHEN substr(e ->> 'tile', 4, 1) = 'E' THEN 1 ELSE -1 END * substr(e ->> 'tile', 5, 3)::int,
           e ->> 'sha256', (e ->> 'bytes')::bigint, e ->> 'object_key'
      FROM jsonb_array_elements(tiles) e;
    SELECT * INTO v_set FROM heimdall.terrain_sets s WHERE s.name = register_terrain_set.name;
    INSERT INTO heimdall.audit_log (dataset_id, action, detail)
    VALUES (NULL, 'terrain_import', jsonb_build_object('terrain_set', v_set.name, 'sha256', v_set.sha256,
                                                       'num_tiles', v_set.num_tiles,
                                                       'resolution_arcsec', v_set.resolution_arcsec));
    RETURN to_jsonb(v_set) - 'created_by' - 'created_at' || jsonb_build_object('created', true);
END;
$$;

COMMENT ON FUNCTION heimdall.register_terrain_set(text, jsonb) IS
    'Admin: register an immutable terrain set (SRTM tiles already in the object store) (errors: 22023, 23505).';
