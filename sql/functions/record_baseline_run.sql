-- heimdall.record_baseline_run(dataset_id uuid, first_idx numeric, last_idx numeric,
--                              solver_version text, figures jsonb) -> bigint
--
-- Purpose: record one run of the classical baseline localizer (`heimdall-synth baseline`,
--   issue 13) over samples first_idx..last_idx of a dataset: the figures it reached (the
--   number a localization model must beat), with the dataset's generator version (taken
--   from the dataset, not from the caller) and the solver's version. The dataset card
--   quotes the latest run.
-- Parameters: dataset_id; first_idx, last_idx - inclusive sample indices, whole numbers,
--   0 <= first_idx <= last_idx <= 2147483646, every index of which has a feature row (the
--   run scored committed samples only); solver_version - 1 to 100 characters without
--   control characters (heimdall_synth.baseline.SOLVER_VERSION); figures - a JSON object of
--   at most 1 MB (heimdall_synth.baseline.summarize: fraction_solved, status counts,
--   overall / by_gdop / by_receivers CEP50, CEP90, RMSE in metres, plus the run's settings).
-- Returns: the new run's id (heimdall.baseline_runs.id).
-- Errors: P0002 no_data_found - unknown dataset; 22023 invalid_parameter_value - a bad
--   index (not a whole number, negative, last before first), a range with uncommitted
--   samples (the message gives how many exist), a bad solver_version, figures not an
--   object or larger than 1 MB.
-- Locks: none beyond the key-share lock the foreign key takes on the dataset row (a
--   concurrent delete_dataset waits for this transaction).
-- Idempotent: no; every call records a new run (runs are a history).
CREATE OR REPLACE FUNCTION heimdall.record_baseline_run(dataset_id uuid, first_idx numeric, last_idx numeric,
                                                        solver_version text, figures jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    d        heimdall.synthetic_datasets;
    v_first  bigint;
    v_last   bigint;
    v_rows   bigint;
    v_id     bigint;
BEGIN
    d := heimdall.dataset_row(record_baseline_run.dataset_id);
    v_first := heimdall.integer_arg(record_baseline_run.first_idx, 'first_idx', 0, 2147483646);
    v_last := heimdall.integer_arg(record_baseline_run.last_idx, 'last_idx', 0, 2147483646);
    IF v_last < v_first THEN
        RAISE EXCEPTION 'last_idx (%) must be >= first_idx (%)', v_last, v_first
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF record_baseline_run.solver_version IS NULL OR length(record_baseline_run.solver_version) NOT BETWEEN 1 AND 100
       OR record_baseline_run.solver_version ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RAISE EXCEPTION 'solver_version must be 1 to 100 characters without control characters, got %',
                coalesce(quote_literal(left(record_baseline_run.solver_version, 120)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF record_baseline_run.figures IS NULL OR jsonb_typeof(record_baseline_run.figures) <> 'object' THEN
        RAISE EXCEPTION 'figures must be a JSON object, got %', coalesce(left(record_baseline_run.figures::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_column_size(record_baseline_run.figures) > 1048576 THEN
        RAISE EXCEPTION 'figures must be at most 1 MB, got % bytes', pg_column_size(record_baseline_run.figures)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) INTO v_rows FROM heimdall.measurement_features f
     WHERE f.dataset_id = d.id AND f.sample_idx BETWEEN v_first AND v_last;
    IF v_rows <> v_last - v_first + 1 THEN
        RAISE EXCEPTION 'samples %..% of dataset % are not all committed: % of % exist', v_first, v_last, d.name,
                v_rows, v_last - v_first + 1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO heimdall.baseline_runs (dataset_id, first_idx, last_idx, generator_version, solver_version, figures)
    VALUES (d.id, v_first, v_last, d.generator_version, record_baseline_run.solver_version,
            record_baseline_run.figures)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;

COMMENT ON FUNCTION heimdall.record_baseline_run(uuid, numeric, numeric, text, jsonb) IS
    'Admin: record a baseline localization run and its figures (errors: P0002, 22023).';
