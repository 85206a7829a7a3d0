-- Every SQL statement the Python side runs, by name (loaded by worker/queries.py).
-- Parameters are psycopg named placeholders. The SQL API functions do the real work.

-- name: create_dataset
SELECT heimdall.create_dataset(%(name)s, %(dataset_type)s, %(config)s, %(seed)s, %(num_samples)s) AS id;

-- name: expand_dataset
SELECT heimdall.expand_dataset(%(dataset_id)s, %(n)s) AS request_id;

-- name: delete_dataset
SELECT heimdall.delete_dataset(%(dataset_id)s) AS deleted;

-- name: normalize_config
SELECT heimdall.normalize_config(%(config)s) AS config;

-- name: config_keys
SELECT key, value_type, default_value, min_value, max_value, min_exclusive, unit, description
  FROM heimdall.config_keys ORDER BY key;

-- name: find_dataset
-- A dataset by reference, never ambiguous: a reference that reads as a uuid (the rule of
-- the name CHECK on synthetic_datasets: 32 hex digits, any case, once braces, hyphens and
-- a "urn:uuid:" prefix are dropped) matches the id only, even where an old row is named
-- like it; anything else matches the exact name only. At most one row.
SELECT id, name, dataset_type, config, seed, num_samples, next_idx, generator_version,
       created_at, health_status, health_checked_at
  FROM heimdall.synthetic_datasets
 WHERE CASE WHEN lower(translate(%(ref)s::text, '{}-', '')) ~ '^(urn:uuid:)?[0-9a-f]{32}$'
            THEN id = right(lower(translate(%(ref)s::text, '{}-', '')), 32)::uuid
            ELSE name = %(ref)s::text END;

-- name: list_datasets
SELECT h.dataset_id AS id, h.name, h.dataset_type, h.num_samples, h.reserved, h.ready_prefix,
       h.pending_chunks + h.running_chunks AS chunks_open, h.failed_chunks, h.status, d.created_at
  FROM heimdall.dataset_health h JOIN heimdall.synthetic_datasets d ON d.id = h.dataset_id
 ORDER BY d.created_at;

-- name: dataset_health
SELECT * FROM heimdall.dataset_health WHERE dataset_id = %(dataset_id)s;

-- name: request_progress
SELECT * FROM heimdall.request_progress WHERE request_id = %(request_id)s;

-- name: requests_of_dataset
SELECT * FROM heimdall.request_progress WHERE dataset_id = %(dataset_id)s ORDER BY created_at;

-- name: open_requests
SELECT * FROM heimdall.request_progress WHERE state NOT IN ('done', 'abandoned') ORDER BY created_at;

-- name: claim_chunk
SELECT * FROM heimdall.claim_chunk(%(worker_id)s, %(vt_s)s, %(max_reads)s, %(generator_version)s);

-- name: begin_chunk_commit
SELECT heimdall.begin_chunk_commit(%(chunk_id)s, %(claim_token)s) AS needed;

-- name: complete_chunk
SELECT heimdall.complete_chunk(%(chunk_id)s, %(claim_token)s, %(generator_version)s) AS completed;

-- name: extend_chunk
SELECT heimdall.extend_chunk(%(chunk_id)s, %(claim_token)s, %(vt_s)s) AS visible_at;

-- name: release_chunk
SELECT heimdall.release_chunk(%(chunk_id)s, %(claim_token)s) AS released;

-- name: fail_chunk
SELECT heimdall.fail_chunk(%(chunk_id)s, %(claim_token)s, %(error)s, %(permanent)s, %(retry_in_s)s) AS state;

-- name: retry_failed_chunks
SELECT heimdall.retry_failed_chunks(%(dataset_id)s) AS retried;

-- name: pause_request
SELECT heimdall.pause_request(%(request_id)s) AS paused;

-- name: resume_request
SELECT heimdall.resume_request(%(request_id)s) AS resumed;

-- name: abandon_request
SELECT * FROM heimdall.abandon_request(%(request_id)s);

-- name: work_in_flight
-- Running chunks + pending chunks with a live message, all datasets: --until-idle waits for 0.
SELECT heimdall.work_in_flight() AS open;


-- name: gc_deleted_datasets
SELECT dataset_id, object_prefix, deleted_at, deleted_at < now() - make_interval(secs => %(grace_s)s) AS expired
  FROM heimdall.deleted_datasets WHERE gc_done_at IS NULL;

