-- heimdall.create_dataset(name, dataset_type, config, seed, num_samples) -> uuid
--
-- Purpose: create a dataset with a complete, normalized, immutable config and, if
--   num_samples > 0, request that many samples (exactly as expand_dataset does).
-- Parameters: name - unique, trimmed, 1..200 chars, no control characters, not readable
--   as a uuid (references that parse as a uuid are ids); dataset_type - 'feature_based'
--   or 'iq_raw'; config - partial config (see normalize_config); seed - generation seed, a
--   whole number 0 .. 2^63-1 (NULL: chosen at random and stored); num_samples - samples
--   to request now, a whole number 0 .. 10,000,000. Seed and count are numeric so any
--   number a client sends gets a clear error.
-- Returns: the new dataset id.
-- Errors: 22023 bad name / type / config / seed / num_samples; 22003 num_samples too
--   large or too many chunks;
--   23505 a dataset with that name exists (never silently appends to it).
-- Locks: inserts the dataset row. Not idempotent: a second call with the same name fails.
CREATE OR REPLACE FUNCTION heimdall.create_dataset(
    name text,
    dataset_type text,
    config jsonb DEFAULT '{}',
    seed numeric DEFAULT NULL,
    num_samples numeric DEFAULT 0
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_id        uuid;
    v_existing  uuid;
    v_request   uuid;
    v_samples   bigint;
    v_seed      bigint;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'dataset name must be 1 to 200 characters, got %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dataset_type IS NULL OR dataset_type NOT IN ('feature_based', 'iq_raw') THEN
        RAISE EXCEPTION 'dataset_type must be ''feature_based'' or ''iq_raw'', got %', coalesce(quote_literal(dataset_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION 'dataset name must not contain control characters (newline, tab, escape...), got %',
                quote_literal(regexp_replace(name, '[\u0001-\u001f\u007f-\u009f]', '?', 'g'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lower(translate(name, '{}-', '')) ~ '^(urn:uuid:)?[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'dataset name must not read as a uuid (references that parse as a uuid are ids), got %',
                quote_literal(name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_samples := heimdall.integer_arg(create_dataset.num_samples, 'num_samples', 0, 10000000, '22003');
    IF create_dataset.seed IS NOT NULL THEN
        v_seed := heimdall.integer_arg(create_dataset.seed, 'seed', 0, 9223372036854775807);
    END IF;

    INSERT INTO heimdall.synthetic_datasets AS d (name, dataset_type, config, seed)
    VALUES (btrim(create_dataset.name), create_dataset.dataset_type,
            heimdall.normalize_config(create_dataset.config),
            -- 62 random bits: a positive bigint that survives any JSON/float round trip
            coalesce(v_seed, ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint & 4611686018427387903))
    ON CONFLICT ON CONSTRAINT synthetic_datasets_name_key DO NOTHING
    RETURNING d.id INTO v_id;

    IF v_id IS NULL THEN
        SELECT d.id INTO v_existing FROM heimdall.synthetic_datasets d WHERE d.name = btrim(create_dataset.name);
        RAISE EXCEPTION 'dataset named "%" already exists (id %)', btrim(create_dataset.name), v_existing
            USING ERRCODE = 'unique_violation',
                  HINT = 'use heimdall.expand_dataset(id, n) to add samples to it';
    END IF;

    IF v_samples > 0 THEN
        SELECT heimdall.create_request(v_id, 'create', r.first_idx, r.last_idx) INTO v_request
          FROM heimdall.reserve_samples(v_id, v_samples) r;
    END IF;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.create_dataset(text, text, jsonb, numeric, numeric) IS
    'Create a dataset (normalized config, seed) and optionally request its first samples.';
