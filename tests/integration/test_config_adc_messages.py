"""normalize_config and the keys of revision 0004 (issue 12 items 4 and 6): the receiver
ADC (adc_bits, agc_target_dbfs, agc_window_ms), the stored IQ type (iq_dtype) and the
messages (tx_power_fluctuation_db, tx_key_up_probability, tx_drop_probability,
ctcss_probability, voice_min_active_fraction): defaults for new configs, 22023 naming the key
for a bad value, configs stored without them read as before; the IQ pointer table's rules
for the two dtypes.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import errors as pgerr

from worker.config import GenerationConfig, default_config_snapshot

DEFAULTS = {"adc_bits": 16, "agc_target_dbfs": -15, "agc_window_ms": 10, "iq_dtype": "ci16_le",
            "tx_power_fluctuation_db": 2, "tx_key_up_probability": 0.1, "tx_drop_probability": 0.1,
            "ctcss_probability": 0.3, "voice_min_active_fraction": 0.3}


def normalize(conn, config) -> dict:
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (json.dumps(config),)).fetchone()[0]


def test_new_configs_get_the_defaults(conn):
    cfg = normalize(conn, {})
    assert {k: cfg[k] for k in DEFAULTS} == DEFAULTS
    assert cfg == default_config_snapshot()
    g = GenerationConfig.from_normalized(cfg)
    assert (g.adc_bits, g.agc_target_dbfs, g.agc_window_ms, g.iq_dtype, g.stored_iq_dtype) == (16, -15.0, 10.0,
                                                                                                "ci16_le", "ci16_le")
    assert (g.tx_power_fluctuation_db, g.tx_key_up_probability, g.tx_drop_probability, g.ctcss_probability,
            g.voice_min_active_fraction) == (2.0, 0.1, 0.1, 0.3, 0.3)


def test_given_values_are_kept_and_normalization_is_idempotent(conn):
    given = {"adc_bits": 12, "agc_target_dbfs": -20.5, "agc_window_ms": 5, "iq_dtype": "complex64",
             "tx_power_fluctuation_db": 0, "tx_key_up_probability": 0, "tx_drop_probability": 1,
             "ctcss_probability": 1, "voice_min_active_fraction": 0}
    cfg = normalize(conn, given)
    assert {k: cfg[k] for k in given} == given          # falsy values honoured
    assert normalize(conn, cfg) == cfg
    assert GenerationConfig.from_normalized(cfg).stored_iq_dtype == "complex64"


@pytest.mark.parametrize("key, value, words", [
    ("adc_bits", 7, ["adc_bits", "8"]),
    ("adc_bits", 17, ["adc_bits", "16"]),
    ("adc_bits", 12.5, ["adc_bits", "integer"]),
    ("agc_target_dbfs", 1, ["agc_target_dbfs"]),
    ("agc_target_dbfs", -61, ["agc_target_dbfs"]),
    ("agc_window_ms", 0.05, ["agc_window_ms"]),
    ("iq_dtype", "ci8", ["iq_dtype", "ci16_le, complex64"]),
    ("iq_dtype", 16, ["iq_dtype"]),
    ("tx_power_fluctuation_db", 21, ["tx_power_fluctuation_db"]),
    ("tx_key_up_probability", 1.5, ["tx_key_up_probability"]),
    ("tx_drop_probability", -0.1, ["tx_drop_probability"]),
    ("ctcss_probability", "often", ["ctcss_probability"]),
    ("voice_min_active_fraction", 2, ["voice_min_active_fraction"]),
])
def test_bad_values_are_rejected_naming_the_key(conn, key, value, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, {key: value})
    msg = str(exc.value)
    assert all(w in msg for w in words), msg


def test_a_config_stored_without_the_keys_reads_as_before():
    cfg = {k: v for k, v in default_config_snapshot().items() if k not in DEFAULTS}
    g = GenerationConfig.from_normalized(cfg)
    assert g.adc_bits is None and g.iq_dtype is None and g.stored_iq_dtype == "complex64"
    assert g.tx_key_up_probability is None and g.voice_min_active_fraction is None


def _pointer_row(conn, dtype: str, shape: list[int], nbytes: int, scale):
    """Insert one IQ pointer row (owner connection, this test's own database; replica mode
    skips the foreign key and the pairing triggers, so the row's CHECKs alone decide)."""
    conn.execute("SET session_replication_role = replica")
    conn.execute(
        "INSERT INTO heimdall.synthetic_iq_samples (dataset_id, sample_idx, object_key, byte_offset, byte_length,"
        " sha256, shape, dtype, sample_rate_hz, scale_mw) VALUES (%s, 0, 'k', 0, %s, %s, %s, %s, 50000, %s)",
        (str(uuid.uuid4()), nbytes, "0" * 64, shape, dtype, scale))


@pytest.mark.parametrize("dtype, nbytes, scale, ok", [
    ("complex64", 8 * 3 * 100, None, True),
    ("ci16_le", 4 * 3 * 100, [1e-12, 2e-12, 0.0], True),
    ("ci16_le", 8 * 3 * 100, [1e-12, 2e-12, 0.0], False),     # ci16 is 4 bytes per IQ sample
    ("complex64", 4 * 3 * 100, None, False),
    ("ci16_le", 4 * 3 * 100, None, False),                      # ci16 needs its scale
    ("ci16_le", 4 * 3 * 100, [1e-12], False),                   # one per receiver
    ("complex64", 8 * 3 * 100, [1e-12, 2e-12, 0.0], False),    # complex64 has none
    ("cf32_le", 8 * 3 * 100, None, False),
])
def test_iq_pointer_rows_follow_their_dtype(conn, dtype, nbytes, scale, ok):
    if ok:
        _pointer_row(conn, dtype, [3, 100], nbytes, scale)
        assert conn.execute("SELECT dtype FROM heimdall.synthetic_iq_samples").fetchone()[0] == dtype
    else:
        with pytest.raises(psycopg.errors.CheckViolation):
            _pointer_row(conn, dtype, [3, 100], nbytes, scale)
