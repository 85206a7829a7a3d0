-- heimdall.create_dataset(name, dataset_type, config, seed, num_samples) -> uuid
--
-- Purpose: create a dataset with a complete, normalized, immutable config and, if
--   num_samples > 0, request that many samples (exactly as expand_dataset does).
-- Parameters: name - unique, trimmed, 1..200 chars; dataset_type - 'feature_based' or
--   'iq_raw'; config - partial config (see normalize_config); seed - generation seed
--   (NULL: chosen at random and stored); num_samples - samples to request now (>= 0).
-- Returns: the new dataset id.
-- Errors: 22023 bad name / type / config / num_samples < 0; 22003 num_samples too large;
--   23505 a dataset with that name exists (never silently appends to it).
-- Locks: inserts the dataset row. Not idempotent: a second call with the same name fails.
CREATE OR REPLACE FUNCTION heimdall.create_dataset(
    name text,
    dataset_type text,
    config jsonb DEFAULT '{}',
    seed bigint DEFAULT NULL,
    num_samples integer DEFAULT 0
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall
AS $$
DECLARE
    v_id        uuid;
    v_existing  uuid;
    v_request   uuid;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'dataset name must be 1 to 200 characters, got %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dataset_type IS NULL OR dataset_type NOT IN ('feature_based', 'iq_raw') THEN
        RAISE EXCEPTION 'dataset_type must be ''feature_based'' or ''iq_raw'', got %', coalesce(quote_literal(dataset_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF num_samples IS NULL OR num_samples < 0 THEN
        RAISE EXCEPTION 'num_samples must be >= 0, got %', coalesce(num_samples::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO heimdall.synthetic_datasets AS d (name, dataset_type, config, seed)
    VALUES (btrim(create_dataset.name), create_dataset.dataset_type,
            heimdall.normalize_config(create_dataset.config),
            -- 62 random bits: a positive bigint that survives any JSON/float round trip
            coalesce(create_dataset.seed, ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint & 4611686018427387903))
    ON CONFLICT ON CONSTRAINT synthetic_datasets_name_key DO NOTHING
    RETURNING d.id INTO v_id;

    IF v_id IS NULL THEN
        SELECT d.id INTO v_existing FROM heimdall.synthetic_datasets d WHERE d.name = btrim(create_dataset.name);
        RAISE EXCEPTION 'dataset named "%" already exists (id %)', btrim(create_dataset.name), v_existing
            USING ERRCODE = 'unique_violation',
                  HINT = 'use heimdall.expand_dataset(id, n) to add samples to it';
    END IF;

    IF create_dataset.num_samples > 0 THEN
        SELECT heimdall.create_request(v_id, 'create', r.first_idx, r.last_idx) INTO v_request
          FROM heimdall.reserve_samples(v_id, create_dataset.num_samples) r;
    END IF;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.create_dataset(text, text, jsonb, bigint, integer) IS
    'Create a dataset (normalized config, seed) and optionally request its first samples.';
