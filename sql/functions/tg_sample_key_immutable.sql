-- heimdall.tg_sample_key_immutable() - BEFORE UPDATE OF dataset_id, sample_idx trigger on
--   measurement_features and synthetic_iq_samples
--
-- Purpose: a sample's key never moves (moving it would bypass the reservation and
--   pairing checks). Errors: 23514 check_violation.
CREATE OR REPLACE FUNCTION heimdall.tg_sample_key_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    IF NEW.dataset_id IS DISTINCT FROM OLD.dataset_id OR NEW.sample_idx IS DISTINCT FROM OLD.sample_idx THEN
        RAISE EXCEPTION '%: (dataset_id, sample_idx) of sample % of dataset % cannot change',
                TG_TABLE_NAME, OLD.sample_idx, OLD.dataset_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
