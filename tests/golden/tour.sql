-- Golden test of the SQL API as a psql user sees it (tests/golden/test_golden.py runs this
-- file with psql -a and compares the output with tour.out; uuids and times are masked).
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT heimdall.create_dataset('golden', 'iq_raw', '{"chunk_size": 4, "max_gdop": 5}', 42, 10) AS ds \gset
SELECT name, dataset_type, seed, num_samples, next_idx, config->>'max_gdop' AS max_gdop FROM heimdall.synthetic_datasets;
SELECT first_idx, last_idx, state, msg_id FROM heimdall.generation_chunks ORDER BY first_idx;
SELECT * FROM heimdall.reserve_samples(:'ds', 3);
SELECT first_idx, last_idx FROM heimdall.generation_requests ORDER BY first_idx;
SELECT chunk_id, claim_token AS token, dataset_type, kind, first_idx, last_idx, seed, attempt FROM heimdall.claim_chunk('golden-worker', 30, 5, 'golden-v1') \gset
SELECT state, attempts, claimed_by FROM heimdall.generation_chunks WHERE id = 1;
SELECT heimdall.release_chunk(1, gen_random_uuid());  -- not the claim's token: HS001, nothing happens
SELECT heimdall.release_chunk(1, :'token');           -- the claim: chunk pending again, message visible
SELECT heimdall.pause_request(id) FROM heimdall.generation_requests;
SELECT state, count(*) FROM heimdall.generation_chunks GROUP BY state ORDER BY state;
SELECT heimdall.resume_request(id) FROM heimdall.generation_requests;
SELECT name, num_samples, reserved, feature_rows, iq_rows, pending_chunks, ready_prefix, status FROM heimdall.dataset_health;
SELECT kind, first_idx, last_idx, num_samples, chunks_total, chunks_done, state FROM heimdall.request_progress;
SELECT heimdall.validate_dataset(:'ds') -> 'issues' AS issues;
-- errors, each with its SQLSTATE
\set VERBOSITY sqlstate
SELECT heimdall.create_dataset('golden', 'iq_raw');
\set VERBOSITY default
SELECT heimdall.create_dataset('golden', 'iq_raw');
SELECT heimdall.expand_dataset(:'ds', 0);
SELECT heimdall.expand_dataset('00000000-0000-0000-0000-000000000000', 5);
SELECT heimdall.normalize_config('{"max_gdop": "ten"}');
SELECT heimdall.normalize_config('{"receivers": {"mode": "fixed", "stations": [{"id": "a", "lat": 45, "lon": 7}]}}');
UPDATE heimdall.synthetic_datasets SET seed = 1;
UPDATE heimdall.synthetic_datasets SET num_samples = 5;
SELECT heimdall.abandon_request(id) FROM heimdall.generation_requests;
SELECT heimdall.create_dataset('a' || chr(10) || 'b', 'iq_raw');
SELECT heimdall.create_dataset('6f1c0d6e-6bd4-4b5e-9a43-5c8a2f7e8a10', 'iq_raw');
SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1.5);
SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 9223372036854775808);
SELECT heimdall.expand_dataset(:'ds', 2147483648);
-- the role model: what each role may execute
SELECT r.rolname, p.proname
  FROM pg_proc p CROSS JOIN (VALUES ('heimdall_reader'), ('heimdall_worker'), ('heimdall_admin')) r(rolname)
 WHERE p.pronamespace = 'heimdall'::regnamespace AND has_function_privilege(r.rolname, p.oid, 'EXECUTE')
 ORDER BY 1, 2;
