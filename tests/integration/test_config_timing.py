"""normalize_config and the receiver timing key of revision 0003 (issue 12 item 1): presets
"gps" / "ntp" / "none" or explicit numbers, network-wide with per-station overrides,
normalized to {"clock_offset_std_s", "sample_rate_error_ppm"}; 22023 naming the key; the
presets' spreads as the generator draws them.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json

import numpy as np
import pytest
from psycopg import errors as pgerr

from worker.config import GenerationConfig, default_config_snapshot
from worker.rf import generate as G
from worker.rf import rng

GPS = {"clock_offset_std_s": 7e-8, "sample_rate_error_ppm": 0.01}
NTP = {"clock_offset_std_s": 0.003, "sample_rate_error_ppm": 1}


def normalize(conn, config) -> dict:
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (json.dumps(config),)).fetchone()[0]


def test_default_is_gps_for_every_station(conn):
    cfg = normalize(conn, {})
    assert cfg["timing"] == GPS
    assert all(s["timing"] == GPS for s in cfg["receivers"]["stations"])
    assert cfg == default_config_snapshot()
    g = GenerationConfig.from_normalized(cfg)
    assert (g.timing.clock_offset_std_s, g.timing.sample_rate_error_ppm) == (7e-8, 0.01)


@pytest.mark.parametrize("value, expected", [
    ("gps", GPS), ("ntp", NTP), ("none", {"clock_offset_std_s": 0, "sample_rate_error_ppm": 0}),
    ({"clock_offset_std_s": 1e-6, "sample_rate_error_ppm": 0.5}, {"clock_offset_std_s": 1e-6, "sample_rate_error_ppm": 0.5}),
])
def test_presets_and_explicit_values(conn, value, expected):
    cfg = normalize(conn, {"timing": value})
    assert cfg["timing"] == expected
    assert normalize(conn, cfg) == cfg                             # idempotent


def test_station_override(conn):
    stations = normalize(conn, {})["receivers"]["stations"]
    raw = [{k: s[k] for k in ("id", "lat", "lon")} for s in stations]
    raw[1]["timing"] = "ntp"
    cfg = normalize(conn, {"timing": "none", "receivers": {"mode": "fixed", "stations": raw}})
    got = [s["timing"] for s in cfg["receivers"]["stations"]]
    assert got[1] == NTP and all(t == {"clock_offset_std_s": 0, "sample_rate_error_ppm": 0} for i, t in enumerate(got) if i != 1)
    assert normalize(conn, cfg) == cfg
    g = GenerationConfig.from_normalized(cfg)
    std, rate = G._timing_arrays(g, len(stations))
    assert std[1] == 0.003 and rate[1] == 1.0 and np.count_nonzero(std) == 1


@pytest.mark.parametrize("value, words", [
    ("rubidium", ['config key "timing"', '"gps", "ntp", "none"', "rubidium"]),
    (5, ['config key "timing"', "JSON object"]),
    ({"clock_offset_std_s": 1e-6}, ['config key "timing"', "sample_rate_error_ppm", "nothing"]),
    ({"clock_offset_std_s": 0.1, "sample_rate_error_ppm": 0}, ['config key "timing"', "clock_offset_std_s", "[0, 0.05]"]),
    ({"clock_offset_std_s": -1e-9, "sample_rate_error_ppm": 0}, ['config key "timing"', "clock_offset_std_s"]),
    ({"clock_offset_std_s": 0, "sample_rate_error_ppm": 101}, ['config key "timing"', "sample_rate_error_ppm", "[0, 100]"]),
    ({"clock_offset_std_s": "1e-6", "sample_rate_error_ppm": 0}, ['config key "timing"', "clock_offset_std_s"]),
    ({"clock_offset_std_s": 0, "sample_rate_error_ppm": 0, "jitter_s": 1}, ['config key "timing"', '"jitter_s"']),
])
def test_invalid_timing_is_rejected_naming_the_key(conn, value, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, {"timing": value})
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_invalid_station_timing_names_the_station(conn):
    stations = normalize(conn, {})["receivers"]["stations"]
    raw = [{k: s[k] for k in ("id", "lat", "lon")} for s in stations]
    raw[2]["timing"] = {"clock_offset_std_s": 1, "sample_rate_error_ppm": 0}
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, {"receivers": {"mode": "fixed", "stations": raw}})
    assert f'station "{raw[2]["id"]}" timing' in str(exc.value) and "clock_offset_std_s" in str(exc.value)


@pytest.mark.parametrize("preset, sigma, rate", [("gps", 7e-8, 0.01), ("ntp", 0.003, 1.0)])
def test_preset_spreads_as_drawn(conn, preset, sigma, rate):
    g = GenerationConfig.from_normalized(normalize(conn, {"timing": preset, "receivers": {
        "mode": "random", "count_min": 4, "count_max": 4}}))
    e = [G.draw_receiver_errors(g, 4, rng.stream(9, i, 0, rng.STREAM_RECEIVER)) for i in range(1000)]
    clock = np.concatenate([x.clock_offset_s for x in e])
    ppm = np.concatenate([x.sample_rate_error_ppm for x in e])
    assert abs(np.std(clock) / sigma - 1.0) < 0.05                 # 4000 normals: ~1 % spread
    assert abs(np.mean(clock)) < 0.05 * sigma
    assert np.max(np.abs(clock)) <= G.CLOCK_SIGMA_CUT * sigma
    assert np.max(np.abs(ppm)) <= rate and np.max(np.abs(ppm)) > 0.99 * rate   # uniform in +-rate
