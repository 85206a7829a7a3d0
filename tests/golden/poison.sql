-- Golden test: messages that are not a chunk reference never stop a worker. Each is
-- dead-lettered with its reason and archived; the good chunk behind them is claimed.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT pgmq.send('heimdall_chunks', m::jsonb) > 0 AS sent
  FROM unnest(ARRAY['{"chunk_id": 1e30}', '{"chunk_id": -1}', '{"chunk_id": 1.5}', '{"chunk_id": "7"}',
                    '{"chunk_id": null}', '[1, 2]', '"text"', '{}', '{"chunk_id": 9223372036854775807}',
                    '{"chunk_id": 424242}']) AS m;
SELECT heimdall.create_dataset('golden', 'feature_based', '{"chunk_size": 4}', 42, 4) IS NOT NULL AS created;
SELECT chunk_id, first_idx, last_idx, attempt FROM heimdall.claim_chunk('golden-worker', 30, 5, 'golden-v1');
SELECT msg_id, payload, error FROM heimdall.dead_letters ORDER BY id;
SELECT count(*) AS archived FROM pgmq.a_heimdall_chunks;
