-- heimdall.normalize_config(config jsonb) -> jsonb
--
-- Purpose: the single home of generation defaults and limits. Merges the defaults of
--   heimdall.config_keys into `config`, rejects unknown keys, wrong JSON types and
--   out-of-range values, checks cross-key constraints, and returns the complete,
--   normalized config that is stored with a dataset (immutable from then on).
-- Parameters: config - a JSON object with any subset of the keys of heimdall.config_keys
--   (units in the key names: *_mhz, *_dbm, *_hz, *_ms, *_db, *_km, *_m, *_us). NULL or
--   '{}' gives the defaults. Falsy values (0 dBm, ratio 0) are honoured, not replaced.
-- Returns: the normalized config (every key present, structured keys fully expanded).
-- Limits beyond each key's own range (heimdall.config_keys), so that one sample, one chunk
--   and one sample index stay bounded in memory and work:
--   * every number (nested ones included) must be exactly 0 or have a magnitude in
--     [2.2250738585072014e-308, 1.7976931348623157e308], the normal float64 range: the worker
--     reads numbers as float64, and a number outside it would read as 0.0 or infinity
--     (e.g. max_gdop 1e-400); JSON has no NaN or infinity (a string "NaN" is not a number);
--   * signal_mix weights: numbers in [0, 1000000] with a positive sum (the sum cannot overflow);
--   * bytes per sample = receivers (stations, or count_max) x IQ samples per receiver
--     (floor(sample_rate_hz * duration_ms / 1000), 64 .. 2,000,000) x 8 (complex64)
--     <= 67,108,864 (64 MiB);
--   * bytes per chunk object = chunk_size x bytes per sample <= 2,147,483,648 (2 GiB)
--     (the .npy header not counted); checked for every config, as it may be used for an
--     iq_raw dataset;
--   * max_attempts <= 10000 (its config_keys row): a config that never accepts then fails a
--     chunk after seconds, not days.
-- Propagation (revision 0002): "propagation" is an object whose given sub-keys override the
--   default object of its config_keys row (model "itm" | "free_space", terrain null = ITM area
--   mode or the name of a registered terrain set = point-to-point mode: the set must exist
--   and cover the receivers (fixed stations' box, or the random / hexagonal area) and the
--   transmitter's placement area (that box widened by outside_margin_km unless inside_ratio
--   is 1), and its digest is added as "terrain_sha256" (if given, it must match),
--   terrain_irregularity_m
--   0 .. 3000, surface_refractivity_n 250 .. 400, climate one of ITM's 7, ground_permittivity
--   > 1 .. 100, ground_conductivity_s_m > 0 .. 100, polarization, rx_siting / tx_siting,
--   nlos_excess_delay_mean_s 0 .. 1e-4); model "itm" needs frequency_mhz >= 20;
--   tx_height_agl_min_m <= tx_height_agl_max_m; every station (or a random / hexagonal
--   layout) gets height_agl_m (antenna above ground, 0.5 .. 3000 m, default 10) and an
--   antenna: {"pattern": "omni", "gain_dbi"} (default gain rx_antenna_gain_dbi, -20 .. 30)
--   or, fixed stations only, {"pattern": "directional", "gain_dbi", "azimuth_deg" [0, 360)
--   (required), "beamwidth_deg" 1 .. 360 (65), "front_to_back_db" 0 .. 60 (20)};
--   "tx_antenna" is an object merged like "propagation": body_loss_db 0 .. 40, tilt_max_deg
--   0 .. 90, xpd_los_db / xpd_nlos_db 0 .. 60. A stored config without "propagation" (made
--   before 0002) is never re-normalized and keeps its free-space path.
-- Receivers (revision 0003, issue 12): string keys (value_type 'string') must be one of
--   their values: "noise_environment" city | residential | rural | quiet_rural | none (ITU-R
--   P.372 man-made noise, network-wide), "tdoa_estimator" joint | coherent. Every fixed
--   station gets "noise_figure_db" (0 .. 40, default the network-wide noise_figure_db) and
--   "noise_environment" (default the network-wide one). A man-made environment other than
--   "none" (network-wide for random / hexagonal layouts, any station's for fixed ones)
--   needs frequency_mhz in P.372's 0.3 .. 250 MHz. A stored config without these keys keeps
--   one receiver noise figure for all sites and the coherent TDOA estimator.
-- Oscillators (revision 0003, issue 12): "tx_freq_error_ppm" (the transmitter's carrier
--   error, shared by all receivers) and "rx_lo_error_ppm" (each receiver's local oscillator)
--   are ppm of frequency_mhz; with freq_offset_max_hz (an extra per-receiver offset, Hz) the
--   largest offset must leave the FM signal inside the channel: 2 x ((tx_freq_error_ppm +
--   rx_lo_error_ppm) x frequency_mhz + freq_offset_max_hz) + 2 x (fm_deviation_hz + 3000)
--   <= bandwidth_hz (Carson's bandwidth, 3000 Hz the messages' audio band), bandwidth_hz <=
--   sample_rate_hz / 2. A stored config without them keeps one independent offset per
--   receiver (freq_offset_max_hz) and is never re-normalized, so never checked so.
-- Timing (revision 0003, issue 12 item 1): "timing" (network-wide; a fixed station may
--   override it) is "gps" (clock offset sigma 70 ns, sample-rate error 0.01 ppm), "ntp"
--   (3 ms, 1 ppm), "none" (0, 0) or {"clock_offset_std_s" 0 .. 0.05, "sample_rate_error_ppm"
--   0 .. 100}, both required; normalized to that object (every fixed station gets one). A
--   stored config without it keeps perfect clocks.
-- Splits (revision 0003, issue 13): "splits" is an object of fractions named train, val
--   and/or test (names left out get 0), each a number >= 0 and <= 1, summing to 1 within
--   1e-9; the result always holds all three. heimdall.split_of assigns samples from them.
--   A stored config without "splits" (made before 0003) uses 0.8 / 0.1 / 0.1.
-- ADC and messages (revision 0004, issue 12 items 4 and 6): "adc_bits" 8 .. 16,
--   "agc_target_dbfs" -60 .. 0, "agc_window_ms" 0.1 .. 10000 (the AGC's blocks; the loudest
--   sets the gain), "iq_dtype" ci16_le | complex64 (the caps above count 8
--   bytes per IQ sample for both); "tx_power_fluctuation_db" 0 .. 20, "tx_key_up_probability",
--   "tx_drop_probability", "ctcss_probability", "voice_min_active_fraction" 0 .. 1 (their
--   config_keys rows). A stored config without them keeps float IQ stored as complex64 and
--   generator 1.0.0's messages.
-- Errors: 22023 invalid_parameter_value, message naming the offending key(s) and the
--   limit, for an unknown key, a wrong type, a value out of range, a number a float64
--   cannot keep, a cap above exceeded or an inconsistent combination.
-- Locks: none. Idempotent: normalize_config(normalize_config(c)) = normalize_config(c).
CREATE OR REPLACE FUNCTION heimdall.normalize_config(config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, heimdall, pg_temp
AS $$
DECLARE
    k           record;
    v           jsonb;
    n           numeric;
    result      jsonb := '{}';
    unknown     text;
    st          jsonb;
    stations    jsonb;
    ids         text[] := '{}';
    area        jsonb;
    mix         jsonb;
    mix_key     text;
    mix_total   numeric := 0;
    rx_mode     text;
    rx_max      integer;
    iq_len      numeric;
    bad         numeric;
    sample_bytes numeric;
    prop        jsonb;
    pk          record;
    ant         jsonb;
    tset        heimdall.terrain_sets;
    box         record;
    missing     text;
    n_missing   integer;
    lat_lo      float8;
    lat_hi      float8;
    lon_lo      float8;
    lon_hi      float8;
    dlat        float8;
    dlon        float8;
    max_off     numeric;
    carson      numeric;
    tk          record;
    tv          jsonb;
BEGIN
    config := coalesce(config, '{}');
    IF jsonb_typeof(config) <> 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object, got %', jsonb_typeof(config)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
    FROM jsonb_object_keys(config) AS key
    WHERE key NOT IN (SELECT ck.key FROM heimdall.config_keys ck);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s): %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'valid keys: ' || (SELECT string_agg(ck.key, ', ' ORDER BY ck.key) FROM heimdall.config_keys ck);
    END IF;

    FOR k IN SELECT * FROM heimdall.config_keys ORDER BY key LOOP
        v := coalesce(config -> k.key, k.default_value);
        -- Any number in the value (nested too) must survive the worker's float64 reading:
        -- exactly 0 or a normal float64 magnitude (else it reads as 0.0 or infinity).
        SELECT x::numeric INTO bad
          FROM jsonb_path_query(v, 'strict $.**') AS x
         WHERE jsonb_typeof(x) = 'number'
           AND (abs(x::numeric) > 1.7976931348623157e308
                OR (x::numeric <> 0 AND abs(x::numeric) < 2.2250738585072014e-308))
         LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'config key "%": % cannot be used: a float64 keeps magnitudes from 2.2250738585072014e-308 to 1.7976931348623157e308 (or exactly 0)',
                    k.key, btrim(to_char(bad, '9.999999EEEE'))
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k.value_type IN ('number', 'integer') THEN
            IF jsonb_typeof(v) <> 'number' THEN
                RAISE EXCEPTION 'config key "%": must be a %, got %', k.key, k.value_type, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            n := (v #>> '{}')::numeric;
            IF k.value_type = 'integer' AND n <> trunc(n) THEN
                RAISE EXCEPTION 'config key "%": must be an integer, got %', k.key, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF k.min_value IS NOT NULL AND (n < k.min_value OR (k.min_exclusive AND n = k.min_value)) THEN
                RAISE EXCEPTION 'config key "%": must be % %, got %', k.key,
                        CASE WHEN k.min_exclusive THEN '>' ELSE '>=' END, k.min_value, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF k.max_value IS NOT NULL AND n > k.max_value THEN
                RAISE EXCEPTION 'config key "%": must be <= %, got %', k.key, k.max_value, n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key,
                CASE WHEN k.value_type = 'integer' THEN to_jsonb(n::bigint) ELSE to_jsonb(n) END);
        ELSIF k.value_type = 'string' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                RAISE EXCEPTION 'config key "%": must be a string, got %', k.key, left(v::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);   -- values checked below
        ELSIF k.value_type = 'string_or_null' THEN
            IF jsonb_typeof(v) NOT IN ('string', 'null') THEN
                RAISE EXCEPTION 'config key "%": must be a string or null, got %', k.key, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') = '' THEN
                RAISE EXCEPTION 'config key "%": must not be empty (use null)', k.key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);
        ELSIF k.value_type = 'object' THEN
            IF jsonb_typeof(v) <> 'object' AND NOT (k.key = 'timing' AND jsonb_typeof(v) = 'string') THEN
                RAISE EXCEPTION 'config key "%": must be a JSON object, got %', k.key, v::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            result := result || jsonb_build_object(k.key, v);   -- checked below
        END IF;
    END LOOP;

    -- string keys: their values (revision 0003)
    FOR pk IN SELECT * FROM (VALUES
            ('noise_environment', ARRAY['city', 'residential', 'rural', 'quiet_rural', 'none']),
            ('tdoa_estimator', ARRAY['joint', 'coherent']),
            ('iq_dtype', ARRAY['ci16_le', 'complex64'])) AS t(key, allowed) LOOP
        IF NOT (result ->> pk.key) = ANY (pk.allowed) THEN
            RAISE EXCEPTION 'config key "%": must be one of %, got %',
                    pk.key, array_to_string(pk.allowed, ', '), left((result -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    -- signal_mix: weights in [0, 1000000] of known kinds, not all zero (so their sum is
    -- positive and finite). A given mix replaces the default entirely (kinds it omits get
    -- weight 0).
    mix := result -> 'signal_mix';
    FOR mix_key IN SELECT jsonb_object_keys(mix) LOOP
        IF mix_key NOT IN ('voice', 'tone', 'dtmf', 'audio') THEN
            RAISE EXCEPTION 'config key "signal_mix": unknown kind "%"', mix_key
                USING ERRCODE = 'invalid_parameter_value', HINT = 'kinds: voice, tone, dtmf, audio';
        END IF;
        IF jsonb_typeof(mix -> mix_key) <> 'number' OR (mix ->> mix_key)::numeric < 0
           OR (mix ->> mix_key)::numeric > 1000000 THEN
            RAISE EXCEPTION 'config key "signal_mix": weight of "%" must be a number >= 0 and <= 1000000, got %',
                    mix_key, CASE WHEN jsonb_typeof(mix -> mix_key) = 'number'
                                   AND abs((mix ->> mix_key)::numeric) >= 1e15
                                  THEN btrim(to_char((mix ->> mix_key)::numeric, '9.999999EEEE'))
                                  ELSE (mix -> mix_key)::text END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        mix_total := mix_total + (mix ->> mix_key)::numeric;
    END LOOP;
    IF mix_total <= 0 THEN
        RAISE EXCEPTION 'config key "signal_mix": at least one weight must be > 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    mix := jsonb_build_object(
        'voice', coalesce((mix ->> 'voice')::numeric, 0), 'tone', coalesce((mix ->> 'tone')::numeric, 0),
        'dtmf', coalesce((mix ->> 'dtmf')::numeric, 0), 'audio', coalesce((mix ->> 'audio')::numeric, 0));
    IF (mix ->> 'audio')::numeric > 0 AND jsonb_typeof(result -> 'audio_library') = 'null' THEN
        RAISE EXCEPTION 'config key "signal_mix": weight "audio" > 0 needs config key "audio_library"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    result := jsonb_set(result, '{signal_mix}', mix);

    -- splits (revision 0003, issue 13): fractions of train / val / test, fixed at creation
    -- (heimdall.split_of). A given object replaces the default; names it omits get 0.
    v := result -> 'splits';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(v) key WHERE key NOT IN ('train', 'val', 'test');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "splits": unknown split(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value', HINT = 'splits: train, val, test';
    END IF;
    FOR mix_key IN SELECT jsonb_object_keys(v) LOOP
        IF jsonb_typeof(v -> mix_key) <> 'number' OR (v ->> mix_key)::numeric < 0
           OR (v ->> mix_key)::numeric > 1 THEN
            RAISE EXCEPTION 'config key "splits": fraction of "%" must be a number >= 0 and <= 1, got %',
                    mix_key, left((v -> mix_key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    v := jsonb_build_object('train', coalesce((v ->> 'train')::numeric, 0),
                            'val', coalesce((v ->> 'val')::numeric, 0),
                            'test', coalesce((v ->> 'test')::numeric, 0));
    IF abs((v ->> 'train')::numeric + (v ->> 'val')::numeric + (v ->> 'test')::numeric - 1) > 1e-9 THEN
        RAISE EXCEPTION 'config key "splits": fractions must sum to 1 (within 1e-9), got train % + val % + test % = %',
                v ->> 'train', v ->> 'val', v ->> 'test',
                (v ->> 'train')::numeric + (v ->> 'val')::numeric + (v ->> 'test')::numeric
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    result := jsonb_set(result, '{splits}', v);

    -- receivers
    v := result -> 'receivers';
    rx_mode := v ->> 'mode';
    IF rx_mode IS NULL OR rx_mode NOT IN ('fixed', 'random', 'hexagonal') THEN
        RAISE EXCEPTION 'config key "receivers": "mode" must be "fixed", "random" or "hexagonal", got %',
                coalesce((v -> 'mode')::text, 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rx_mode = 'fixed' THEN
        SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(v) key
        WHERE key NOT IN ('mode', 'stations');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "receivers": unknown key(s) % for mode "fixed"', unknown
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v -> 'stations') IS DISTINCT FROM 'array' OR jsonb_array_length(v -> 'stations') < 3
           OR jsonb_array_length(v -> 'stations') > 64 THEN
            RAISE EXCEPTION 'config key "receivers": "stations" must be an array of 3 to 64 stations'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        stations := '[]';
        FOR st IN SELECT jsonb_array_elements(v -> 'stations') LOOP
            IF jsonb_typeof(st) <> 'object' THEN
                RAISE EXCEPTION 'config key "receivers": each station must be an object, got %', st::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(st) key
            WHERE key NOT IN ('id', 'name', 'lat', 'lon', 'alt_m', 'height_agl_m', 'antenna', 'noise_figure_db',
                              'noise_environment', 'timing');
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION 'config key "receivers": unknown station key(s) %', unknown
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'station keys: id, name, lat, lon, alt_m, height_agl_m, antenna, noise_figure_db, noise_environment, timing';
            END IF;
            IF jsonb_typeof(st -> 'id') IS DISTINCT FROM 'string' OR btrim(st ->> 'id') = '' THEN
                RAISE EXCEPTION 'config key "receivers": every station needs a non-empty string "id", got %', st::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF (st ->> 'id') = ANY (ids) THEN
                RAISE EXCEPTION 'config key "receivers": duplicate station id "%"', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            ids := ids || (st ->> 'id');
            IF jsonb_typeof(st -> 'lat') IS DISTINCT FROM 'number' OR (st ->> 'lat')::numeric NOT BETWEEN -90 AND 90 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" lat must be a number in [-90, 90]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF jsonb_typeof(st -> 'lon') IS DISTINCT FROM 'number' OR (st ->> 'lon')::numeric NOT BETWEEN -180 AND 180 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" lon must be a number in [-180, 180]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'alt_m' AND (jsonb_typeof(st -> 'alt_m') <> 'number' OR (st ->> 'alt_m')::numeric NOT BETWEEN -500 AND 9000) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" alt_m must be a number in [-500, 9000]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- antenna height above ground (propagation; ITM's limits 0.5 .. 3000 m)
            IF st ? 'height_agl_m' AND (jsonb_typeof(st -> 'height_agl_m') <> 'number'
                                       OR (st ->> 'height_agl_m')::numeric NOT BETWEEN 0.5 AND 3000) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" height_agl_m must be a number in [0.5, 3000]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- receiving antenna (propagation): omni of gain rx_antenna_gain_dbi by default, or
            -- directional (azimuth_deg required; beamwidth_deg 65, front_to_back_db 20 by default)
            ant := coalesce(st -> 'antenna', '{}');
            IF jsonb_typeof(ant) <> 'object' THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna must be an object', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(ant) key
            WHERE key NOT IN ('pattern', 'gain_dbi', 'azimuth_deg', 'beamwidth_deg', 'front_to_back_db');
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna: unknown key(s) %', st ->> 'id', unknown
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'antenna keys: pattern, gain_dbi, azimuth_deg, beamwidth_deg, front_to_back_db';
            END IF;
            ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', result -> 'rx_antenna_gain_dbi') || ant;
            IF jsonb_typeof(ant -> 'pattern') IS DISTINCT FROM 'string' OR (ant ->> 'pattern') NOT IN ('omni', 'directional') THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna pattern must be "omni" or "directional", got %',
                        st ->> 'id', left((ant -> 'pattern')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF ant ->> 'pattern' = 'omni' THEN
                IF ant ?| ARRAY['azimuth_deg', 'beamwidth_deg', 'front_to_back_db'] THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna: azimuth_deg, beamwidth_deg and front_to_back_db need "pattern": "directional"', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', ant -> 'gain_dbi');
            ELSE
                ant := jsonb_build_object('beamwidth_deg', 65, 'front_to_back_db', 20) || ant;
                IF jsonb_typeof(ant -> 'azimuth_deg') IS DISTINCT FROM 'number'
                   OR (ant ->> 'azimuth_deg')::numeric < 0 OR (ant ->> 'azimuth_deg')::numeric >= 360 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" directional antenna needs azimuth_deg, a number in [0, 360)', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF jsonb_typeof(ant -> 'beamwidth_deg') <> 'number' OR (ant ->> 'beamwidth_deg')::numeric NOT BETWEEN 1 AND 360 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna beamwidth_deg must be a number in [1, 360]', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF jsonb_typeof(ant -> 'front_to_back_db') <> 'number' OR (ant ->> 'front_to_back_db')::numeric NOT BETWEEN 0 AND 60 THEN
                    RAISE EXCEPTION 'config key "receivers": station "%" antenna front_to_back_db must be a number in [0, 60]', st ->> 'id'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END IF;
            IF jsonb_typeof(ant -> 'gain_dbi') <> 'number' OR (ant ->> 'gain_dbi')::numeric NOT BETWEEN -20 AND 30 THEN
                RAISE EXCEPTION 'config key "receivers": station "%" antenna gain_dbi must be a number in [-20, 30]', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- the station's receiver noise figure and man-made noise environment (revision 0003)
            IF st ? 'noise_figure_db' AND (jsonb_typeof(st -> 'noise_figure_db') <> 'number'
                                          OR (st ->> 'noise_figure_db')::numeric NOT BETWEEN 0 AND 40) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" noise_figure_db must be a number in [0, 40], got %',
                        st ->> 'id', left((st -> 'noise_figure_db')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'noise_environment' AND (jsonb_typeof(st -> 'noise_environment') <> 'string'
                    OR (st ->> 'noise_environment') NOT IN ('city', 'residential', 'rural', 'quiet_rural', 'none')) THEN
                RAISE EXCEPTION 'config key "receivers": station "%" noise_environment must be one of city, residential, rural, quiet_rural, none, got %',
                        st ->> 'id', left((st -> 'noise_environment')::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF st ? 'name' AND jsonb_typeof(st -> 'name') <> 'string' THEN
                RAISE EXCEPTION 'config key "receivers": station "%" name must be a string', st ->> 'id'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            stations := stations || jsonb_build_array(jsonb_build_object(
                'id', st -> 'id', 'name', coalesce(st -> 'name', st -> 'id'),
                'lat', st -> 'lat', 'lon', st -> 'lon', 'alt_m', coalesce(st -> 'alt_m', '0'),
                'height_agl_m', coalesce(st -> 'height_agl_m', '10'), 'antenna', ant,
                'noise_figure_db', coalesce(st -> 'noise_figure_db', result -> 'noise_figure_db'),
                'noise_environment', coalesce(st -> 'noise_environment', result -> 'noise_environment'),
                'timing', coalesce(st -> 'timing', result -> 'timing')));
        END LOOP;
        result := jsonb_set(result, '{receivers}', jsonb_build_object('mode', 'fixed', 'stations', stations));
        rx_max := jsonb_array_length(stations);
    ELSE
        SELECT string_agg(key, ', ') INTO unknown FROM jsonb_object_keys(v) key
        WHERE key NOT IN ('mode', 'count_min', 'count_max', 'area', 'alt_m', 'height_agl_m', 'antenna');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "receivers": unknown key(s) % for mode "%"', unknown, rx_mode
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- Placement defaults: 4..8 receivers over the default network's area.
        v := jsonb_build_object('mode', rx_mode, 'count_min', 4, 'count_max', 8, 'alt_m', 200, 'height_agl_m', 10,
                 'area', '{"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3}'::jsonb)
             || (v - 'mode');
        IF jsonb_typeof(v -> 'count_min') <> 'number' OR jsonb_typeof(v -> 'count_max') <> 'number'
           OR (v ->> 'count_min')::numeric <> trunc((v ->> 'count_min')::numeric)
           OR (v ->> 'count_max')::numeric <> trunc((v ->> 'count_max')::numeric)
           OR (v ->> 'count_min')::numeric < 3 OR (v ->> 'count_max')::numeric > 64
           OR (v ->> 'count_min')::numeric > (v ->> 'count_max')::numeric THEN
            RAISE EXCEPTION 'config key "receivers": need integers 3 <= count_min <= count_max <= 64, got % and %',
                    (v -> 'count_min')::text, (v -> 'count_max')::text
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v -> 'alt_m') <> 'number' OR (v ->> 'alt_m')::numeric NOT BETWEEN -500 AND 9000 THEN
            RAISE EXCEPTION 'config key "receivers": alt_m must be a number in [-500, 9000]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v -> 'height_agl_m') <> 'number' OR (v ->> 'height_agl_m')::numeric NOT BETWEEN 0.5 AND 3000 THEN
            RAISE EXCEPTION 'config key "receivers": height_agl_m must be a number in [0.5, 3000]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- one omni antenna for every receiver of the layout (directional ones need fixed stations)
        ant := v -> 'antenna';
        IF ant IS NOT NULL AND (jsonb_typeof(ant) <> 'object'
                                OR EXISTS (SELECT 1 FROM jsonb_object_keys(ant) key WHERE key NOT IN ('pattern', 'gain_dbi'))
                                OR coalesce(ant ->> 'pattern', 'omni') <> 'omni') THEN
            RAISE EXCEPTION 'config key "receivers": antenna of a % layout must be {"pattern": "omni", "gain_dbi": number}, got %',
                    rx_mode, left(ant::text, 100)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'directional antennas need fixed stations';
        END IF;
        ant := jsonb_build_object('pattern', 'omni', 'gain_dbi', result -> 'rx_antenna_gain_dbi') || coalesce(ant, '{}');
        IF jsonb_typeof(ant -> 'gain_dbi') <> 'number' OR (ant ->> 'gain_dbi')::numeric NOT BETWEEN -20 AND 30 THEN
            RAISE EXCEPTION 'config key "receivers": antenna gain_dbi must be a number in [-20, 30]'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v := jsonb_set(v, '{antenna}', ant);
        area := v -> 'area';
        IF jsonb_typeof(area) <> 'object'
           OR (SELECT count(*) FROM jsonb_object_keys(area) key WHERE key IN ('lat_min', 'lat_max', 'lon_min', 'lon_max')) <> 4
           OR (SELECT count(*) FROM jsonb_object_keys(area)) <> 4
           OR (SELECT bool_or(jsonb_typeof(val) <> 'number') FROM jsonb_each(area) AS e(key, val)) THEN
            RAISE EXCEPTION 'config key "receivers": "area" must be {"lat_min","lat_max","lon_min","lon_max"} numbers'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT ((area ->> 'lat_min')::numeric >= -90 AND (area ->> 'lat_min')::numeric < (area ->> 'lat_max')::numeric
                AND (area ->> 'lat_max')::numeric <= 90
                AND (area ->> 'lon_min')::numeric >= -180 AND (area ->> 'lon_min')::numeric < (area ->> 'lon_max')::numeric
                AND (area ->> 'lon_max')::numeric <= 180) THEN
            RAISE EXCEPTION 'config key "receivers": "area" needs -90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 180'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v := jsonb_set(v, '{count_min}', to_jsonb((v ->> 'count_min')::int));
        v := jsonb_set(v, '{count_max}', to_jsonb((v ->> 'count_max')::int));
        result := jsonb_set(result, '{receivers}', v);
        rx_max := (v ->> 'count_max')::int;
    END IF;

    -- timing (revision 0003): the network-wide value and each fixed station's (its own or
    -- the network-wide one) become {"clock_offset_std_s", "sample_rate_error_ppm"}.
    FOR tk IN
        SELECT 'config key "timing"' AS what, result -> 'timing' AS val, NULL::integer AS idx
        UNION ALL
        SELECT format('config key "receivers": station "%s" timing', e.s ->> 'id'), e.s -> 'timing', (e.ord - 1)::integer
          FROM jsonb_array_elements(CASE WHEN result -> 'receivers' ->> 'mode' = 'fixed'
                                         THEN result -> 'receivers' -> 'stations' ELSE '[]' END)
               WITH ORDINALITY AS e(s, ord)
    LOOP
        tv := tk.val;
        IF jsonb_typeof(tv) = 'string' THEN
            tv := CASE tv #>> '{}'
                WHEN 'gps' THEN '{"clock_offset_std_s": 0.00000007, "sample_rate_error_ppm": 0.01}'
                WHEN 'ntp' THEN '{"clock_offset_std_s": 0.003, "sample_rate_error_ppm": 1}'
                WHEN 'none' THEN '{"clock_offset_std_s": 0, "sample_rate_error_ppm": 0}' END;
            IF tv IS NULL THEN
                RAISE EXCEPTION '%: must be "gps", "ntp", "none" or an object, got %', tk.what, left(tk.val::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF jsonb_typeof(tv) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION '%: must be "gps", "ntp", "none" or an object, got %', tk.what, left(tv::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown FROM jsonb_object_keys(tv) key
         WHERE key NOT IN ('clock_offset_std_s', 'sample_rate_error_ppm');
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION '%: unknown key(s) %', tk.what, unknown
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'timing keys: clock_offset_std_s, sample_rate_error_ppm';
        END IF;
        IF jsonb_typeof(tv -> 'clock_offset_std_s') IS DISTINCT FROM 'number'
           OR (tv ->> 'clock_offset_std_s')::numeric NOT BETWEEN 0 AND 0.05 THEN
            RAISE EXCEPTION '%: clock_offset_std_s must be a number in [0, 0.05] s, got %', tk.what,
                    coalesce(left((tv -> 'clock_offset_std_s')::text, 100), 'nothing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(tv -> 'sample_rate_error_ppm') IS DISTINCT FROM 'number'
           OR (tv ->> 'sample_rate_error_ppm')::numeric NOT BETWEEN 0 AND 100 THEN
            RAISE EXCEPTION '%: sample_rate_error_ppm must be a number in [0, 100] ppm, got %', tk.what,
                    coalesce(left((tv -> 'sample_rate_error_ppm')::text, 100), 'nothing')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF tk.idx IS NULL THEN
            result := jsonb_set(result, '{timing}', tv);
        ELSE
            result := jsonb_set(result, ARRAY['receivers', 'stations', tk.idx::text, 'timing'], tv);
        END IF;
    END LOOP;

    -- propagation: the given sub-keys override the default object of its config_keys row,
    -- whose keys are also the valid sub-keys. Enumerations are ITM's (worker/rf/itm.py);
    -- numeric ranges: ITM's own limits (N_s 250 .. 400) or physical ones.
    SELECT ck.default_value INTO prop FROM heimdall.config_keys ck WHERE ck.key = 'propagation';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(result -> 'propagation') key WHERE NOT prop ? key AND key <> 'terrain_sha256';
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "propagation": unknown key(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'keys: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM jsonb_object_keys(prop) key);
    END IF;
    prop := prop || (result -> 'propagation');
    FOR pk IN SELECT * FROM (VALUES
            ('model', ARRAY['itm', 'free_space']),
            ('climate', ARRAY['equatorial', 'continental_subtropical', 'maritime_subtropical', 'desert',
                              'continental_temperate', 'maritime_temperate_land', 'maritime_temperate_sea']),
            ('polarization', ARRAY['horizontal', 'vertical']),
            ('rx_siting', ARRAY['random', 'careful', 'very_careful']),
            ('tx_siting', ARRAY['random', 'careful', 'very_careful'])) AS t(key, allowed) LOOP
        IF jsonb_typeof(prop -> pk.key) IS DISTINCT FROM 'string' OR NOT (prop ->> pk.key) = ANY (pk.allowed) THEN
            RAISE EXCEPTION 'config key "propagation": "%" must be one of %, got %',
                    pk.key, array_to_string(pk.allowed, ', '), left((prop -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOR pk IN SELECT * FROM (VALUES
            ('terrain_irregularity_m', 0::numeric, false, 3000::numeric),
            ('surface_refractivity_n', 250, false, 400),
            ('ground_permittivity', 1, true, 100),
            ('ground_conductivity_s_m', 0, true, 100),
            ('nlos_excess_delay_mean_s', 0, false, 0.0001)) AS t(key, lo, lo_open, hi) LOOP
        IF jsonb_typeof(prop -> pk.key) IS DISTINCT FROM 'number'
           OR (prop ->> pk.key)::numeric < pk.lo OR (pk.lo_open AND (prop ->> pk.key)::numeric = pk.lo)
           OR (prop ->> pk.key)::numeric > pk.hi THEN
            RAISE EXCEPTION 'config key "propagation": "%" must be a number % % and <= %, got %',
                    pk.key, CASE WHEN pk.lo_open THEN '>' ELSE '>=' END, pk.lo, pk.hi, left((prop -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    -- terrain: null (ITM area mode) or the name of a registered terrain set (point-to-point
    -- mode, issue 11 item 3). The set's digest is added as "terrain_sha256" (if given, it
    -- must be that digest: a config pins the set's content), and the set must cover the
    -- receivers and the transmitter's placement area.
    IF jsonb_typeof(prop -> 'terrain') = 'string' THEN
        SELECT * INTO tset FROM heimdall.terrain_sets s WHERE s.name = prop ->> 'terrain';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'config key "propagation": "terrain": there is no terrain set named %',
                    left((prop -> 'terrain')::text, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = coalesce('terrain sets: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.name)
                                                             FROM heimdall.terrain_sets s),
                                      'no terrain set is registered')
                             || '; import one with: heimdall-synth terrain import NAME DIR';
        END IF;
        IF prop ? 'terrain_sha256' AND prop -> 'terrain_sha256' IS DISTINCT FROM to_jsonb(tset.sha256) THEN
            RAISE EXCEPTION 'config key "propagation": "terrain_sha256" % is not the digest of terrain set "%" (%)',
                    left((prop -> 'terrain_sha256')::text, 100), tset.name, tset.sha256
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'the set of that name in this database holds other tiles; leave terrain_sha256 out to take them';
        END IF;
        prop := prop || jsonb_build_object('terrain_sha256', tset.sha256);
        -- The receivers' box (fixed stations) or area (random / hexagonal), then the
        -- transmitter's placement area: that box widened by outside_margin_km, as
        -- worker/rf/geometry.place_transmitter draws it (dlat = margin / metres per degree on
        -- the sphere of radius 6371008.8 m, dlon = dlat / cos(mid latitude); for an area the
        -- widest case, its latitude farthest from the equator).
        IF rx_mode = 'fixed' THEN
            SELECT min((s ->> 'lat')::float8), max((s ->> 'lat')::float8), min((s ->> 'lon')::float8),
                   max((s ->> 'lon')::float8)
              INTO lat_lo, lat_hi, lon_lo, lon_hi
              FROM jsonb_array_elements(result -> 'receivers' -> 'stations') s;
            dlon := cos(radians(0.5 * (lat_lo + lat_hi)));
        ELSE
            lat_lo := (result #>> '{receivers,area,lat_min}')::float8;
            lat_hi := (result #>> '{receivers,area,lat_max}')::float8;
            lon_lo := (result #>> '{receivers,area,lon_min}')::float8;
            lon_hi := (result #>> '{receivers,area,lon_max}')::float8;
            dlon := cos(radians(greatest(abs(lat_lo), abs(lat_hi))));
        END IF;
        dlat := 0;
        IF (result ->> 'inside_ratio')::numeric < 1 AND (result ->> 'outside_margin_km')::numeric > 0 THEN
            dlat := (result ->> 'outside_margin_km')::float8 * 1000.0 / (6371008.8 * pi() / 180.0);
        END IF;
        dlon := dlat / greatest(dlon, 1e-6);
        FOR box IN SELECT * FROM (VALUES
                ('receivers', lat_lo, lat_hi, lon_lo, lon_hi),
                ('outside_margin_km', lat_lo - dlat, lat_hi + dlat, lon_lo - dlon, lon_hi + dlon)) AS v(key, a, b, c, d)
        LOOP
            -- whole-degree cells of the box (longitudes wrapped), those the set lacks
            SELECT string_agg(tile, ', ' ORDER BY tile) FILTER (WHERE rn <= 20), count(*)
              INTO missing, n_missing
              FROM (SELECT row_number() OVER (ORDER BY tile) AS rn, tile
                      FROM (SELECT format('%s%s%s%s', CASE WHEN la >= 0 THEN 'N' ELSE 'S' END, lpad(abs(la)::text, 2, '0'),
                                          CASE WHEN lo >= 0 THEN 'E' ELSE 'W' END, lpad(abs(lo)::text, 3, '0')) AS tile
                              FROM generate_series(greatest(floor(box.a)::int, -90),
                                                   least(greatest(floor(box.a)::int, ceil(box.b)::int - 1), 89)) la,
                                   generate_series(floor(box.c)::int, greatest(floor(box.c)::int, ceil(box.d)::int - 1)) lo_raw,
                                   LATERAL (SELECT ((lo_raw + 180) % 360 + 360) % 360 - 180 AS lo) w
                             WHERE NOT EXISTS (SELECT 1 FROM heimdall.terrain_tiles t
                                                WHERE t.set_name = tset.name AND t.lat = la AND t.lon = w.lo)) c) m;
            IF n_missing > 0 AND box.key = 'receivers' THEN
                RAISE EXCEPTION 'config key "receivers": terrain set "%" does not cover the receivers (lat % .. %, lon % .. %): it lacks tile(s) %',
                        tset.name, round(box.a::numeric, 4), round(box.b::numeric, 4), round(box.c::numeric, 4),
                        round(box.d::numeric, 4),
                        missing || CASE WHEN n_missing > 20 THEN format(' ... (%s in all)', n_missing) ELSE '' END
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'import a terrain set with these tiles (over the sea: a tile of zeros), or move the receivers';
            ELSIF n_missing > 0 THEN
                RAISE EXCEPTION 'config key "outside_margin_km": terrain set "%" does not cover the transmitter placement area (lat % .. %, lon % .. %: the receivers'' box widened by outside_margin_km): it lacks tile(s) %',
                        tset.name, round(box.a::numeric, 4), round(box.b::numeric, 4), round(box.c::numeric, 4),
                        round(box.d::numeric, 4),
                        missing || CASE WHEN n_missing > 20 THEN format(' ... (%s in all)', n_missing) ELSE '' END
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'import a terrain set with these tiles (over the sea: a tile of zeros), lower outside_margin_km, or set inside_ratio to 1';
            END IF;
        END LOOP;
    ELSIF jsonb_typeof(prop -> 'terrain') <> 'null' THEN
        RAISE EXCEPTION 'config key "propagation": "terrain" must be null (area mode) or the name of a terrain set, got %',
                left((prop -> 'terrain')::text, 100)
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF prop ? 'terrain_sha256' THEN
        RAISE EXCEPTION 'config key "propagation": "terrain_sha256" belongs to a terrain set: without "terrain" leave it out'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prop ->> 'model' = 'itm' AND (result ->> 'frequency_mhz')::numeric < 20 THEN
        RAISE EXCEPTION 'config key "frequency_mhz": propagation model "itm" needs 20 .. 20000 MHz, got %',
                result ->> 'frequency_mhz'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'or "propagation": {"model": "free_space"}';
    END IF;
    result := jsonb_set(result, '{propagation}', prop);
    -- tx_antenna: given sub-keys override the default object of its config_keys row
    SELECT ck.default_value INTO ant FROM heimdall.config_keys ck WHERE ck.key = 'tx_antenna';
    SELECT string_agg(format('"%s"', key), ', ' ORDER BY key) INTO unknown
      FROM jsonb_object_keys(result -> 'tx_antenna') key WHERE NOT ant ? key;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'config key "tx_antenna": unknown key(s) %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'keys: ' || (SELECT string_agg(key, ', ' ORDER BY key) FROM jsonb_object_keys(ant) key);
    END IF;
    ant := ant || (result -> 'tx_antenna');
    FOR pk IN SELECT * FROM (VALUES ('body_loss_db', 40::numeric), ('tilt_max_deg', 90), ('xpd_los_db', 60),
                                    ('xpd_nlos_db', 60)) AS t(key, hi) LOOP
        IF jsonb_typeof(ant -> pk.key) IS DISTINCT FROM 'number' OR (ant ->> pk.key)::numeric < 0
           OR (ant ->> pk.key)::numeric > pk.hi THEN
            RAISE EXCEPTION 'config key "tx_antenna": "%" must be a number >= 0 and <= %, got %',
                    pk.key, pk.hi, left((ant -> pk.key)::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    result := jsonb_set(result, '{tx_antenna}', ant);
    IF (result ->> 'tx_height_agl_min_m')::numeric > (result ->> 'tx_height_agl_max_m')::numeric THEN
        RAISE EXCEPTION 'config key "tx_height_agl_max_m": must be >= tx_height_agl_min_m (% < %)',
                result ->> 'tx_height_agl_max_m', result ->> 'tx_height_agl_min_m'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- man-made noise (ITU-R P.372) is defined for 0.3 .. 250 MHz
    IF (result ->> 'frequency_mhz')::numeric NOT BETWEEN 0.3 AND 250 THEN
        unknown := NULL;
        IF rx_mode = 'fixed' THEN
            SELECT string_agg(format('"%s" (%s)', s ->> 'id', s ->> 'noise_environment'), ', ') INTO unknown
              FROM jsonb_array_elements(result -> 'receivers' -> 'stations') s
             WHERE s ->> 'noise_environment' <> 'none';
        ELSIF result ->> 'noise_environment' <> 'none' THEN
            unknown := format('all (%s)', result ->> 'noise_environment');
        END IF;
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'config key "noise_environment": ITU-R P.372 man-made noise is defined for 0.3 .. 250 MHz, frequency_mhz is %: receivers % need "none"',
                    result ->> 'frequency_mhz', unknown
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'set "noise_environment": "none" (and the stations'' overrides) and put the site noise into noise_figure_db';
        END IF;
    END IF;

    -- cross-key constraints
    IF (result ->> 'tx_alt_min_m')::numeric > (result ->> 'tx_alt_max_m')::numeric THEN
        RAISE EXCEPTION 'config key "tx_alt_max_m": must be >= tx_alt_min_m (% < %)',
                result ->> 'tx_alt_max_m', result ->> 'tx_alt_min_m'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The noise floor is estimated from the spectrum outside the channel: keep half the
    -- sampled band free.
    IF (result ->> 'bandwidth_hz')::numeric > 0.5 * (result ->> 'sample_rate_hz')::numeric THEN
        RAISE EXCEPTION 'config key "bandwidth_hz": must be <= sample_rate_hz / 2 (% > % / 2)',
                result ->> 'bandwidth_hz', result ->> 'sample_rate_hz'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    iq_len := floor((result ->> 'sample_rate_hz')::numeric * (result ->> 'duration_ms')::numeric / 1000);
    IF iq_len < 64 OR iq_len > 2000000 THEN
        RAISE EXCEPTION 'config key "duration_ms": sample_rate_hz * duration_ms / 1000 = % IQ samples per receiver, must be in [64, 2000000]', iq_len
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- memory per sample and per chunk object (see the header)
    sample_bytes := rx_max * iq_len * 8;
    IF sample_bytes > 67108864 THEN
        RAISE EXCEPTION 'config keys "receivers", "sample_rate_hz", "duration_ms": % receivers x % IQ samples x 8 bytes = % bytes per sample, must be <= 67108864 (64 MiB)',
                rx_max, iq_len, sample_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'fewer receivers, a lower sample_rate_hz or a shorter duration_ms';
    END IF;
    IF (result ->> 'chunk_size')::numeric * sample_bytes > 2147483648 THEN
        RAISE EXCEPTION 'config key "chunk_size": % samples x % bytes per sample = % bytes per chunk object, must be <= 2147483648 (2 GiB): chunk_size at most % with these receivers, sample_rate_hz and duration_ms',
                result ->> 'chunk_size', sample_bytes, (result ->> 'chunk_size')::numeric * sample_bytes,
                floor(2147483648 / sample_bytes)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (result ->> 'min_receivers')::int > rx_max THEN
        RAISE EXCEPTION 'config key "min_receivers": % exceeds the % receivers of the layout', result ->> 'min_receivers', rx_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Oscillators (revision 0003, issue 12): the largest carrier offset a receiver can see
    -- (transmitter + its local oscillator, ppm of the carrier, + freq_offset_max_hz) plus
    -- half the Carson bandwidth 2 (fm_deviation_hz + 3000 Hz of audio) must stay inside
    -- the channel (|f| <= bandwidth_hz / 2, itself <= sample_rate_hz / 2, checked above).
    -- A config stored without these keys is never re-normalized.
    max_off := ((result ->> 'tx_freq_error_ppm')::numeric + (result ->> 'rx_lo_error_ppm')::numeric)
               * (result ->> 'frequency_mhz')::numeric + (result ->> 'freq_offset_max_hz')::numeric;
    carson := 2 * ((result ->> 'fm_deviation_hz')::numeric + 3000);
    IF 2 * max_off + carson > (result ->> 'bandwidth_hz')::numeric THEN
        RAISE EXCEPTION 'config keys "tx_freq_error_ppm", "rx_lo_error_ppm", "freq_offset_max_hz", "fm_deviation_hz", "bandwidth_hz": the signal does not fit the channel: largest carrier offset (% + %) ppm x % MHz + % Hz = % Hz, plus half the Carson bandwidth 2 x (fm_deviation_hz % + 3000 Hz audio) / 2 = % Hz, exceeds bandwidth_hz / 2 = % Hz',
                result ->> 'tx_freq_error_ppm', result ->> 'rx_lo_error_ppm', result ->> 'frequency_mhz',
                result ->> 'freq_offset_max_hz', round(max_off, 1), result ->> 'fm_deviation_hz', carson / 2,
                (result ->> 'bandwidth_hz')::numeric / 2
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('largest offset allowed: %s Hz; lower tx_freq_error_ppm / rx_lo_error_ppm / freq_offset_max_hz or fm_deviation_hz, or raise bandwidth_hz (<= sample_rate_hz / 2)',
                                greatest(round(((result ->> 'bandwidth_hz')::numeric - carson) / 2, 1), 0));
    END IF;
    RETURN result;
END;
$$;

COMMENT ON FUNCTION heimdall.normalize_config(jsonb) IS
    'Merge defaults, validate and return the complete generation config (errors: 22023).';
