-- heimdall-synth schema: the current state of every table, index and type.
--
-- sql/ holds two kinds of objects (see worker/db.py):
--   stateful    - schema.sql (tables, indexes, types), config_keys.sql (rows), queue.sql:
--                 they hold data, so a migration changes them with a hand-written delta
--                 (ALTER ...), and new columns are appended at the END of a table here so
--                 that a fresh build and an upgraded database have the same layout;
--   replaceable - functions/*.sql, triggers.sql, views.sql, grants.sql: a migration drops
--                 them all and replays a frozen copy of this directory's version.
-- Build order: schema.sql, config_keys.sql, queue.sql, functions/*.sql, triggers.sql,
-- views.sql, grants.sql. pgmq must already be installed.
--
-- Design in one paragraph: tables are private, the functions in sql/functions/ are the
-- public API. A dataset owns a reservation counter (`next_idx`); `reserve_samples` hands
-- out contiguous ranges from it under the dataset row lock, so indices are never reused
-- and a rolled-back reservation returns its range. Feature rows and IQ pointer rows share
-- the key (dataset_id, sample_idx); a foreign key plus a deferred constraint trigger make
-- "every feature row of an iq_raw dataset has its IQ row and the reverse" true at every
-- commit, and statement triggers keep `num_samples` equal to the feature row count.

CREATE SCHEMA IF NOT EXISTS heimdall;

------------------------------------------------------------------------------------------
-- Config schema: the single home of generation defaults and limits
------------------------------------------------------------------------------------------

-- One row per top-level config key. normalize_config() merges `default_value`, checks
-- `value_type` and the [min_value, max_value] range; structured keys (receivers,
-- signal_mix) get dedicated checks in normalize_config(). Later migrations add keys by
-- inserting rows here.
CREATE TABLE heimdall.config_keys (
    key             text PRIMARY KEY,
    value_type      text NOT NULL CHECK (value_type IN ('number', 'integer', 'object', 'string_or_null', 'string')),
    default_value   jsonb NOT NULL,
    min_value       numeric,
    max_value       numeric,
    min_exclusive   boolean NOT NULL DEFAULT false,
    unit            text,
    description     text NOT NULL
);

------------------------------------------------------------------------------------------
-- Datasets
------------------------------------------------------------------------------------------

CREATE TABLE heimdall.synthetic_datasets (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL UNIQUE
                        CHECK (name = btrim(name) AND length(name) BETWEEN 1 AND 200),
    dataset_type        text NOT NULL CHECK (dataset_type IN ('feature_based', 'iq_raw')),
    config              jsonb NOT NULL,
    seed                bigint NOT NULL,
    -- Versions stored with the data, so a change of config schema or generator never
    -- requires wiping buckets: old datasets say what produced them.
    config_version      integer NOT NULL DEFAULT 1,
    generator_version   text,
    -- Committed samples == number of measurement_features rows (kept by triggers).
    num_samples         integer NOT NULL DEFAULT 0 CHECK (num_samples >= 0),
    -- Reservation counter: the next sample_idx reserve_samples() hands out.
    next_idx            integer NOT NULL DEFAULT 0 CHECK (next_idx >= 0),
    created_by          text NOT NULL DEFAULT current_user,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Health as of the last validate_dataset() run.
    health_status       text NOT NULL DEFAULT 'unknown'
                        CHECK (health_status IN ('unknown', 'healthy', 'warning', 'critical')),
    health_checked_at   timestamptz,
    health_report       jsonb,
    -- A name is printed and used as a reference: it cannot contain control characters
    -- (newline, tab, ANSI escapes) and cannot read as a uuid (references that parse as a
    -- uuid are ids, so such a name could never be looked up and could shadow an id).
    CONSTRAINT synthetic_datasets_name_printable CHECK (
        name !~ '[\u0001-\u001f\u007f-\u009f]'
        AND lower(translate(name, '{}-', '')) !~ '^(urn:uuid:)?[0-9a-f]{32}$')
);

COMMENT ON TABLE heimdall.synthetic_datasets IS
    'One row per dataset. Private: use heimdall.create_dataset / expand_dataset.';
COMMENT ON COLUMN heimdall.synthetic_datasets.next_idx IS
    'Reservation counter: indices [0, next_idx) have been handed out by reserve_samples().';
COMMENT ON COLUMN heimdall.synthetic_datasets.num_samples IS
    'Committed samples; equals the number of measurement_features rows at every commit.';

-- Object prefixes of deleted datasets, for the object-store GC (worker: heimdall-synth gc).
CREATE TABLE heimdall.deleted_datasets (
    dataset_id      uuid PRIMARY KEY,
    name            text NOT NULL,
    dataset_type    text NOT NULL,
    object_prefix   text NOT NULL,
    deleted_by      text NOT NULL DEFAULT current_user,
    deleted_at      timestamptz NOT NULL DEFAULT now(),
    gc_done_at      timestamptz
);

------------------------------------------------------------------------------------------
-- Samples
------------------------------------------------------------------------------------------

CREATE TABLE heimdall.measurement_features (
    dataset_id              uuid NOT NULL REFERENCES heimdall.synthetic_datasets (id) ON DELETE CASCADE,
    sample_idx              integer NOT NULL CHECK (sample_idx >= 0),
    -- ground truth
    tx_lat                  double precision NOT NULL,
    tx_lon                  double precision NOT NULL,
    tx_alt_m                real NOT NULL,
    tx_power_dbm            real NOT NULL,
    frequency_hz            double precision NOT NULL,
    signal_kind             text NOT NULL,
    -- quality
    gdop                    double precision NOT NULL,
    mean_snr_db             real,
    num_receivers           smallint NOT NULL CHECK (num_receivers >= 0),
    num_receivers_detected  smallint NOT NULL CHECK (num_receivers_detected BETWEEN 0 AND num_receivers),
    attempts                integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    rejections              jsonb NOT NULL DEFAULT '{}',
    -- per-receiver features, estimated from the IQ (arrays of length num_receivers)
    receiver_ids            text[] NOT NULL,
    rx_lat                  double precision[] NOT NULL,
    rx_lon                  double precision[] NOT NULL,
    rx_alt_m                real[] NOT NULL,
    rssi_dbm                real[] NOT NULL,
    snr_db                  real[] NOT NULL,
    noise_floor_dbm         real[] NOT NULL,
    freq_offset_hz          real[] NOT NULL,
    bandwidth_hz            real[] NOT NULL,
    toa_s                   double precision[] NOT NULL,
    tdoa_s                  double precision[] NOT NULL,
    signal_present          boolean[] NOT NULL,
    spectral_centroid_hz    real[],
    spectral_rolloff_hz     real[],
    envelope_mean           real[],
    envelope_std            real[],
    papr_db                 real[],
    delay_spread_s          real[],
    -- per-receiver ground truth, kept beside the estimates
    true_rx_power_dbm       real[],
    true_snr_db             real[],
    true_freq_offset_hz     real[],
    true_tdoa_s             double precision[],
    distance_m              double precision[],
    path_loss_db            real[],
    los                     boolean[],
    created_at              timestamptz NOT NULL DEFAULT now(),
    -- propagation truth (revision 0003; NULL for samples of configs without "propagation"):
    -- transmitter antenna height above ground (m); per receiver its antenna height above
    -- ground (m), the median basic transmission loss of the model (ITM at 50 % time,
    -- location, situation, or free-space loss; dB, path_loss_db = this + location
    -- variability), the NLOS excess delay of the first arrival (s, 0 on LOS links,
    -- included in toa_s), each link's transmit and receive antenna gain towards the other
    -- end (dBi: patterns and body loss included) and its polarization mismatch loss (dB)
    tx_height_agl_m         real,
    rx_height_agl_m         real[],
    path_loss_median_db     real[],
    excess_delay_s          real[],
    tx_antenna_gain_db      real[],
    rx_antenna_gain_db      real[],
    polarization_loss_db    real[],
    -- sigma of each tdoa_s (s; revision 0003, issue 12): Cramer-Rao-style, from the two
    -- receivers' SNRs, the signal spectrum and the duration; 0 for the reference, NULL
    -- where tdoa_s is NaN. NULL for samples of configs without "tdoa_estimator" "joint".
    tdoa_std_s              real[],
    -- the transmitter's carrier offset (Hz; revision 0003, issue 12), shared by every
    -- receiver: true_freq_offset_hz = it + each receiver's local oscillator error (+ the
    -- extra freq_offset_max_hz draw). NULL for samples of configs without "tx_freq_error_ppm".
    true_tx_freq_offset_hz  real,
    -- each receiver's clock offset (s, receiver clock minus true time; revision 0003, issue
    -- 12): its recording window starts at its own clock, so tdoa_s estimates true_tdoa_s +
    -- true_clock_offset_s[r] - true_clock_offset_s[ref]. NULL for configs without "timing".
    true_clock_offset_s     real[],
    -- Receiver ADC (revision 0004, issue 12 item 4): the share of each receiver's IQ samples
    -- whose I or Q hit full scale after its AGC (0 .. 1). NULL for configs without "adc_bits".
    clipped_fraction        real[],
    -- When the signal is on at each receiver (revision 0004, issue 12 item 6): seconds from
    -- the start of that receiver's recording window (0 .. duration); start > 0 when the
    -- transmission keyed up inside the window, stop < duration when it dropped. NULL for
    -- configs without "tx_key_up_probability" (the signal then fills the window).
    true_signal_start_s     real[],
    true_signal_stop_s      real[],
    -- The CTCSS sub-audible tone of the transmission (Hz; revision 0004, issue 12 item 6),
    -- NULL when it has none or the config has no "ctcss_probability".
    ctcss_hz                real,
    PRIMARY KEY (dataset_id, sample_idx),
    CONSTRAINT receiver_arrays_match CHECK (
        cardinality(receiver_ids) = num_receivers
        AND cardinality(rx_lat) = num_receivers
        AND cardinality(rx_lon) = num_receivers
        AND cardinality(rssi_dbm) = num_receivers
        AND cardinality(snr_db) = num_receivers
        AND cardinality(signal_present) = num_receivers
        AND cardinality(toa_s) = num_receivers
    )
);

COMMENT ON TABLE heimdall.measurement_features IS
    'One row per committed sample: ground truth, quality and per-receiver feature arrays.';

CREATE TABLE heimdall.synthetic_iq_samples (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id      uuid NOT NULL,
    sample_idx      integer NOT NULL CHECK (sample_idx >= 0),
    -- where the IQ lives: one object per chunk, this sample is a byte range of it
    object_key      text NOT NULL,
    byte_offset     bigint NOT NULL CHECK (byte_offset >= 0),
    byte_length     bigint NOT NULL CHECK (byte_length > 0),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    shape           integer[] NOT NULL CHECK (cardinality(shape) = 2),
    -- complex64: little-endian float32 I, Q in sqrt(mW); ci16_le (revision 0004, SigMF
    -- naming): little-endian int16 I, Q, power = (I^2 + Q^2) x scale_mw[receiver]
    dtype           text NOT NULL DEFAULT 'complex64',
    sample_rate_hz  integer NOT NULL CHECK (sample_rate_hz > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- mW per LSB^2 of each receiver (revision 0004): ci16_le rows only
    scale_mw        real[],
    CONSTRAINT synthetic_iq_samples_dataset_sample_key UNIQUE (dataset_id, sample_idx),
    CONSTRAINT synthetic_iq_samples_features_fkey FOREIGN KEY (dataset_id, sample_idx)
        REFERENCES heimdall.measurement_features (dataset_id, sample_idx) ON DELETE CASCADE,
    CONSTRAINT byte_length_matches_shape CHECK (
        byte_length = (CASE dtype WHEN 'ci16_le' THEN 4 ELSE 8 END)::bigint * shape[1] * shape[2]),
    CONSTRAINT synthetic_iq_samples_dtype_check CHECK (dtype IN ('complex64', 'ci16_le')),
    CONSTRAINT scale_matches_dtype CHECK (
        CASE dtype WHEN 'ci16_le' THEN scale_mw IS NOT NULL AND cardinality(scale_mw) = shape[1]
                   ELSE scale_mw IS NULL END)
);

CREATE INDEX synthetic_iq_samples_object_key_idx ON heimdall.synthetic_iq_samples (object_key);

COMMENT ON TABLE heimdall.synthetic_iq_samples IS
    'One IQ pointer row per sample of an iq_raw dataset: object key + byte range + sha256.';

------------------------------------------------------------------------------------------
-- Work bookkeeping: requests, chunks, queue
------------------------------------------------------------------------------------------

-- One row per create/expand/repair call.
CREATE TABLE heimdall.generation_requests (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id      uuid NOT NULL REFERENCES heimdall.synthetic_datasets (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('create', 'expand', 'repair')),
    first_idx       integer NOT NULL CHECK (first_idx >= 0),
    last_idx        integer NOT NULL,
    num_samples     integer GENERATED ALWAYS AS (last_idx - first_idx + 1) STORED,
    chunk_size      integer NOT NULL CHECK (chunk_size > 0),
    requested_by    text NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    paused_at       timestamptz,
    abandoned_at    timestamptz,
    CHECK (last_idx >= first_idx)
);

CREATE INDEX generation_requests_dataset_idx ON heimdall.generation_requests (dataset_id, created_at);

-- One row per unit of work; one pgmq message per pending chunk.
-- State machine (every transition guarded in WHERE ... RETURNING):
--   pending -> running (claim_chunk) -> done (complete_chunk)
--   running -> pending (release_chunk, fail_chunk with retries left)
--   running -> failed (claim_chunk after max reads, fail_chunk) -> pending (retry_failed_chunks)
--   pending/running -> paused (pause_request) -> pending (resume_request)
--   pending/paused/failed -> abandoned (abandon_request, tail only)
CREATE TABLE heimdall.generation_chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id      uuid NOT NULL REFERENCES heimdall.generation_requests (id) ON DELETE CASCADE,
    dataset_id      uuid NOT NULL REFERENCES heimdall.synthetic_datasets (id) ON DELETE CASCADE,
    kind            text NOT NULL DEFAULT 'generate' CHECK (kind IN ('generate', 'repair')),
    first_idx       integer NOT NULL CHECK (first_idx >= 0),
    last_idx        integer NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'done', 'failed', 'paused', 'abandoned')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    msg_id          bigint,
    claimed_by      text,
    claimed_at      timestamptz,
    visible_at      timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- Handed out by claim_chunk; every later worker call presents chunk id + token.
    -- (0002; new columns go at the end, so a fresh build and an upgraded one agree.)
    claim_token     uuid,
    CHECK (last_idx >= first_idx)
);

-- Live generation chunks of one dataset never start at the same index (reserve_samples
-- makes them disjoint; this catches a bug that would not). Abandoned chunks gave their
-- indices back, so a later request may cover them again.
CREATE UNIQUE INDEX generation_chunks_generate_first_idx
    ON heimdall.generation_chunks (dataset_id, first_idx) WHERE kind = 'generate' AND state <> 'abandoned';
CREATE INDEX generation_chunks_request_idx ON heimdall.generation_chunks (request_id);
CREATE INDEX generation_chunks_open_idx ON heimdall.generation_chunks (dataset_id, state)
    WHERE state <> 'done';

-- Messages the worker could not use (malformed payload, unknown chunk), archived in pgmq
-- and recorded here with the reason.
CREATE TABLE heimdall.dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id      bigint NOT NULL,
    payload     jsonb,
    error       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

------------------------------------------------------------------------------------------
-- Audit: every admin action (repair, retry, abandon, delete) with before/after counts
------------------------------------------------------------------------------------------

CREATE TABLE heimdall.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id  uuid,
    action      text NOT NULL,
    actor       text NOT NULL DEFAULT session_user,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_dataset_idx ON heimdall.audit_log (dataset_id, created_at);

------------------------------------------------------------------------------------------
-- Trust marker: private to the function owner (no heimdall role may read it)
------------------------------------------------------------------------------------------

-- One random secret per database. The feature-row counting trigger puts it in the
-- transaction-local setting heimdall.count_key while it updates num_samples; the
-- num_samples guard trusts exactly that (see tg_datasets_guard).
CREATE TABLE heimdall.trust_key (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    key     text NOT NULL DEFAULT gen_random_uuid()::text
);
INSERT INTO heimdall.trust_key DEFAULT VALUES;

------------------------------------------------------------------------------------------
-- Terrain sets (revision 0003, issue 11): SRTM elevation tiles for ITM point-to-point mode
------------------------------------------------------------------------------------------

-- One row per terrain set: a group of SRTM .hgt tiles of one resolution whose bytes are in
-- the object store. Registered once by heimdall.register_terrain_set (after the tiles were
-- uploaded) and immutable: no role may change or delete it. A config names a set in
-- "propagation"."terrain" and carries its sha256 (normalize_config), so the set's content
-- is part of a dataset's identity.
CREATE TABLE heimdall.terrain_sets (
    name                text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    resolution_arcsec   smallint NOT NULL CHECK (resolution_arcsec IN (1, 3)),
    -- the set's digest: sha256 of the lines "<tile> <tile sha256>", sorted by tile, joined by "\n"
    sha256              text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    num_tiles           integer NOT NULL CHECK (num_tiles > 0),
    -- bounding box of the tiles, whole degrees (the set may have holes: terrain_tiles)
    lat_min             smallint NOT NULL,
    lat_max             smallint NOT NULL,
    lon_min             smallint NOT NULL,
    lon_max             smallint NOT NULL,
    bytes               bigint NOT NULL CHECK (bytes > 0),
    created_by          text NOT NULL DEFAULT session_user,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (lat_min < lat_max AND lon_min < lon_max)
);

-- The tiles of a set: the cell (south-west corner, whole degrees), the sha256 of the file's
-- bytes and where they are in the object store.
CREATE TABLE heimdall.terrain_tiles (
    set_name    text NOT NULL REFERENCES heimdall.terrain_sets (name),
    tile        text NOT NULL CHECK (tile ~ '^[NS][0-9]{2}[EW][0-9]{3}$'),
    lat         smallint NOT NULL CHECK (lat BETWEEN -90 AND 89),
    lon         smallint NOT NULL CHECK (lon BETWEEN -180 AND 179),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- 3601 x 3601 (SRTM1) or 1201 x 1201 (SRTM3) big-endian int16
    bytes       bigint NOT NULL CHECK (bytes IN (25934402, 2884802)),
    object_key  text NOT NULL CHECK (length(object_key) BETWEEN 1 AND 1024),
    PRIMARY KEY (set_name, tile),
    CONSTRAINT terrain_tiles_cell_key UNIQUE (set_name, lat, lon)
);

COMMENT ON TABLE heimdall.terrain_sets IS
    'Terrain sets (SRTM tiles) for ITM point-to-point mode. Private: heimdall.register_terrain_set / terrain_set / list_terrain_sets.';

------------------------------------------------------------------------------------------
-- Baseline runs (revision 0003, issue 13): classical TDOA multilateration scored per run
------------------------------------------------------------------------------------------

-- One row per `heimdall-synth baseline` run: which samples (first_idx..last_idx, inclusive,
-- all committed when recorded), the dataset's generator version and the solver's version,
-- and the figures (fraction solved, counts per status, CEP50 / CEP90 / RMSE overall, by
-- GDOP bin and by receivers used; heimdall_synth/baseline_run.py). Written only through
-- heimdall.record_baseline_run (admin); readers SELECT it (the latest run per dataset is
-- what the dataset card quotes). Rows go with their dataset.
CREATE TABLE heimdall.baseline_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id          uuid NOT NULL REFERENCES heimdall.synthetic_datasets (id) ON DELETE CASCADE,
    first_idx           integer NOT NULL CHECK (first_idx >= 0),
    last_idx            integer NOT NULL,
    generator_version   text,               -- the dataset's (NULL: rows not written by a worker)
    solver_version      text NOT NULL CHECK (length(solver_version) BETWEEN 1 AND 100),
    figures             jsonb NOT NULL CHECK (jsonb_typeof(figures) = 'object'),
    created_by          text NOT NULL DEFAULT session_user,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (last_idx >= first_idx)
);

CREATE INDEX baseline_runs_dataset_idx ON heimdall.baseline_runs (dataset_id, created_at, id);

COMMENT ON TABLE heimdall.baseline_runs IS
    'Baseline localization runs and their figures. Written by heimdall.record_baseline_run only.';
