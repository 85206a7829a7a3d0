"""normalize_config and the oscillator keys of revision 0003 (issue 12 item 2):
"tx_freq_error_ppm" / "rx_lo_error_ppm" (defaults for new configs; freq_offset_max_hz becomes
an extra offset, 0 by default), the check that the largest carrier offset plus half the
Carson bandwidth fits the channel (22023 naming the keys), and that stored configs of old
datasets, never re-normalized, are not subject to it; the new truth column round-trips.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.unit.golden_samples import legacy_config
from worker.config import GenerationConfig, default_config_snapshot
from worker.db import copy_rows
from worker.rf import generate_samples
from worker.rows import FEATURE_COLUMNS, feature_rows

KEYS = '"tx_freq_error_ppm", "rx_lo_error_ppm", "freq_offset_max_hz", "fm_deviation_hz", "bandwidth_hz"'


def normalize(conn, config) -> dict:
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (json.dumps(config),)).fetchone()[0]


def test_defaults_for_new_configs(conn):
    cfg = normalize(conn, {})
    assert (cfg["tx_freq_error_ppm"], cfg["rx_lo_error_ppm"], cfg["freq_offset_max_hz"]) == (1, 0.5, 0)
    assert cfg == default_config_snapshot()
    g = GenerationConfig.from_normalized(cfg)
    assert (g.tx_freq_error_ppm, g.rx_lo_error_ppm) == (1.0, 0.5)
    units = dict(conn.execute("SELECT key, unit FROM heimdall.config_keys "
                              "WHERE key IN ('tx_freq_error_ppm', 'rx_lo_error_ppm')").fetchall())
    assert units == {"tx_freq_error_ppm": "ppm", "rx_lo_error_ppm": "ppm"}


@pytest.mark.parametrize("config", [
    # 2 x (1.5 ppm x 145 MHz) + 2 x (2500 + 3000) = 11435 <= 12500
    {},
    # exactly at the limit: 2 x (2 ppm x 125 MHz + 500 Hz) + 2 x (2000 + 3000) = 11500
    {"frequency_mhz": 125, "tx_freq_error_ppm": 1.5, "rx_lo_error_ppm": 0.5, "freq_offset_max_hz": 500,
     "fm_deviation_hz": 2000, "bandwidth_hz": 11500},
    # a wider channel holds UHF: 2 x 1.5 x 1296 + 11000 = 14888 <= 25000
    {"frequency_mhz": 1296, "noise_environment": "none", "bandwidth_hz": 25000},
])
def test_offsets_that_fit_the_channel_are_accepted(conn, config):
    cfg = normalize(conn, config)
    assert normalize(conn, cfg) == cfg                             # idempotent


@pytest.mark.parametrize("config, words", [
    # the default oscillators at 1296 MHz: 1944 Hz + 5500 Hz > 6250 Hz
    ({"frequency_mhz": 1296, "noise_environment": "none"}, ["1944.0 Hz", "5500", "6250", "largest offset allowed: 750"]),
    # 5 kHz deviation: Carson 16 kHz > 12.5 kHz whatever the offset
    ({"fm_deviation_hz": 5000}, ["8000", "6250", "largest offset allowed: 0"]),
    ({"freq_offset_max_hz": 600}, ["817.5 Hz"]),
    ({"tx_freq_error_ppm": 10}, ["(10 + 0.5) ppm x 145 MHz", "1522.5 Hz"]),
    # just past the limit
    ({"frequency_mhz": 125, "tx_freq_error_ppm": 1.5, "rx_lo_error_ppm": 0.5, "freq_offset_max_hz": 500.5,
      "fm_deviation_hz": 2000, "bandwidth_hz": 11500}, ["750.5 Hz"]),
])
def test_offsets_beyond_the_channel_are_rejected_naming_the_keys(conn, config, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, config)
    text = str(exc.value) + " " + (exc.value.diag.message_hint or "")
    for w in [KEYS, *words]:
        assert w in text, (w, text)


@pytest.mark.parametrize("config, words", [
    ({"tx_freq_error_ppm": -1}, ['"tx_freq_error_ppm"', ">= 0"]),
    ({"rx_lo_error_ppm": 101}, ['"rx_lo_error_ppm"', "<= 100"]),
    ({"rx_lo_error_ppm": "1"}, ['"rx_lo_error_ppm"', "must be a number"]),
])
def test_bad_values_are_rejected(conn, config, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, config)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_a_stored_old_config_beyond_the_channel_is_not_rechecked(conn):
    # 0001 accepted any freq_offset_max_hz up to 100 kHz: such a stored config (no oscillator
    # keys) is never re-normalized, so expanding the dataset goes on as before.
    ds = conn.execute("SELECT heimdall.create_dataset('old-offsets', 'feature_based', '{}', 1, 0)").fetchone()[0]
    old = legacy_config()
    old["freq_offset_max_hz"] = 4000
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.synthetic_datasets SET config = %s WHERE id = %s", (Jsonb(old), ds))
    conn.execute("SELECT heimdall.expand_dataset(%s, 5)", (ds,))
    stored = conn.execute("SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert stored == old
    with pytest.raises(pgerr.InvalidParameterValue):
        normalize(conn, old)          # as a NEW config it would be rejected (the keys get defaults)
    b = generate_samples(GenerationConfig.from_normalized(stored), 1, 0, 2, want_iq=False)
    assert np.all(np.isnan(b.true_tx_freq_offset_hz)) and np.nanmax(np.abs(b.true_freq_offset_hz)) > 500


def test_tx_offset_round_trips_through_binary_copy(conn):
    conn.execute("CREATE TEMP TABLE heimdall_stage_features (LIKE heimdall.measurement_features INCLUDING DEFAULTS)")
    new = generate_samples(GenerationConfig.from_normalized(default_config_snapshot()), 3, 0, 2, want_iq=False)
    old = generate_samples(GenerationConfig.from_normalized(legacy_config()), 3, 0, 2, want_iq=False)
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(ids[0], new))
    copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(ids[1], old))
    rows = conn.execute("SELECT dataset_id, sample_idx, true_tx_freq_offset_hz FROM pg_temp.heimdall_stage_features "
                        "ORDER BY 1, 2").fetchall()
    assert [(d, k) for d, k, _ in rows] == [(ids[0], 0), (ids[0], 1), (ids[1], 0), (ids[1], 1)]
    assert [np.float32(v) for _, _, v in rows[:2]] == [np.float32(x) for x in new.true_tx_freq_offset_hz]
    assert [v for _, _, v in rows[2:]] == [None, None]