-- name: gc_mark_done
SELECT heimdall.mark_gc_done(%(dataset_id)s) AS marked;

-- name: gc_live_datasets
SELECT id::text AS dataset_id FROM heimdall.synthetic_datasets;

-- name: referenced_keys
SELECT DISTINCT object_key FROM heimdall.synthetic_iq_samples;

-- name: open_chunk_ranges
-- Chunks that may still upload or use their object (anything not done or abandoned).
SELECT dataset_id::text AS dataset_id, first_idx, last_idx FROM heimdall.generation_chunks
 WHERE state NOT IN ('done', 'abandoned');

-- name: db_now
SELECT now() AS now;

-- name: record_object_deletion
-- Audit first, then delete: a refused call stops the tool before any object is gone.
SELECT heimdall.record_object_deletion(%(dataset_id)s, %(action)s, %(keys)s, %(detail)s) AS audit_id;

-- name: repair_queue
SELECT heimdall.repair_queue(%(dataset_id)s) AS result;

-- name: validate_dataset
SELECT heimdall.validate_dataset(%(dataset_id)s, %(extra_issues)s, %(stuck_after_s)s) AS report;

-- name: iq_rows_of_dataset
SELECT sample_idx, object_key, byte_offset, byte_length, sha256, shape, dtype, scale_mw
  FROM heimdall.synthetic_iq_samples WHERE dataset_id = %(dataset_id)s ORDER BY object_key, byte_offset;

-- name: open_chunks_of_dataset
SELECT first_idx, last_idx FROM heimdall.generation_chunks
 WHERE dataset_id = %(dataset_id)s AND state NOT IN ('done', 'abandoned');

-- name: repair_num_samples
SELECT heimdall.repair_num_samples(%(dataset_id)s) AS num_samples;

-- name: enqueue_repair
SELECT heimdall.enqueue_repair(%(dataset_id)s, %(first_idx)s, %(last_idx)s, %(reason)s) AS request_id;

-- name: release_stuck_chunks
SELECT heimdall.release_stuck_chunks(%(dataset_id)s, %(stuck_after_s)s) AS released;

-- export / training / plots queries
-- Readers (heimdall_synth/reader.py, export.py, training.py, plots.py) read committed rows only,
-- inside one REPEATABLE READ snapshot (reader_snapshot) so all pages agree.

-- name: reader_snapshot
-- First statement of a reader's transaction: every later page sees the same snapshot.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;

-- name: committed_prefix
-- Samples 0..ready_prefix-1 are all committed (see heimdall.dataset_health).
SELECT ready_prefix, feature_rows, num_samples, reserved
  FROM heimdall.dataset_health WHERE dataset_id = %(dataset_id)s;

-- name: committed_in_range
-- How many indices of [first, stop) have a feature row, and how many of those an IQ row.
SELECT count(*) AS features, count(q.sample_idx) AS with_iq
  FROM heimdall.measurement_features f
  LEFT JOIN heimdall.synthetic_iq_samples q ON q.dataset_id = f.dataset_id AND q.sample_idx = f.sample_idx
 WHERE f.dataset_id = %(dataset_id)s AND f.sample_idx >= %(first)s AND f.sample_idx < %(stop)s;

-- name: export_features_page
-- Every column of the feature rows of [first, stop); the exporter picks the columns it knows.
-- split NULL: every row; else only that split's (heimdall.split_of with the dataset's seed
-- and stored "splits", passed as seed / splits).
SELECT * FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text)
 ORDER BY sample_idx;

-- name: split_indices
-- Committed sample indices of [first, stop) in one split, ascending (export --split,
-- HeimdallDataset(split=...)): heimdall.split_of with the dataset's seed and stored fractions.
SELECT f.sample_idx
  FROM heimdall.measurement_features f
  JOIN heimdall.synthetic_datasets d ON d.id = f.dataset_id
 WHERE f.dataset_id = %(dataset_id)s AND f.sample_idx >= %(first)s AND f.sample_idx < %(stop)s
   AND heimdall.split_of(d.seed, f.sample_idx, d.config -> 'splits') = %(split)s::text
 ORDER BY f.sample_idx;

