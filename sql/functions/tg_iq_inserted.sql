-- heimdall.tg_iq_inserted() - AFTER INSERT statement trigger on synthetic_iq_samples
--   (transition table `changed`)
--
-- Purpose: feature_based datasets have no IQ rows.
-- Errors: 23514 check_violation naming the dataset.
CREATE OR REPLACE FUNCTION heimdall.tg_iq_inserted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_id uuid;
BEGIN
    SELECT d.id INTO v_id FROM heimdall.synthetic_datasets d
     WHERE d.dataset_type <> 'iq_raw' AND d.id IN (SELECT DISTINCT dataset_id FROM changed) LIMIT 1;
    IF v_id IS NOT NULL THEN
        RAISE EXCEPTION 'dataset % is feature_based: it cannot have IQ rows', v_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
