-- Admin views (psql): health and progress. Read-only; computed from the rows themselves,
-- never from cached counters, so they cannot disagree with the data.

-- Per dataset: counts from every table, pairing gaps, chunk states, the contiguous ready
-- prefix (samples 0..ready_prefix-1 are all committed: what a training job can use), and
-- a status:
--   critical - data disagrees with itself: num_samples <> feature rows, features missing
--              IQ or IQ without features (iq_raw), IQ rows in a feature_based dataset,
--              duplicate or out-of-range indices (impossible unless triggers were bypassed);
--   warning  - failed chunks, or chunks claimed by a worker and not heard of for longer
--              than heimdall.stuck_after_s() past their visibility timeout (stuck);
--   building - pending/running/paused chunks;
--   healthy  - none of the above.
CREATE VIEW heimdall.dataset_health AS
SELECT d.id AS dataset_id,
       d.name,
       d.dataset_type,
       d.num_samples,
       d.next_idx AS reserved,
       f.feature_rows,
       q.iq_rows,
       CASE WHEN d.dataset_type = 'iq_raw' THEN f.feature_rows - pq.paired ELSE 0 END AS features_missing_iq,
       q.iq_rows - pq.paired AS iq_without_features,
       f.out_of_range,
       c.pending_chunks,
       c.running_chunks,
       c.paused_chunks,
       c.failed_chunks,
       c.stuck_chunks,
       f.ready_prefix,
       CASE
           WHEN d.num_samples <> f.feature_rows
                OR (d.dataset_type = 'iq_raw' AND f.feature_rows <> pq.paired)
                OR q.iq_rows <> pq.paired
                OR (d.dataset_type = 'feature_based' AND q.iq_rows > 0)
                OR f.out_of_range > 0 THEN 'critical'
           WHEN c.failed_chunks > 0 OR c.stuck_chunks > 0 THEN 'warning'
           WHEN c.pending_chunks + c.running_chunks + c.paused_chunks > 0 THEN 'building'
           ELSE 'healthy'
       END AS status,
       d.health_status AS last_validation_status,
       d.health_checked_at AS last_validated_at
  FROM heimdall.synthetic_datasets d
  CROSS JOIN LATERAL (
      SELECT count(*) AS feature_rows,
             count(*) FILTER (WHERE s.sample_idx >= d.next_idx) AS out_of_range,
             count(*) FILTER (WHERE s.sample_idx = s.rn - 1) AS ready_prefix
        FROM (SELECT x.sample_idx, row_number() OVER (ORDER BY x.sample_idx) AS rn
                FROM heimdall.measurement_features x WHERE x.dataset_id = d.id) s) f
  CROSS JOIN LATERAL (
      SELECT count(*) AS iq_rows FROM heimdall.synthetic_iq_samples x WHERE x.dataset_id = d.id) q
  CROSS JOIN LATERAL (
      SELECT count(*) AS paired
        FROM heimdall.synthetic_iq_samples x
        JOIN heimdall.measurement_features y ON y.dataset_id = x.dataset_id AND y.sample_idx = x.sample_idx
       WHERE x.dataset_id = d.id) pq
  CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE x.state = 'pending') AS pending_chunks,
             count(*) FILTER (WHERE x.state = 'running') AS running_chunks,
             count(*) FILTER (WHERE x.state = 'paused') AS paused_chunks,
             count(*) FILTER (WHERE x.state = 'failed') AS failed_chunks,
             count(*) FILTER (WHERE x.state = 'running'
                              AND x.visible_at < now() - make_interval(secs => heimdall.stuck_after_s())) AS stuck_chunks
        FROM heimdall.generation_chunks x WHERE x.dataset_id = d.id AND x.state <> 'done') c;

COMMENT ON VIEW heimdall.dataset_health IS
    'Per dataset: counts from every table, pairing gaps, chunk states, ready prefix, status.';

-- Per request: chunk counts by state, samples done, rate and ETA.
CREATE VIEW heimdall.request_progress AS
SELECT r.id AS request_id,
       r.dataset_id,
       d.name AS dataset_name,
       r.kind,
       r.first_idx,
       r.last_idx,
       r.num_samples,
       c.chunks_total,
       c.chunks_done,
       c.chunks_running,
       c.chunks_pending,
       c.chunks_paused,
       c.chunks_failed,
       c.chunks_abandoned,
       c.samples_done,
       r.created_at,
       c.last_done_at,
       CASE
           WHEN c.chunks_abandoned > 0 AND c.chunks_done + c.chunks_abandoned = c.chunks_total THEN 'abandoned'
           WHEN c.chunks_done = c.chunks_total THEN 'done'
           WHEN c.chunks_failed > 0 THEN 'failed'
           WHEN c.chunks_paused > 0 AND c.chunks_running = 0 AND c.chunks_pending = 0 THEN 'paused'
           WHEN c.chunks_running > 0 OR c.chunks_done > 0 THEN 'running'
           ELSE 'queued'
       END AS state,
       round((c.samples_done / nullif(extract(epoch FROM (c.last_done_at - c.first_claimed_at)), 0))::numeric, 2)
           AS samples_per_s,
       CASE WHEN c.samples_done > 0 AND c.samples_done < r.num_samples AND c.last_done_at > c.first_claimed_at THEN
           (c.last_done_at - c.first_claimed_at) * ((r.num_samples - c.samples_done)::double precision / c.samples_done)
       END AS eta
  FROM heimdall.generation_requests r
  JOIN heimdall.synthetic_datasets d ON d.id = r.dataset_id
  CROSS JOIN LATERAL (
      SELECT count(*) AS chunks_total,
             count(*) FILTER (WHERE x.state = 'done') AS chunks_done,
             count(*) FILTER (WHERE x.state = 'running') AS chunks_running,
             count(*) FILTER (WHERE x.state = 'pending') AS chunks_pending,
             count(*) FILTER (WHERE x.state = 'paused') AS chunks_paused,
             count(*) FILTER (WHERE x.state = 'failed') AS chunks_failed,
             count(*) FILTER (WHERE x.state = 'abandoned') AS chunks_abandoned,
             coalesce(sum(x.last_idx - x.first_idx + 1) FILTER (WHERE x.state = 'done'), 0) AS samples_done,
             min(x.claimed_at) AS first_claimed_at,
             max(x.finished_at) FILTER (WHERE x.state = 'done') AS last_done_at
        FROM heimdall.generation_chunks x WHERE x.request_id = r.id) c;

COMMENT ON VIEW heimdall.request_progress IS
    'Per request: chunks done/total by state, samples done, samples/s and ETA.';

-- Per committed sample: its stable split (issue 13), heimdall.split_of with the dataset's
-- seed and stored fractions. E.g. the split sizes of a dataset:
--   SELECT split, count(*) FROM heimdall.sample_splits WHERE dataset_id = '...' GROUP BY split;
CREATE VIEW heimdall.sample_splits AS
SELECT f.dataset_id,
       f.sample_idx,
       heimdall.split_of(d.seed, f.sample_idx, d.config -> 'splits') AS split
  FROM heimdall.measurement_features f
  JOIN heimdall.synthetic_datasets d ON d.id = f.dataset_id;

COMMENT ON VIEW heimdall.sample_splits IS
    'Per committed sample: its stable split (train/val/test), from heimdall.split_of.';
