-- Roles and privileges: least privilege, each role exactly what it needs.
--   heimdall_reader - SELECT on the tables and views (analysts, training jobs); not the
--                     trust key, not the claim tokens. Executes normalize_config only.
--   heimdall_worker - no table privilege at all: the worker protocol functions only
--                     (claim/extend/release/fail/begin_chunk_commit/complete_chunk,
--                     work_in_flight). Rows reach the sample tables only through
--                     complete_chunk, which checks they lie in the chunk the worker claimed.
--   heimdall_admin  - reader + worker + the admin API (create/expand/pause/resume/abandon/
--                     retry/delete, validate, repair, gc bookkeeping, baseline runs); may rename a dataset,
--                     set num_samples to the true count, delete sample rows.
--   PUBLIC          - nothing. Internal functions (create_request, enqueue_chunks,
--                     lock_claimed_chunk, prepare_staging, queue_*, integer_arg,
--                     staged_columns, tg_*) are executable by no heimdall role.
-- This file is part of the replaceable set: a migration replays it after dropping and
-- recreating the functions, so it first takes back whatever the roles held.
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

REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM PUBLIC, heimdall_reader, heimdall_worker, heimdall_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA heimdall FROM PUBLIC, heimdall_reader, heimdall_worker, heimdall_admin;
-- Functions a later migration creates are not executable by PUBLIC until granted here.
-- (PostgreSQL grants EXECUTE to PUBLIC by a global default that a per-schema default
-- cannot take back, so this is the owner's global default in this database.)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA heimdall TO heimdall_reader, heimdall_worker, heimdall_admin;

-- reader: every table and view, except the trust key and the claim tokens (a token is
-- the capability to act on a claimed chunk).
GRANT SELECT ON ALL TABLES IN SCHEMA heimdall TO heimdall_reader;
REVOKE SELECT ON heimdall.trust_key, heimdall.generation_chunks FROM heimdall_reader;
DO $$
BEGIN
    EXECUTE format('GRANT SELECT (%s) ON heimdall.generation_chunks TO heimdall_reader',
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                      FROM pg_attribute a
                     WHERE a.attrelid = 'heimdall.generation_chunks'::regclass AND a.attnum > 0
                       AND NOT a.attisdropped AND a.attname <> 'claim_token'));
END
$$;
GRANT EXECUTE ON FUNCTION heimdall.normalize_config(jsonb), heimdall.stuck_after_s()
    TO heimdall_reader, heimdall_worker;
-- terrain sets (issue 11): a worker loads the set its config names; anyone may list them
GRANT EXECUTE ON FUNCTION heimdall.terrain_set(text) TO heimdall_reader, heimdall_worker;
GRANT EXECUTE ON FUNCTION heimdall.list_terrain_sets() TO heimdall_reader;
-- stable splits (issue 13): whoever reads the samples may ask for their split
GRANT EXECUTE ON FUNCTION heimdall.split_of(bigint, integer, jsonb), heimdall.sample_split(uuid, integer)
    TO heimdall_reader;

-- worker
GRANT EXECUTE ON FUNCTION
    heimdall.claim_chunk(text, integer, integer, text),
    heimdall.extend_chunk(bigint, uuid, integer),
    heimdall.release_chunk(bigint, uuid),
    heimdall.fail_chunk(bigint, uuid, text, boolean, integer),
    heimdall.begin_chunk_commit(bigint, uuid),
    heimdall.complete_chunk(bigint, uuid, text),
    heimdall.work_in_flight()
TO heimdall_worker;

-- admin
GRANT heimdall_reader TO heimdall_admin;
GRANT heimdall_worker TO heimdall_admin;
GRANT EXECUTE ON FUNCTION
    heimdall.create_dataset(text, text, jsonb, numeric, numeric),
    heimdall.expand_dataset(uuid, numeric),
    heimdall.reserve_samples(uuid, numeric),
    heimdall.delete_dataset(uuid),
    heimdall.pause_request(uuid),
    heimdall.resume_request(uuid),
    heimdall.abandon_request(uuid),
    heimdall.retry_failed_chunks(uuid),
    heimdall.validate_dataset(uuid, jsonb, integer),
    heimdall.repair_num_samples(uuid),
    heimdall.enqueue_repair(uuid, integer, integer, text),
    heimdall.release_stuck_chunks(uuid, integer),
    heimdall.repair_queue(uuid),
    heimdall.record_object_deletion(uuid, text, text[], jsonb),
    heimdall.mark_gc_done(uuid),
    heimdall.register_terrain_set(text, jsonb)
TO heimdall_admin;
-- baseline runs (issue 13): recording a run writes the run history, like validate_dataset
-- writes the health report: admin. Anyone who reads the data (reader) can compute the
-- baseline (`heimdall-synth baseline --no-store`) and read the recorded runs (SELECT on
-- heimdall.baseline_runs, granted with every table above).
GRANT EXECUTE ON FUNCTION heimdall.record_baseline_run(uuid, numeric, numeric, text, jsonb) TO heimdall_admin;
GRANT UPDATE (num_samples, name) ON heimdall.synthetic_datasets TO heimdall_admin;
GRANT DELETE ON heimdall.measurement_features, heimdall.synthetic_iq_samples TO heimdall_admin;
