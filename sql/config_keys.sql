-- Generation config keys: defaults and limits (the single home of both).
-- normalize_config() reads this table; the README's config table is printed from it
-- (`heimdall-synth config keys`). A migration that adds a key inserts a row here.

INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('frequency_mhz',          'number',  '145',    1,       6000,     false, 'MHz',  'Carrier frequency'),
    ('tx_power_dbm',           'number',  '37',     -30,     70,       false, 'dBm',  'Transmitter output power'),
    ('tx_antenna_gain_dbi',    'number',  '0',      -20,     30,       false, 'dBi',  'Transmit antenna gain'),
    ('rx_antenna_gain_dbi',    'number',  '0',      -20,     30,       false, 'dBi',  'Receive antenna gain (all receivers; with "propagation": the default gain_dbi of each receiver antenna)'),
    ('tx_alt_min_m',           'number',  '100',    -100,    9000,     false, 'm',    'Lowest transmitter altitude (above sea level)'),
    ('tx_alt_max_m',           'number',  '800',    -100,    9000,     false, 'm',    'Highest transmitter altitude (>= tx_alt_min_m)'),
    ('bandwidth_hz',           'number',  '12500',  100,     1000000,  false, 'Hz',   'Channel bandwidth; SNR and noise floor are defined in it (<= sample_rate_hz / 2)'),
    ('sample_rate_hz',         'integer', '50000',  1000,    10000000, false, 'Hz',   'Complex IQ sample rate'),
    ('duration_ms',            'number',  '200',    1,       10000,    false, 'ms',   'Recording length per receiver (>= 64 IQ samples)'),
    ('noise_figure_db',        'number',  '6',      0,       40,       false, 'dB',   'Receiver noise figure (every receiver; with "noise_environment" a fixed station may override it)'),
    ('min_snr_db',             'number',  '3',      -30,     100,      false, 'dB',   'A receiver counts as detecting the TX at this SNR'),
    ('min_receivers',          'integer', '3',      3,       64,       false, NULL,   'Receivers that must detect the TX for a sample to be accepted'),
    ('max_gdop',               'number',  '10',     0,       1000000,  true,  NULL,   'Largest accepted GDOP, sqrt(trace((H^T H)^-1)) of the TOA fix'),
    ('inside_ratio',           'number',  '0.7',    0,       1,        false, NULL,   'Probability that the TX is inside the receivers'' bounding box'),
    ('outside_margin_km',      'number',  '20',     0,       500,      false, 'km',   'Width of the margin around the box for TX placed outside'),
    ('shadowing_sigma_db',     'number',  '6',      0,       20,       false, 'dB',   'Log-normal shadowing standard deviation (free-space path loss; ITM draws its own location variability)'),
    ('los_probability',        'number',  '0.5',    0,       1,        false, NULL,   'Probability of a LOS link (Rician) vs NLOS (Rayleigh); only configs without "propagation" (there LOS comes from the geometry)'),
    ('rician_k_db',            'number',  '6',      -10,     30,       false, 'dB',   'Rician K-factor of LOS links'),
    ('freq_offset_max_hz',     'number',  '0',      0,       100000,   false, 'Hz',   'Extra carrier offset per receiver, uniform in +/- this (on top of tx_freq_error_ppm and rx_lo_error_ppm; configs stored without them: the whole offset)'),
    ('fm_deviation_hz',        'number',  '2500',   0,       1000000,  false, 'Hz',   'Peak FM deviation'),
    ('multipath_max_taps',     'integer', '3',      0,       8,        false, NULL,   'Extra multipath taps per receiver (0..this)'),
    ('multipath_max_delay_us', 'number',  '5',      0,       1000,     false, 'us',   'Largest multipath excess delay'),
    ('signal_mix',             'object',  '{"voice": 0.5, "tone": 0.3, "dtmf": 0.2}', NULL, NULL, false, NULL,
        'Relative weights of message kinds: voice, tone, dtmf, audio (audio needs audio_library)'),
    ('audio_library',          'string_or_null', 'null', NULL, NULL, false, NULL,
        'Folder of WAV files usable as messages (kind "audio"); null = none'),
    ('receivers',              'object',
        '{"mode": "fixed", "stations": [
            {"id": "aquila_di_giaveno", "name": "Aquila di Giaveno", "lat": 45.03,  "lon": 7.27,  "alt_m": 600},
            {"id": "montanaro",         "name": "Montanaro",         "lat": 45.234, "lon": 7.857, "alt_m": 300},
            {"id": "torino",            "name": "Torino",            "lat": 45.044, "lon": 7.672, "alt_m": 250},
            {"id": "coazze",            "name": "Coazze",            "lat": 45.048, "lon": 7.238, "alt_m": 700},
            {"id": "passo_del_giovi",   "name": "Passo del Giovi",   "lat": 44.561, "lon": 8.956, "alt_m": 480},
            {"id": "genova",            "name": "Genova",            "lat": 44.395, "lon": 8.956, "alt_m": 100},
            {"id": "milano_baggio",     "name": "Milano-Baggio",     "lat": 45.478, "lon": 9.123, "alt_m": 120}]}',
        NULL, NULL, false, NULL,
        'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m,height_agl_m,antenna,noise_figure_db,noise_environment,timing}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m","height_agl_m","antenna"}; antenna {"pattern":"omni"|"directional","gain_dbi","azimuth_deg","beamwidth_deg","front_to_back_db"}'),
    ('chunk_size',             'integer', '100',    1,       10000,    false, 'samples', 'Samples per work chunk (one queue message, one IQ object)'),
    ('max_attempts',           'integer', '1000',   1,       10000,    false, NULL,   'Draws per sample index before the chunk fails (config that never accepts)');

