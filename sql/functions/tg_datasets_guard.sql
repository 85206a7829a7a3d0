-- heimdall.tg_datasets_guard() - BEFORE UPDATE trigger on synthetic_datasets
--
-- Purpose: keep what defines a dataset immutable and its counters honest, for every
--   client: id, dataset_type, config, seed, config_version, created_* never change;
--   generator_version is set once; num_samples changes only through the feature-row
--   triggers (proved by a secret marker, not by trigger depth) or to the true feature
--   count, which is what repair does; next_idx only
--   grows, except when abandon_request gives back a tail that holds no rows and no live
--   chunk. Errors: 23514 check_violation naming the dataset and column.
CREATE OR REPLACE FUNCTION heimdall.tg_datasets_guard()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.dataset_type IS DISTINCT FROM OLD.dataset_type
       OR NEW.config IS DISTINCT FROM OLD.config OR NEW.seed IS DISTINCT FROM OLD.seed
       OR NEW.config_version IS DISTINCT FROM OLD.config_version
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'dataset %: id, dataset_type, config, seed and config_version are immutable', OLD.id
            USING ERRCODE = 'check_violation',
                  HINT = 'create a new dataset with the config you want';
    END IF;
    IF OLD.generator_version IS NOT NULL AND NEW.generator_version IS DISTINCT FROM OLD.generator_version THEN
        RAISE EXCEPTION 'dataset %: generator_version is % and cannot change', OLD.id, OLD.generator_version
            USING ERRCODE = 'check_violation';
    END IF;
    -- Only the feature-row counting trigger may move num_samples without a recount: it
    -- alone knows the secret it puts in the transaction-local heimdall.count_key (see
    -- tg_features_counted). Anything else, from any depth, must set the true count.
    IF NEW.num_samples IS DISTINCT FROM OLD.num_samples
       AND coalesce(current_setting('heimdall.count_key', true), '') IS DISTINCT FROM
           (SELECT k.key FROM heimdall.trust_key k) THEN
        SELECT count(*) INTO v_count FROM heimdall.measurement_features f WHERE f.dataset_id = OLD.id;
        IF NEW.num_samples <> v_count THEN
            RAISE EXCEPTION 'dataset %: num_samples can only equal the number of feature rows (%), not %',
                    OLD.id, v_count, NEW.num_samples
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.next_idx < OLD.next_idx THEN
        IF EXISTS (SELECT 1 FROM heimdall.measurement_features f
                    WHERE f.dataset_id = OLD.id AND f.sample_idx >= NEW.next_idx)
           OR EXISTS (SELECT 1 FROM heimdall.generation_chunks c
                       WHERE c.dataset_id = OLD.id AND c.last_idx >= NEW.next_idx AND c.state <> 'abandoned') THEN
            RAISE EXCEPTION 'dataset %: cannot lower next_idx from % to %: indices above it are committed or in work',
                    OLD.id, OLD.next_idx, NEW.next_idx
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
