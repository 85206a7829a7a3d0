-- Revision 0003 (propagation, issue 11), stateful delta up.


-- Propagation (issue 11): truth columns of the new path, appended at the end as in
-- sql/schema.sql. Existing rows keep NULL: they were generated with free space and no
-- heights (their configs have no "propagation" key and regenerate exactly as before).
ALTER TABLE heimdall.measurement_features
    ADD COLUMN tx_height_agl_m real,
    ADD COLUMN rx_height_agl_m real[],
    ADD COLUMN path_loss_median_db real[],
    ADD COLUMN excess_delay_s real[],
    ADD COLUMN tx_antenna_gain_db real[],
    ADD COLUMN rx_antenna_gain_db real[],
    ADD COLUMN polarization_loss_db real[];

-- New config keys (defaults for NEW configs only; stored configs are never re-normalized).
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('propagation',            'object',
        '{"model": "itm", "terrain": null, "terrain_irregularity_m": 90, "surface_refractivity_n": 301,
          "climate": "continental_temperate", "ground_permittivity": 15, "ground_conductivity_s_m": 0.005,
          "polarization": "vertical", "rx_siting": "random", "tx_siting": "random",
          "nlos_excess_delay_mean_s": 0.000001}',
        NULL, NULL, false, NULL,
        'Path loss model: {"model":"itm"|"free_space","terrain":null (ITM area mode) or a terrain set name (point-to-point mode; normalize_config adds its "terrain_sha256"),"terrain_irregularity_m","surface_refractivity_n","climate","ground_permittivity","ground_conductivity_s_m","polarization","rx_siting","tx_siting","nlos_excess_delay_mean_s"} (docs/propagation.md)'),
    ('tx_height_agl_min_m',    'number',  '1.5',    0.5,     3000,     false, 'm',    'Lowest transmitter antenna height above ground (propagation)'),
    ('tx_height_agl_max_m',    'number',  '10',     0.5,     3000,     false, 'm',    'Highest transmitter antenna height above ground (>= tx_height_agl_min_m)'),
    ('tx_antenna',             'object',
        '{"body_loss_db": 8, "tilt_max_deg": 45, "xpd_los_db": 12, "xpd_nlos_db": 7}',
        NULL, NULL, false, NULL,
        'Handheld transmitter antenna (propagation): {"body_loss_db" (through the body, 0 in front),"tilt_max_deg" (tilt from vertical, uniform),"xpd_los_db","xpd_nlos_db" (cross-polar discrimination of the channel)}; peak gain tx_antenna_gain_dbi');
UPDATE heimdall.config_keys SET description = 'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m,height_agl_m,antenna}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m","height_agl_m","antenna"}; antenna {"pattern":"omni"|"directional","gain_dbi","azimuth_deg","beamwidth_deg","front_to_back_db"}'
 WHERE key = 'receivers';
UPDATE heimdall.config_keys SET description = 'Log-normal shadowing standard deviation (free-space path loss; ITM draws its own location variability)'
 WHERE key = 'shadowing_sigma_db';
UPDATE heimdall.config_keys SET description = 'Probability of a LOS link (Rician) vs NLOS (Rayleigh); only configs without "propagation" (there LOS comes from the geometry)'
 WHERE key = 'los_probability';
UPDATE heimdall.config_keys SET description = 'Receive antenna gain (all receivers; with "propagation": the default gain_dbi of each receiver antenna)'
 WHERE key = 'rx_antenna_gain_dbi';

-- Terrain sets (issue 11 item 3): new tables, as at the end of sql/schema.sql.
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

-- Receivers as they are (issue 12): string config keys (value_type 'string'), the
-- per-receiver sigma of the joint TDOA estimator (appended at the end, as in
-- sql/schema.sql; existing rows keep NULL: their configs have no "tdoa_estimator" and keep
-- the coherent estimator, bit for bit), the keys "noise_environment" and "tdoa_estimator"
-- (defaults for NEW configs only).
ALTER TABLE heimdall.config_keys
    DROP CONSTRAINT config_keys_value_type_check,
    ADD CONSTRAINT config_keys_value_type_check
        CHECK (value_type IN ('number', 'integer', 'object', 'string_or_null', 'string'));