-- name: iq_layouts_in_range
-- Distinct per-sample IQ shapes / rates of [first, stop): an export needs exactly one.
SELECT shape, dtype, sample_rate_hz, count(*) AS samples
  FROM heimdall.synthetic_iq_samples
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
 GROUP BY shape, dtype, sample_rate_hz ORDER BY samples DESC;

-- name: iq_rows_in_range
SELECT q.sample_idx, q.object_key, q.byte_offset, q.byte_length, q.sha256, q.shape, q.dtype,
       q.sample_rate_hz, f.num_receivers, q.scale_mw
  FROM heimdall.synthetic_iq_samples q
  JOIN heimdall.measurement_features f ON f.dataset_id = q.dataset_id AND f.sample_idx = q.sample_idx
 WHERE q.dataset_id = %(dataset_id)s AND q.sample_idx >= %(first)s AND q.sample_idx < %(stop)s
 ORDER BY q.sample_idx;

-- name: training_rows_page
-- What HeimdallDataset keeps per sample: target, receiver positions, the IQ-derived
-- features (not the ground truth) and the IQ pointer (NULL for feature_based datasets).
-- split NULL: every sample of the range; else that split's only (as export_features_page).
SELECT f.sample_idx, f.tx_lat, f.tx_lon, f.tx_alt_m, f.num_receivers,
       f.rx_lat, f.rx_lon, f.rx_alt_m,
       f.rssi_dbm, f.snr_db, f.noise_floor_dbm, f.freq_offset_hz, f.bandwidth_hz, f.tdoa_s,
       f.signal_present, f.spectral_centroid_hz, f.spectral_rolloff_hz, f.envelope_mean,
       f.envelope_std, f.papr_db, f.delay_spread_s,
       q.object_key, q.byte_offset, q.byte_length, q.sha256, q.shape, q.sample_rate_hz, q.dtype, q.scale_mw
  FROM heimdall.measurement_features f
  LEFT JOIN heimdall.synthetic_iq_samples q ON q.dataset_id = f.dataset_id AND q.sample_idx = f.sample_idx
 WHERE f.dataset_id = %(dataset_id)s AND f.sample_idx >= %(first)s AND f.sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, f.sample_idx, %(splits)s::jsonb) = %(split)s::text)
 ORDER BY f.sample_idx;

-- name: plot_rows
-- What the overview plots need, for at most max_rows samples of [first, stop).
SELECT sample_idx, tx_lat, tx_lon, gdop, mean_snr_db, num_receivers, num_receivers_detected,
       receiver_ids, rx_lat, rx_lon, snr_db, signal_present
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
 ORDER BY sample_idx
 LIMIT %(max_rows)s;

-- name: propagation_rows
-- Per-link distance, detection and power for `heimdall-synth plot --kind propagation`, for at
-- most max_rows samples of [first, stop).
SELECT sample_idx, attempts, num_receivers, distance_m, signal_present, rssi_dbm, noise_floor_dbm,
       true_rx_power_dbm, path_loss_median_db, tx_height_agl_m, rx_height_agl_m, los
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
 ORDER BY sample_idx
 LIMIT %(max_rows)s;

-- name: schema_present
-- Start-up check of a worker: has `heimdall-synth db upgrade` been run?
SELECT to_regproc('heimdall.claim_chunk') IS NOT NULL AS present;

-- name: terrain_set
-- A terrain set with its tiles (worker: load it; tooling: compare before an import).
SELECT heimdall.terrain_set(%(name)s) AS terrain_set;

-- name: register_terrain_set
SELECT heimdall.register_terrain_set(%(name)s, %(tiles)s) AS terrain_set;

-- name: list_terrain_sets
SELECT name, resolution_arcsec, num_tiles, lat_min, lat_max, lon_min, lon_max, bytes, sha256, datasets,
       created_by, created_at
  FROM heimdall.list_terrain_sets();

-- baseline (heimdall_synth/baseline_run.py) and dataset card (heimdall_synth/card.py)

-- name: baseline_rows_page
-- What the baseline localizer reads: the estimated TDOAs with their sigmas (NULL for
-- configs without the joint estimator), which receivers heard the transmitter, the
-- receivers' positions; the truth (tx_lat, tx_lon) and gdop only to score. split as in
-- export_features_page.
SELECT sample_idx, tx_lat, tx_lon, gdop, num_receivers, receiver_ids, rx_lat, rx_lon, rx_alt_m,
       tdoa_s, signal_present, tdoa_std_s
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text)
 ORDER BY sample_idx;

