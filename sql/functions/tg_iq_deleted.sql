-- heimdall.tg_iq_deleted() - DEFERRED constraint trigger, AFTER DELETE on
--   synthetic_iq_samples, per row
--
-- Purpose: at commit, deleting an IQ row must not leave its feature row behind (the old
--   repair did exactly that). Delete the feature row instead (it cascades to the IQ row).
-- Errors: 23514 check_violation naming dataset and sample_idx.
CREATE OR REPLACE FUNCTION heimdall.tg_iq_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM heimdall.measurement_features f
                WHERE f.dataset_id = OLD.dataset_id AND f.sample_idx = OLD.sample_idx)
       AND NOT EXISTS (SELECT 1 FROM heimdall.synthetic_iq_samples q
                        WHERE q.dataset_id = OLD.dataset_id AND q.sample_idx = OLD.sample_idx) THEN
        RAISE EXCEPTION 'iq_raw dataset %: deleting the IQ row of sample % would leave its feature row without IQ',
                OLD.dataset_id, OLD.sample_idx
            USING ERRCODE = 'check_violation',
                  HINT = 'delete the feature row (cascades) or repair by regenerating the sample';
    END IF;
    RETURN NULL;
END;
$$;