-- Propagation (issue 11, revision 0002). A stored config without "propagation" keeps the
-- free-space link budget it was generated with (generator 1.0.0's legacy path); these rows
-- only give NEW configs their defaults. Sub-keys of "propagation" are checked by
-- normalize_config (the default object below is also the list of valid sub-keys).
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

-- Receivers as they are (issue 12, revision 0003). A stored config without these keys keeps
-- one receiver noise figure for every site and the coherent TDOA estimator (generator
-- 1.0.0's bytes); these rows only give NEW configs their defaults. Fixed stations may
-- override "noise_figure_db" and "noise_environment" (normalize_config fills both in).
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('noise_environment',      'string',  '"rural"', NULL,   NULL,     false, NULL,
        'ITU-R P.372 man-made noise at the receivers (a fixed station may override it): city, residential, rural, quiet_rural, or none (receiver noise figure only); combined with noise_figure_db; 0.3 .. 250 MHz'),
    ('tdoa_estimator',         'string',  '"joint"', NULL,   NULL,     false, NULL,
        'TDOA estimator: joint (delay and residual carrier offset estimated together; tdoa_std_s; untrusted TDOAs NaN) or coherent (generator 1.0.0: no tdoa_std_s)');

-- Oscillators (issue 12 item 2, revision 0003). A stored config without them keeps one
-- independent offset per receiver (freq_offset_max_hz, 500 Hz by default before 0003);
-- these rows only give NEW configs their defaults.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('tx_freq_error_ppm',      'number',  '1',      0,       100,      false, 'ppm',  'Transmitter carrier error, uniform in +/- this (ppm of frequency_mhz), shared by every receiver'),
    ('rx_lo_error_ppm',        'number',  '0.5',    0,       100,      false, 'ppm',  'Receiver local oscillator error, uniform in +/- this (ppm of frequency_mhz), per receiver');

-- Stable splits (issue 13 item 3, revision 0003): the fractions of train / val / test fixed
-- at creation; heimdall.split_of assigns each sample from (seed, sample_idx). A stored config
-- without this key (made before revision 0003) uses 0.8 / 0.1 / 0.1 (split_of's NULL case),
-- whatever this row's default becomes later.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('splits',                 'object',  '{"train": 0.8, "val": 0.1, "test": 0.1}', NULL, NULL, false, NULL,
        'Fractions of the train / val / test splits (each >= 0, sum 1; names left out get 0); a sample''s split comes from a hash of (seed, sample_idx) and never changes when the dataset grows (heimdall.split_of)');

-- Receiver timing (issue 12 item 1, revision 0003). A stored config without it keeps perfect
-- clocks (one shared recording window); this row only gives NEW configs their default.
-- normalize_config expands a preset ("gps", "ntp", "none") into its numbers; fixed stations
-- may override it.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('timing',                 'object',  '"gps"',  NULL,    NULL,     false, NULL,
        'Receiver timing (a fixed station may override it): "gps" (clock offset sigma 70 ns, sample-rate error 0.01 ppm), "ntp" (3 ms, 1 ppm), "none" (perfect clocks) or {"clock_offset_std_s" 0 .. 0.05, "sample_rate_error_ppm" 0 .. 100}; normalized to the object');

-- Receiver ADC and storage (issue 12 item 4, revision 0004). A stored config without
-- "adc_bits" keeps float IQ without AGC or quantization, stored as complex64, bit for bit;
-- these rows only give NEW configs their defaults.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('adc_bits',               'integer', '16',     8,       16,       false, 'bits', 'Receiver ADC resolution: after the AGC, I and Q are rounded to this many bits and clipped at full scale (clipped_fraction)'),
    ('agc_target_dbfs',        'number',  '-15',    -60,     0,        false, 'dBFS', 'AGC target: the gain (one per recording) brings the loudest agc_window_ms block to this level (0 dBFS = a full-scale complex sinusoid)'),
    ('agc_window_ms',          'number',  '10',     0.1,     10000,    false, 'ms',   'Block over which the AGC measures the level: the loudest block of the recording sets the gain (at most the recording)'),
    ('iq_dtype',               'string',  '"ci16_le"', NULL, NULL,     false, NULL,   'Stored IQ: ci16_le (int16 I/Q, SigMF naming, 4 bytes per IQ sample, scale_mw per receiver) or complex64 (float32 I/Q in sqrt(mW), 8 bytes)');

-- Messages (issue 12 item 6, revision 0004). A stored config without these keys keeps
-- generator 1.0.0's messages (a transmission filling the window, fixed power, no CTCSS, a
-- voice message that may be silent); these rows only give NEW configs their defaults.
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('tx_power_fluctuation_db', 'number', '2',      0,       20,       false, 'dB',   'Transmitter power of each transmission uniform in tx_power_dbm +/- this (stored in tx_power_dbm)'),
    ('tx_key_up_probability',  'number',  '0.1',    0,       1,        false, NULL,   'Probability that the transmission keys up inside the recording window (true_signal_start_s > 0)'),
    ('tx_drop_probability',    'number',  '0.1',    0,       1,        false, NULL,   'Probability that the transmission drops inside the recording window (true_signal_stop_s < duration)'),
    ('ctcss_probability',      'number',  '0.3',    0,       1,        false, NULL,   'Probability that the transmission carries a CTCSS sub-audible tone (one of the 50 EIA tones, ctcss_hz)'),
    ('voice_min_active_fraction', 'number', '0.3',  0,       1,        false, NULL,   'A voice message is voiced over at least this share of the recording (never silent)');
