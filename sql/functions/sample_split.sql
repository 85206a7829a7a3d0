-- heimdall.sample_split(dataset_id uuid, sample_idx integer) -> text
--
-- Purpose: the split ('train', 'val' or 'test') of one sample of a dataset: heimdall.split_of
--   with the dataset's seed and the "splits" of its stored config (0.8 / 0.1 / 0.1 for a
--   config stored before revision 0003). Defined for every index, committed or not: the
--   split of a sample a later expansion will generate is already fixed. For many samples
--   read heimdall.sample_splits (committed samples) or call split_of with the seed and
--   config once (as the exporter and the training loader do).
-- Parameters: dataset_id - the dataset; sample_idx - the index (>= 0).
-- Returns: the split; NULL for an unknown dataset, a NULL argument or a negative index.
-- Errors: none. Reads synthetic_datasets as the caller (heimdall_reader may).
-- Locks: none. STABLE.
CREATE OR REPLACE FUNCTION heimdall.sample_split(dataset_id uuid, sample_idx integer)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
BEGIN
    -- plpgsql (not sql): built before split_of.sql, whose function it calls
    RETURN (SELECT heimdall.split_of(d.seed, sample_split.sample_idx, d.config -> 'splits')
              FROM heimdall.synthetic_datasets d
             WHERE d.id = sample_split.dataset_id);
END;
$$;

COMMENT ON FUNCTION heimdall.sample_split(uuid, integer) IS
    'Stable split (train/val/test) of one sample of a dataset (heimdall.split_of with its seed and config).';
