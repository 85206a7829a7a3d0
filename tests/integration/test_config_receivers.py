"""normalize_config and the receiver keys of revision 0003 (issue 12): "noise_environment"
(ITU-R P.372 man-made noise, network-wide, per fixed station overridable together with
"noise_figure_db") and "tdoa_estimator": defaults for new configs, every value checked with
22023 naming the key; a config stored without them still reads as before; the per-receiver
sigma column round-trips through the worker's binary COPY.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from psycopg import errors as pgerr

from tests.unit.golden_samples import legacy_config
from worker.config import GenerationConfig, default_config_snapshot
from worker.db import copy_rows
from worker.rf import generate_samples
from worker.rows import FEATURE_COLUMNS, feature_rows


def normalize(conn, config) -> dict:
    text = config if isinstance(config, str) else json.dumps(config)
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (text,)).fetchone()[0]


def stations(n: int = 3, **first) -> list[dict]:
    out = [{"id": f"s{i}", "lat": 45 + i / 10, "lon": 7 + i / 10} for i in range(n)]
    out[0].update(first)
    return out


def fixed(**first) -> dict:
    return {"mode": "fixed", "stations": stations(**first)}


def test_defaults_for_new_configs(conn):
    cfg = normalize(conn, {})
    assert cfg["noise_environment"] == "rural" and cfg["tdoa_estimator"] == "joint"
    assert all(s["noise_environment"] == "rural" and s["noise_figure_db"] == 6 for s in cfg["receivers"]["stations"])
    rows = dict(conn.execute("SELECT key, value_type FROM heimdall.config_keys "
                             "WHERE key IN ('noise_environment', 'tdoa_estimator')").fetchall())
    assert rows == {"noise_environment": "string", "tdoa_estimator": "string"}
    assert cfg == default_config_snapshot()
    g = GenerationConfig.from_normalized(cfg)
    assert g.noise_environment == "rural" and g.tdoa_estimator == "joint"
    assert {s.noise_environment for s in g.receivers.stations} == {"rural"}


def test_station_overrides_and_network_defaults(conn):
    cfg = normalize(conn, {"noise_figure_db": 4, "noise_environment": "residential",
                           "receivers": {"mode": "fixed", "stations": [
                               {"id": "a", "lat": 45, "lon": 7, "noise_environment": "city"},
                               {"id": "b", "lat": 45.1, "lon": 7.1, "noise_figure_db": 9.5},
                               {"id": "c", "lat": 45.2, "lon": 7.2, "noise_environment": "none", "noise_figure_db": 0}]}})
    got = [(s["id"], s["noise_environment"], s["noise_figure_db"]) for s in cfg["receivers"]["stations"]]
    assert got == [("a", "city", 4), ("b", "residential", 9.5), ("c", "none", 0)]
    assert normalize(conn, cfg) == cfg                                  # idempotent
    g = GenerationConfig.from_normalized(cfg)
    assert [(s.noise_environment, s.noise_figure_db) for s in g.receivers.stations] == \
        [("city", 4.0), ("residential", 9.5), ("none", 0.0)]
    # random / hexagonal layouts: the network-wide keys, no per-receiver ones
    cfg = normalize(conn, {"noise_environment": "quiet_rural", "tdoa_estimator": "coherent",
                           "receivers": {"mode": "hexagonal"}})
    assert cfg["noise_environment"] == "quiet_rural" and cfg["tdoa_estimator"] == "coherent"
    assert "noise_environment" not in cfg["receivers"]


@pytest.mark.parametrize("config, words", [
    ({"noise_environment": "suburban"}, ['"noise_environment"', "city, residential, rural, quiet_rural, none"]),
    ({"noise_environment": 3}, ['"noise_environment"', "must be a string"]),
    ({"noise_environment": None}, ['"noise_environment"', "must be a string"]),
    ({"tdoa_estimator": "gcc_phat"}, ['"tdoa_estimator"', "joint, coherent", "gcc_phat"]),
    ({"receivers": fixed(noise_environment="urban")}, ['station "s0"', "noise_environment", "urban"]),
    ({"receivers": fixed(noise_environment=["city"])}, ['station "s0"', "noise_environment"]),
    ({"receivers": fixed(noise_figure_db=41)}, ['station "s0"', "noise_figure_db", "[0, 40]"]),
    ({"receivers": fixed(noise_figure_db="6")}, ['station "s0"', "noise_figure_db"]),
    ({"receivers": fixed(noise_temperature_k=290)}, ["unknown station key", "noise_temperature_k"]),
    # P.372's man-made noise stops at 250 MHz: the default "rural" needs "none" above it
    ({"frequency_mhz": 433}, ['"noise_environment"', "0.3 .. 250 MHz", "433", '"s0" (rural)'.replace("s0", "aquila_di_giaveno")]),
    ({"frequency_mhz": 433, "noise_environment": "none", "receivers": fixed(noise_environment="city")},
     ['"noise_environment"', '"s0" (city)']),
    ({"frequency_mhz": 433, "receivers": {"mode": "random"}}, ['"noise_environment"', "all (rural)"]),
])
def test_bad_values_are_rejected_naming_the_key(conn, config, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, config)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_none_works_at_any_frequency(conn):
    cfg = normalize(conn, {"frequency_mhz": 433, "noise_environment": "none"})
    assert {s["noise_environment"] for s in cfg["receivers"]["stations"]} == {"none"}
    cfg = normalize(conn, {"frequency_mhz": 1296, "noise_environment": "none", "receivers": {"mode": "random"},
                           "bandwidth_hz": 25000})   # room for 1.5 ppm of 1296 MHz (oscillators, 0003)
    assert cfg["noise_environment"] == "none"


def test_a_config_stored_before_0003_reads_as_before(conn):
    stored = legacy_config()     # what 0001 stored: no noise_environment, no tdoa_estimator
    assert not {"noise_environment", "tdoa_estimator"} & set(stored)
    cfg = GenerationConfig.from_normalized(stored)
    assert cfg.noise_environment is None and cfg.tdoa_estimator is None
    assert all(s.noise_environment is None and s.noise_figure_db is None for s in cfg.receivers.stations)
    # a 0002-era config (propagation, no receiver keys) likewise keeps one noise figure
    mid = {k: v for k, v in default_config_snapshot().items() if k not in ("noise_environment", "tdoa_estimator")}
    mid["receivers"] = {"mode": "fixed", "stations": [
        {k: v for k, v in s.items() if k not in ("noise_environment", "noise_figure_db")}
        for s in mid["receivers"]["stations"]]}
    b = generate_samples(GenerationConfig.from_normalized(mid), 3, 0, 2, want_iq=False)
    assert np.all(np.isnan(b.tdoa_std_s))


def test_tdoa_std_round_trips_through_binary_copy(conn):
    conn.execute("CREATE TEMP TABLE heimdall_stage_features (LIKE heimdall.measurement_features INCLUDING DEFAULTS)")
    new = generate_samples(GenerationConfig.from_normalized(default_config_snapshot()), 3, 0, 2, want_iq=False)
    old = generate_samples(GenerationConfig.from_normalized(legacy_config()), 3, 0, 2, want_iq=False)
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    assert copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(ids[0], new)) == 2
    assert copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(ids[1], old)) == 2
    rows = conn.execute("SELECT dataset_id, sample_idx, tdoa_std_s, tdoa_s FROM pg_temp.heimdall_stage_features "
                        "ORDER BY 1, 2").fetchall()
    for ds, k, std, tdoa in rows:
        if ds == ids[0]:
            want = new.tdoa_std_s[k, :new.num_receivers[k]].astype(np.float32)
            assert np.array_equal(np.asarray(std, dtype=np.float32), want, equal_nan=True)
            assert 0.0 in std                                   # the reference
            # NaN (not NULL) elements exactly where tdoa_s is NaN
            assert np.array_equal(np.isnan(np.asarray(std, dtype=float)), np.isnan(np.asarray(tdoa, dtype=float)))
        else:
            assert std is None                                  # coherent estimator: NULL