ALTER TABLE heimdall.measurement_features
    ADD COLUMN tdoa_std_s real[];
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('noise_environment',      'string',  '"rural"', NULL,   NULL,     false, NULL,
        'ITU-R P.372 man-made noise at the receivers (a fixed station may override it): city, residential, rural, quiet_rural, or none (receiver noise figure only); combined with noise_figure_db; 0.3 .. 250 MHz'),
    ('tdoa_estimator',         'string',  '"joint"', NULL,   NULL,     false, NULL,
        'TDOA estimator: joint (delay and residual carrier offset estimated together; tdoa_std_s; untrusted TDOAs NaN) or coherent (generator 1.0.0: no tdoa_std_s)');
UPDATE heimdall.config_keys SET description = 'Receiver noise figure (every receiver; with "noise_environment" a fixed station may override it)'
 WHERE key = 'noise_figure_db';
UPDATE heimdall.config_keys
   SET description = 'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m,height_agl_m,antenna,noise_figure_db,noise_environment,timing}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m","height_agl_m","antenna"}; antenna {"pattern":"omni"|"directional","gain_dbi","azimuth_deg","beamwidth_deg","front_to_back_db"}'
 WHERE key = 'receivers';

-- Baseline runs (issue 13): a new table, as at the end of sql/schema.sql.
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

-- Oscillators (issue 12 item 2): the transmitter's carrier offset (Hz, shared by every
-- receiver; true_freq_offset_hz = it + each receiver's LO error), appended at the end as in
-- sql/schema.sql; existing rows keep NULL (their configs have no "tx_freq_error_ppm" and
-- keep one independent offset per receiver, bit for bit). New keys (defaults for NEW
-- configs only); freq_offset_max_hz becomes an extra offset, 0 by default for new configs.
ALTER TABLE heimdall.measurement_features
    ADD COLUMN true_tx_freq_offset_hz real;
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('tx_freq_error_ppm',      'number',  '1',      0,       100,      false, 'ppm',  'Transmitter carrier error, uniform in +/- this (ppm of frequency_mhz), shared by every receiver'),
    ('rx_lo_error_ppm',        'number',  '0.5',    0,       100,      false, 'ppm',  'Receiver local oscillator error, uniform in +/- this (ppm of frequency_mhz), per receiver');
UPDATE heimdall.config_keys
   SET default_value = '0',
       description = 'Extra carrier offset per receiver, uniform in +/- this (on top of tx_freq_error_ppm and rx_lo_error_ppm; configs stored without them: the whole offset)'
 WHERE key = 'freq_offset_max_hz';

-- Stable splits (issue 13 item 3): a new config key (as at the end of sql/config_keys.sql).
-- Datasets stored without it keep 0.8 / 0.1 / 0.1 (heimdall.split_of's NULL case).
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('splits',                 'object',  '{"train": 0.8, "val": 0.1, "test": 0.1}', NULL, NULL, false, NULL,
        'Fractions of the train / val / test splits (each >= 0, sum 1; names left out get 0); a sample''s split comes from a hash of (seed, sample_idx) and never changes when the dataset grows (heimdall.split_of)');

-- Receiver timing (issue 12 item 1): each receiver's clock offset, appended at the end as in
-- sql/schema.sql; existing rows keep NULL (their configs have no "timing": perfect clocks,
-- bit for bit). The key's row as at the end of sql/config_keys.sql (NEW configs only).
ALTER TABLE heimdall.measurement_features
    ADD COLUMN true_clock_offset_s real[];
-- Receiver timing (issue 12 item 1, revision 0003). A stored config without it keeps perfect
-- clocks (one shared recording window); this row only gives NEW configs their default.
-- normalize_config expands a preset ("gps", "ntp", "none") into its numbers; fixed stations
-- may override it.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('timing',                 'object',  '"gps"',  NULL,    NULL,     false, NULL,
        'Receiver timing (a fixed station may override it): "gps" (clock offset sigma 70 ns, sample-rate error 0.01 ppm), "ntp" (3 ms, 1 ppm), "none" (perfect clocks) or {"clock_offset_std_s" 0 .. 0.05, "sample_rate_error_ppm" 0 .. 100}; normalized to the object');
