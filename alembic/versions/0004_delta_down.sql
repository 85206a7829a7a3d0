-- Revision 0004 (receivers' ADC and messages), stateful delta down: back to 0003's tables.
-- Runs between dropping 0004's replaceable set and replaying 0003's.
-- ci16_le IQ pointer rows cannot be described by 0003's table (complex64 only): they are
-- deleted with their samples' feature rows' pairing intact only if none exist, so the
-- downgrade refuses while any ci16_le row is present (the objects stay in the store).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM heimdall.synthetic_iq_samples WHERE dtype <> 'complex64') THEN
        RAISE EXCEPTION 'cannot downgrade below revision 0004: ci16_le IQ rows exist (delete those datasets first)'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;
ALTER TABLE heimdall.synthetic_iq_samples
    DROP CONSTRAINT scale_matches_dtype,
    DROP CONSTRAINT synthetic_iq_samples_dtype_check,
    DROP CONSTRAINT byte_length_matches_shape;
ALTER TABLE heimdall.synthetic_iq_samples
    DROP COLUMN scale_mw,
    ADD CONSTRAINT synthetic_iq_samples_dtype_check CHECK (dtype IN ('complex64')),
    ADD CONSTRAINT byte_length_matches_shape CHECK (byte_length = 8::bigint * shape[1] * shape[2]);
-- The truth columns are dropped (lost); the keys go. Datasets created with them keep their
-- configs; 0003's workers would ignore the keys, so such datasets are not to be expanded or
-- repaired after a downgrade.
ALTER TABLE heimdall.measurement_features
    DROP COLUMN ctcss_hz,
    DROP COLUMN true_signal_stop_s,
    DROP COLUMN true_signal_start_s,
    DROP COLUMN clipped_fraction;
DELETE FROM heimdall.config_keys
 WHERE key IN ('adc_bits', 'agc_target_dbfs', 'agc_window_ms', 'iq_dtype', 'tx_power_fluctuation_db',
               'tx_key_up_probability', 'tx_drop_probability', 'ctcss_probability', 'voice_min_active_fraction');
