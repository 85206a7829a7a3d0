-- heimdall.tg_datasets_before_delete() - BEFORE DELETE row trigger on synthetic_datasets
--
-- Purpose: whoever deletes a dataset (delete_dataset() or a raw DELETE), its queue
--   messages are withdrawn and its object prefix is recorded for the object-store GC, in
--   the same transaction (a rolled-back delete records nothing).
CREATE OR REPLACE FUNCTION heimdall.tg_datasets_before_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_msgs bigint[];
BEGIN
    SELECT array_agg(c.msg_id) INTO v_msgs FROM heimdall.generation_chunks c
     WHERE c.dataset_id = OLD.id AND c.msg_id IS NOT NULL;
    IF v_msgs IS NOT NULL THEN
        PERFORM pgmq.delete(heimdall.queue_name(), v_msgs);
    END IF;
    INSERT INTO heimdall.deleted_datasets (dataset_id, name, dataset_type, object_prefix)
    VALUES (OLD.id, OLD.name, OLD.dataset_type, 'datasets/' || OLD.id || '/')
    ON CONFLICT (dataset_id) DO NOTHING;
    RETURN OLD;
END;
$$;
