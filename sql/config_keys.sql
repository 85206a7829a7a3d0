-- Generation config keys: defaults and limits (the single home of both).
-- normalize_config() reads this table; the README's config table is printed from it
-- (`heimdall-synth config keys`). A migration that adds a key inserts a row here.

INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('frequency_mhz',          'number',  '145',    1,       6000,     false, 'MHz',  'Carrier frequency'),
    ('tx_power_dbm',           'number',  '37',     -30,     70,       false, 'dBm',  'Transmitter output power'),
    ('tx_antenna_gain_dbi',    'number',  '0',      -20,     30,       false, 'dBi',  'Transmit antenna gain'),
    ('rx_antenna_gain_dbi',    'number',  '0',      -20,     30,       false, 'dBi',  'Receive antenna gain (all receivers)'),
    ('tx_alt_min_m',           'number',  '100',    -100,    9000,     false, 'm',    'Lowest transmitter altitude (above sea level)'),
    ('tx_alt_max_m',           'number',  '800',    -100,    9000,     false, 'm',    'Highest transmitter altitude (>= tx_alt_min_m)'),
    ('bandwidth_hz',           'number',  '12500',  100,     1000000,  false, 'Hz',   'Channel bandwidth; SNR and noise floor are defined in it (<= sample_rate_hz / 2)'),
    ('sample_rate_hz',         'integer', '50000',  1000,    10000000, false, 'Hz',   'Complex IQ sample rate'),
    ('duration_ms',            'number',  '200',    1,       10000,    false, 'ms',   'Recording length per receiver (>= 64 IQ samples)'),
    ('noise_figure_db',        'number',  '6',      0,       40,       false, 'dB',   'Receiver noise figure'),
    ('min_snr_db',             'number',  '3',      -30,     100,      false, 'dB',   'A receiver counts as detecting the TX at this SNR'),
    ('min_receivers',          'integer', '3',      3,       64,       false, NULL,   'Receivers that must detect the TX for a sample to be accepted'),
    ('max_gdop',               'number',  '10',     0,       1000000,  true,  NULL,   'Largest accepted GDOP, sqrt(trace((H^T H)^-1)) of the TOA fix'),
    ('inside_ratio',           'number',  '0.7',    0,       1,        false, NULL,   'Probability that the TX is inside the receivers'' bounding box'),
    ('outside_margin_km',      'number',  '20',     0,       500,      false, 'km',   'Width of the margin around the box for TX placed outside'),
    ('shadowing_sigma_db',     'number',  '6',      0,       20,       false, 'dB',   'Log-normal shadowing standard deviation'),
    ('los_probability',        'number',  '0.5',    0,       1,        false, NULL,   'Probability of a LOS link (Rician) vs NLOS (Rayleigh)'),
    ('rician_k_db',            'number',  '6',      -10,     30,       false, 'dB',   'Rician K-factor of LOS links'),
    ('freq_offset_max_hz',     'number',  '500',    0,       100000,   false, 'Hz',   'Carrier offset drawn uniformly in +/- this, per receiver'),
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
        'Receiver layout: {"mode":"fixed","stations":[{id,name,lat,lon,alt_m}]} or {"mode":"random"|"hexagonal","count_min","count_max","area":{lat_min,lat_max,lon_min,lon_max},"alt_m"}'),
    ('chunk_size',             'integer', '100',    1,       10000,    false, 'samples', 'Samples per work chunk (one queue message, one IQ object)'),
    ('max_attempts',           'integer', '1000',   1,       10000,    false, NULL,   'Draws per sample index before the chunk fails (config that never accepts)');
