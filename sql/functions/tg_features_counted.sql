-- heimdall.tg_features_counted() - AFTER INSERT / AFTER DELETE statement trigger on
--   measurement_features (transition table `changed`)
--
-- Purpose: keep synthetic_datasets.num_samples equal to the feature row count, once per
--   statement (COPY of a whole chunk = one UPDATE per dataset), and on insert check that
--   every sample_idx lies in the dataset's reserved range [0, next_idx).
-- Errors: 23514 check_violation naming the dataset and the first offending index.
-- Trust: the num_samples guard (tg_datasets_guard) lets this trigger's UPDATE through
--   without recounting every row because it runs with the transaction-local setting
--   heimdall.count_key equal to the secret in heimdall.trust_key, which no heimdall role
--   can read; the setting is cleared right after the UPDATE, so no other code ever sees it.
--   (A depth test such as pg_trigger_depth() > 1 could be met by any caller's own trigger.)
-- Locks: the dataset row (the UPDATE), which also serialises against reserve_samples.
CREATE OR REPLACE FUNCTION heimdall.tg_features_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    PERFORM set_config('heimdall.count_key', (SELECT k.key FROM heimdall.trust_key k), true);
    IF TG_OP = 'INSERT' THEN
        WITH n AS (SELECT dataset_id, count(*) AS cnt, max(sample_idx) AS max_idx
                     FROM changed GROUP BY dataset_id),
             upd AS (UPDATE heimdall.synthetic_datasets d
                        SET num_samples = d.num_samples + n.cnt
                       FROM n WHERE d.id = n.dataset_id
                     RETURNING d.id, d.next_idx, n.max_idx)
        SELECT * INTO bad FROM upd WHERE upd.max_idx >= upd.next_idx LIMIT 1;
        PERFORM set_config('heimdall.count_key', '', true);
        IF bad.id IS NOT NULL THEN
            RAISE EXCEPTION 'dataset %: sample_idx % lies outside its reserved range [0, %)',
                    bad.id, bad.max_idx, bad.next_idx
                USING ERRCODE = 'check_violation',
                      HINT = 'indices come from heimdall.reserve_samples / expand_dataset';
        END IF;
    ELSE
        UPDATE heimdall.synthetic_datasets d
           SET num_samples = d.num_samples - n.cnt
          FROM (SELECT dataset_id, count(*) AS cnt FROM changed GROUP BY dataset_id) n
         WHERE d.id = n.dataset_id;
        PERFORM set_config('heimdall.count_key', '', true);
    END IF;
    RETURN NULL;
END;
$$;