-- name: record_baseline_run
SELECT heimdall.record_baseline_run(%(dataset_id)s, %(first_idx)s, %(last_idx)s, %(solver_version)s,
                                    %(figures)s) AS run_id;

-- name: baseline_run
SELECT id AS run_id, dataset_id, first_idx, last_idx, generator_version, solver_version, figures,
       created_by, created_at
  FROM heimdall.baseline_runs WHERE id = %(run_id)s;

-- name: latest_baseline_run
-- The newest recorded run of a dataset (None if there is none).
SELECT id AS run_id, dataset_id, first_idx, last_idx, generator_version, solver_version, figures,
       created_by, created_at
  FROM heimdall.baseline_runs WHERE dataset_id = %(dataset_id)s
 ORDER BY created_at DESC, id DESC LIMIT 1;

-- name: card_sample_stats
-- Summary of the samples [first, stop) for the dataset card. Every card_* query takes
-- split (NULL: all samples; else only those heimdall.split_of puts there) with the
-- dataset's seed and stored "splits" (NULL: the fractions of configs before 0003).
SELECT count(*) AS samples,
       avg(num_receivers)::float8 AS receivers_mean,
       avg(num_receivers_detected)::float8 AS detected_mean,
       sum(num_receivers_detected)::float8 / nullif(sum(num_receivers), 0) AS detected_fraction,
       avg(attempts)::float8 AS attempts_mean,
       percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY mean_snr_db)
           FILTER (WHERE mean_snr_db = mean_snr_db) AS mean_snr_db_q,
       percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY gdop)
           FILTER (WHERE gdop < 'Infinity') AS gdop_q,
       min(frequency_hz) AS frequency_min_hz, max(frequency_hz) AS frequency_max_hz,
       min(sample_idx) AS first_idx, max(sample_idx) AS last_idx
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text);

-- name: card_detected_histogram
SELECT num_receivers_detected AS detected, count(*) AS samples
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text)
 GROUP BY 1 ORDER BY 1;

-- name: card_gdop_bins
-- Samples per GDOP bin; bin k lies between edges[k-1] and edges[k] (0: below edges[1]).
SELECT width_bucket(gdop, %(edges)s::float8[]) AS bin, count(*) AS samples,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY mean_snr_db) FILTER (WHERE mean_snr_db = mean_snr_db)
           AS median_mean_snr_db
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text)
 GROUP BY 1 ORDER BY 1;

-- name: card_signal_kinds
SELECT signal_kind, count(*) AS samples
  FROM heimdall.measurement_features
 WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) = %(split)s::text)
 GROUP BY 1 ORDER BY 2 DESC, 1;

-- name: card_receivers
-- Per receiver id: samples it is in, how often it heard the transmitter, its median SNR
-- when it did (at most max_rows + 1 ids: the card omits the table beyond max_rows).
SELECT r.receiver_id, count(*) AS samples, avg(r.present::int)::float8 AS detected_fraction,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.snr_db) FILTER (WHERE r.present AND r.snr_db = r.snr_db)
           AS median_snr_db
  FROM heimdall.measurement_features f,
       unnest(f.receiver_ids, f.snr_db, f.signal_present) AS r(receiver_id, snr_db, present)
 WHERE f.dataset_id = %(dataset_id)s AND f.sample_idx >= %(first)s AND f.sample_idx < %(stop)s
   AND (%(split)s::text IS NULL OR heimdall.split_of(%(seed)s::bigint, f.sample_idx, %(splits)s::jsonb) = %(split)s::text)
 GROUP BY r.receiver_id ORDER BY r.receiver_id
 LIMIT %(max_rows)s + 1;

-- name: card_splits
-- Samples per stable split in [first, stop) (see card_sample_stats for split).
SELECT s.split, count(*) AS samples
  FROM (SELECT heimdall.split_of(%(seed)s::bigint, sample_idx, %(splits)s::jsonb) AS split
          FROM heimdall.measurement_features
         WHERE dataset_id = %(dataset_id)s AND sample_idx >= %(first)s AND sample_idx < %(stop)s) s
 WHERE %(split)s::text IS NULL OR s.split = %(split)s::text
 GROUP BY s.split ORDER BY array_position(ARRAY['train', 'val', 'test'], s.split);
