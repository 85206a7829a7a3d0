-- heimdall.expand_dataset(dataset_id uuid, n numeric) -> uuid
--
-- Purpose: request n more samples for a dataset. In the caller's transaction: reserve
--   the next n indices, record a generation request, split the range into chunks of the
--   dataset's config.chunk_size, and enqueue one pgmq message per chunk (queue
--   'heimdall_chunks'). Workers pick the messages up after commit.
-- Parameters: dataset_id; n - samples to add, a whole number 1 .. 10,000,000.
-- Returns: the request id (see heimdall.request_progress).
-- Errors: as reserve_samples (P0002 unknown dataset, 22023 n not whole or <= 0, 22003 n
--   too large or past the largest index) and create_request (22003 too many chunks).
-- Locks: the dataset row until commit (via reserve_samples).
-- Idempotency: none; every call adds n samples. A rolled-back call leaves nothing behind.
CREATE OR REPLACE FUNCTION heimdall.expand_dataset(dataset_id uuid, n numeric)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    v_first     integer;
    v_last      integer;
BEGIN
    SELECT r.first_idx, r.last_idx INTO v_first, v_last
    FROM heimdall.reserve_samples(expand_dataset.dataset_id, expand_dataset.n) r;
    RETURN heimdall.create_request(expand_dataset.dataset_id, 'expand', v_first, v_last);
END;
$$;

COMMENT ON FUNCTION heimdall.expand_dataset(uuid, numeric) IS
    'Reserve n more indices, record the request, split into chunks, enqueue one message per chunk.';
