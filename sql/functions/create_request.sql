-- heimdall.create_request(dataset_id uuid, kind text, first_idx integer, last_idx integer) -> uuid
--   (internal)
--
-- Purpose: the one place a generation request becomes work: record the request, split
--   first_idx..last_idx into chunks of the dataset's config.chunk_size ('generate' chunks
--   for create/expand, 'repair' chunks for repair) and enqueue one message per chunk.
--   Callers (expand_dataset, enqueue_repair) own the checks on the range and the locks.
-- Parameters: dataset_id; kind - 'create', 'expand' or 'repair'; first_idx..last_idx.
-- Returns: the request id.
-- Errors: 22003 the range would make more than 100,000 chunks (one request stays a
--   bounded amount of work and of queue messages; use a larger chunk_size or several
--   requests); 23514 via the table checks if the range is empty or negative.
CREATE OR REPLACE FUNCTION heimdall.create_request(dataset_id uuid, kind text, first_idx integer, last_idx integer)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_chunk     integer;
    v_request   uuid;
BEGIN
    SELECT (d.config ->> 'chunk_size')::integer INTO v_chunk
      FROM heimdall.synthetic_datasets d WHERE d.id = create_request.dataset_id;
    IF (create_request.last_idx::bigint - create_request.first_idx + v_chunk) / v_chunk > 100000 THEN
        RAISE EXCEPTION 'dataset %: % samples in chunks of % would make % chunks; at most 100000 per request',
                create_request.dataset_id, create_request.last_idx::bigint - create_request.first_idx + 1, v_chunk,
                (create_request.last_idx::bigint - create_request.first_idx + v_chunk) / v_chunk
            USING ERRCODE = 'numeric_value_out_of_range',
                  HINT = 'request fewer samples at a time, or create the dataset with a larger chunk_size';
    END IF;

    INSERT INTO heimdall.generation_requests AS r (dataset_id, kind, first_idx, last_idx, chunk_size)
    VALUES (create_request.dataset_id, create_request.kind, create_request.first_idx, create_request.last_idx, v_chunk)
    RETURNING r.id INTO v_request;

    INSERT INTO heimdall.generation_chunks (request_id, dataset_id, kind, first_idx, last_idx)
    SELECT v_request, create_request.dataset_id,
           CASE WHEN create_request.kind = 'repair' THEN 'repair' ELSE 'generate' END,
           s::integer, least(s + v_chunk - 1, create_request.last_idx)::integer
      -- bigint: the last chunk of a range ending near 2^31 - 1 must not overflow
      FROM generate_series(create_request.first_idx::bigint, create_request.last_idx::bigint, v_chunk) AS s;

    PERFORM heimdall.enqueue_chunks(ARRAY(
        SELECT c.id FROM heimdall.generation_chunks c WHERE c.request_id = v_request ORDER BY c.first_idx));
    RETURN v_request;
END;
$$;

COMMENT ON FUNCTION heimdall.create_request(uuid, text, integer, integer) IS
    'Internal: record a request, split it into chunks, enqueue one message per chunk.';
