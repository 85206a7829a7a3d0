-- heimdall.tg_features_need_iq() - DEFERRED constraint trigger, AFTER INSERT on
--   measurement_features, per row
--
-- Purpose: at commit, a feature row of an iq_raw dataset must have its IQ row (the FK
--   gives the reverse direction). Checked at commit, so a worker may insert features
--   first and IQ rows next in the same transaction.
-- Errors: 23514 check_violation naming dataset and sample_idx.
CREATE OR REPLACE FUNCTION heimdall.tg_features_need_iq()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM heimdall.synthetic_datasets d
                WHERE d.id = NEW.dataset_id AND d.dataset_type = 'iq_raw')
       AND EXISTS (SELECT 1 FROM heimdall.measurement_features f
                    WHERE f.dataset_id = NEW.dataset_id AND f.sample_idx = NEW.sample_idx)
       AND NOT EXISTS (SELECT 1 FROM heimdall.synthetic_iq_samples q
                        WHERE q.dataset_id = NEW.dataset_id AND q.sample_idx = NEW.sample_idx) THEN
        RAISE EXCEPTION 'iq_raw dataset %: sample % has a feature row but no IQ row', NEW.dataset_id, NEW.sample_idx
            USING ERRCODE = 'check_violation',
                  HINT = 'insert the feature and IQ rows of a sample in the same transaction';
    END IF;
    RETURN NULL;
END;
$$;
