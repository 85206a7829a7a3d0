-- Revision 0004 (receivers' ADC and messages, issue 12 items 4 and 6), stateful delta up.

-- New truth columns, appended at the end as in sql/schema.sql. Existing rows keep NULL:
-- their configs have no "adc_bits" / "tx_key_up_probability" / "ctcss_probability" and
-- regenerate exactly as before (float IQ, a transmission filling the window, no CTCSS).
ALTER TABLE heimdall.measurement_features
    ADD COLUMN clipped_fraction real[],
    ADD COLUMN true_signal_start_s real[],
    ADD COLUMN true_signal_stop_s real[],
    ADD COLUMN ctcss_hz real;

-- IQ stored as complex int16 (ci16_le) with each receiver's scale (mW per LSB^2). Rows
-- made before stay complex64 (8 bytes per IQ sample, scale NULL); the byte-length rule
-- now depends on the dtype.
ALTER TABLE heimdall.synthetic_iq_samples
    ADD COLUMN scale_mw real[],
    DROP CONSTRAINT synthetic_iq_samples_dtype_check,
    DROP CONSTRAINT byte_length_matches_shape;
ALTER TABLE heimdall.synthetic_iq_samples
    ADD CONSTRAINT byte_length_matches_shape CHECK (
        byte_length = (CASE dtype WHEN 'ci16_le' THEN 4 ELSE 8 END)::bigint * shape[1] * shape[2]),
    ADD CONSTRAINT synthetic_iq_samples_dtype_check CHECK (dtype IN ('complex64', 'ci16_le')),
    ADD CONSTRAINT scale_matches_dtype CHECK (
        CASE dtype WHEN 'ci16_le' THEN scale_mw IS NOT NULL AND cardinality(scale_mw) = shape[1]
                   ELSE scale_mw IS NULL END);

-- New config keys, as at the end of sql/config_keys.sql (defaults for NEW configs only;
-- stored configs are never re-normalized).
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('adc_bits',               'integer', '16',     8,       16,       false, 'bits', 'Receiver ADC resolution: after the AGC, I and Q are rounded to this many bits and clipped at full scale (clipped_fraction)'),
    ('agc_target_dbfs',        'number',  '-15',    -60,     0,        false, 'dBFS', 'AGC target: the gain (one per recording) brings the loudest agc_window_ms block to this level (0 dBFS = a full-scale complex sinusoid)'),
    ('agc_window_ms',          'number',  '10',     0.1,     10000,    false, 'ms',   'Block over which the AGC measures the level: the loudest block of the recording sets the gain (at most the recording)'),
    ('iq_dtype',               'string',  '"ci16_le"', NULL, NULL,     false, NULL,   'Stored IQ: ci16_le (int16 I/Q, SigMF naming, 4 bytes per IQ sample, scale_mw per receiver) or complex64 (float32 I/Q in sqrt(mW), 8 bytes)');
INSERT INTO heimdall.config_keys
    (key, value_type, default_value, min_value, max_value, min_exclusive, unit, description)
VALUES
    ('tx_power_fluctuation_db', 'number', '2',      0,       20,       false, 'dB',   'Transmitter power of each transmission uniform in tx_power_dbm +/- this (stored in tx_power_dbm)'),
    ('tx_key_up_probability',  'number',  '0.1',    0,       1,        false, NULL,   'Probability that the transmission keys up inside the recording window (true_signal_start_s > 0)'),
    ('tx_drop_probability',    'number',  '0.1',    0,       1,        false, NULL,   'Probability that the transmission drops inside the recording window (true_signal_stop_s < duration)'),
    ('ctcss_probability',      'number',  '0.3',    0,       1,        false, NULL,   'Probability that the transmission carries a CTCSS sub-audible tone (one of the 50 EIA tones, ctcss_hz)'),
    ('voice_min_active_fraction', 'number', '0.3',  0,       1,        false, NULL,   'A voice message is voiced over at least this share of the recording (never silent)');
