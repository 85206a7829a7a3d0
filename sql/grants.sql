-- Roles and privileges. Tables are private; the functions are the API.
--   heimdall_reader - SELECT on tables and views (analysts, training jobs)
--   heimdall_worker - claim/extend/release/fail/complete chunks, insert sample rows
--   heimdall_admin  - reader + worker + create/expand/pause/resume/abandon/retry/delete
--                     and repair (sets num_samples to the true count)
-- Roles are cluster-wide: created if missing, never dropped by a downgrade.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_reader') THEN
        CREATE ROLE heimdall_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_worker') THEN
        CREATE ROLE heimdall_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heimdall_admin') THEN
        CREATE ROLE heimdall_admin NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA heimdall FROM PUBLIC;

GRANT USAGE ON SCHEMA heimdall TO heimdall_reader, heimdall_worker, heimdall_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA heimdall TO heimdall_reader, heimdall_admin;
GRANT EXECUTE ON FUNCTION heimdall.normalize_config(jsonb) TO heimdall_reader, heimdall_worker, heimdall_admin;

-- The worker needs nothing else: its functions are SECURITY DEFINER, COPY needs INSERT,
-- and `--until-idle` counts open chunks.
GRANT SELECT ON heimdall.generation_chunks TO heimdall_worker;
GRANT INSERT ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_worker;
GRANT EXECUTE ON FUNCTION
    heimdall.claim_chunk(text, integer, integer),
    heimdall.begin_chunk_commit(bigint),
    heimdall.complete_chunk(bigint, bigint, text),
    heimdall.extend_chunk(bigint, bigint, integer),
    heimdall.release_chunk(bigint, bigint),
    heimdall.fail_chunk(bigint, bigint, text, boolean, integer)
TO heimdall_worker;

GRANT heimdall_reader TO heimdall_admin;
GRANT heimdall_worker TO heimdall_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA heimdall TO heimdall_admin;
GRANT UPDATE (num_samples, name) ON heimdall.synthetic_datasets TO heimdall_admin;
GRANT DELETE ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_admin;
