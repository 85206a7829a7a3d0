"""normalize_config and the propagation keys of revision 0002 (issue 11): defaults for new
configs, every sub-key checked with 22023 naming it, heights above ground; and a config
stored by 0001 (no "propagation") is still read by the generator and gives its golden bytes.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import errors as pgerr

from tests.integration.test_migrations import make_db
from tests.unit.golden_samples import batch_digests, legacy_config
from tests.unit.test_golden_samples import GOLDEN
from worker import db
from worker.config import GenerationConfig, default_config_snapshot
from worker.db import copy_rows
from worker.rf import generate_samples
from worker.rows import FEATURE_COLUMNS, feature_rows

DEFAULT_PROPAGATION = {
    "model": "itm", "terrain": None, "terrain_irregularity_m": 90, "surface_refractivity_n": 301,
    "climate": "continental_temperate", "ground_permittivity": 15, "ground_conductivity_s_m": 0.005,
    "polarization": "vertical", "rx_siting": "random", "tx_siting": "random", "nlos_excess_delay_mean_s": 1e-6,
}
DEFAULT_TX_ANTENNA = {"body_loss_db": 8, "tilt_max_deg": 45, "xpd_los_db": 12, "xpd_nlos_db": 7}
CLIMATES = ["equatorial", "continental_subtropical", "maritime_subtropical", "desert", "continental_temperate",
            "maritime_temperate_land", "maritime_temperate_sea"]


def normalize(conn, config) -> dict:
    text = config if isinstance(config, str) else json.dumps(config)
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (text,)).fetchone()[0]


def stations(n: int = 3, **first) -> list[dict]:
    out = [{"id": f"s{i}", "lat": 45 + i / 10, "lon": 7 + i / 10} for i in range(n)]
    out[0].update(first)
    return out


def test_defaults_for_new_configs(conn):
    cfg = normalize(conn, {})
    assert cfg["propagation"] == DEFAULT_PROPAGATION
    assert (cfg["tx_height_agl_min_m"], cfg["tx_height_agl_max_m"]) == (1.5, 10)
    assert all(s["height_agl_m"] == 10 for s in cfg["receivers"]["stations"])
    assert all(s["antenna"] == {"pattern": "omni", "gain_dbi": 0} for s in cfg["receivers"]["stations"])
    assert cfg["tx_antenna"] == DEFAULT_TX_ANTENNA
    rows = dict(conn.execute("SELECT key, default_value FROM heimdall.config_keys WHERE key IN "
                             "('propagation', 'tx_height_agl_min_m', 'tx_height_agl_max_m', 'tx_antenna')").fetchall())
    assert rows == {"propagation": DEFAULT_PROPAGATION, "tx_height_agl_min_m": 1.5, "tx_height_agl_max_m": 10,
                    "tx_antenna": DEFAULT_TX_ANTENNA}
    # what the worker reads, and the committed snapshot the unit tests use
    assert cfg == default_config_snapshot()
    g = GenerationConfig.from_normalized(cfg)
    assert g.propagation.model == "itm" and g.propagation.nlos_excess_delay_mean_s == 1e-6


def test_given_sub_keys_override_the_defaults_and_normalizing_is_idempotent(conn):
    given = {"propagation": {"model": "free_space", "climate": "desert", "terrain_irregularity_m": 0,
                             "polarization": "horizontal", "rx_siting": "very_careful", "tx_siting": "careful",
                             "nlos_excess_delay_mean_s": 0},
             "tx_height_agl_min_m": 2, "tx_height_agl_max_m": 2, "rx_antenna_gain_dbi": 3,
             "tx_antenna": {"tilt_max_deg": 0, "xpd_nlos_db": 0},
             "receivers": {"mode": "fixed", "stations": stations(3, height_agl_m=35.5)}}
    given["receivers"]["stations"][1]["antenna"] = {"pattern": "directional", "azimuth_deg": 270}
    given["receivers"]["stations"][2]["antenna"] = {"gain_dbi": -2}
    cfg = normalize(conn, given)
    assert cfg["propagation"] == {**DEFAULT_PROPAGATION, **given["propagation"]}
    assert cfg["tx_antenna"] == {**DEFAULT_TX_ANTENNA, "tilt_max_deg": 0, "xpd_nlos_db": 0}
    assert [s["height_agl_m"] for s in cfg["receivers"]["stations"]] == [35.5, 10, 10]
    assert [s["antenna"] for s in cfg["receivers"]["stations"]] == [
        {"pattern": "omni", "gain_dbi": 3},
        {"pattern": "directional", "gain_dbi": 3, "azimuth_deg": 270, "beamwidth_deg": 65, "front_to_back_db": 20},
        {"pattern": "omni", "gain_dbi": -2}]
    assert normalize(conn, cfg) == cfg
    hexa = normalize(conn, {"receivers": {"mode": "hexagonal", "height_agl_m": 0.5, "antenna": {"gain_dbi": 4}}})
    assert hexa["receivers"]["height_agl_m"] == 0.5
    assert hexa["receivers"]["antenna"] == {"pattern": "omni", "gain_dbi": 4}
    rnd = normalize(conn, {"receivers": {"mode": "random"}})["receivers"]
    assert rnd["height_agl_m"] == 10 and rnd["antenna"] == {"pattern": "omni", "gain_dbi": 0}
    for climate in CLIMATES:
        assert normalize(conn, {"propagation": {"climate": climate}})["propagation"]["climate"] == climate
    # free space has no frequency floor; ITM needs 20 MHz
    assert normalize(conn, {"frequency_mhz": 10, "propagation": {"model": "free_space"}})["frequency_mhz"] == 10
    # generation runs on what the database returns
    b = generate_samples(GenerationConfig.from_normalized(cfg | {"min_receivers": 3}), 1, 0, 1, want_iq=False)
    assert b.rx_height_agl_m[0].tolist() == [35.5, 10, 10] and b.tx_height_agl_m[0] == 2.0
    assert b.rx_antenna_gain_db[0, 0] == 3 and b.rx_antenna_gain_db[0, 2] == -2 and b.rx_antenna_gain_db[0, 1] <= 3


REJECTED = [
    ({"propagation": {"model": "hata"}}, ['"propagation"', '"model"', "itm, free_space", '"hata"']),
    ({"propagation": {"model": 1}}, ['"propagation"', '"model"']),
    ({"propagation": {"climate": "tropical"}}, ['"propagation"', '"climate"', "maritime_temperate_sea"]),
    ({"propagation": {"polarization": "circular"}}, ['"propagation"', '"polarization"', "horizontal, vertical"]),
    ({"propagation": {"rx_siting": "sloppy"}}, ['"propagation"', '"rx_siting"', "very_careful"]),
    ({"propagation": {"tx_siting": None}}, ['"propagation"', '"tx_siting"', "null"]),
    ({"propagation": {"terrain_irregularity_m": -1}}, ['"propagation"', '"terrain_irregularity_m"', ">= 0"]),
    ({"propagation": {"terrain_irregularity_m": 3001}}, ['"terrain_irregularity_m"', "<= 3000"]),
    ({"propagation": {"terrain_irregularity_m": "90"}}, ['"terrain_irregularity_m"', "must be a number"]),
    ({"propagation": {"surface_refractivity_n": 249}}, ['"surface_refractivity_n"', ">= 250"]),
    ({"propagation": {"surface_refractivity_n": 401}}, ['"surface_refractivity_n"', "<= 400"]),
    ({"propagation": {"ground_permittivity": 1}}, ['"ground_permittivity"', "> 1"]),
    ({"propagation": {"ground_conductivity_s_m": 0}}, ['"ground_conductivity_s_m"', "> 0"]),
    ({"propagation": {"nlos_excess_delay_mean_s": -1e-6}}, ['"nlos_excess_delay_mean_s"', ">= 0"]),
    ({"propagation": {"nlos_excess_delay_mean_s": 0.001}}, ['"nlos_excess_delay_mean_s"', "<= 0.0001"]),
    ({"propagation": {"terrain": "alps-srtm1"}}, ['"propagation"', '"terrain"', 'no terrain set named "alps-srtm1"']),
    ({"propagation": {"terrain": 3}}, ['"propagation"', '"terrain"', "must be null"]),
    ({"propagation": {"antenna": "yagi"}}, ['"propagation"', "unknown key", '"antenna"']),
    ({"propagation": "itm"}, ['"propagation"', "must be a JSON object"]),
    ({"propagation": None}, ['"propagation"', "must be a JSON object"]),
    ('{"propagation": {"ground_conductivity_s_m": 1e-400}}', ['"propagation"', "float64"]),   # JSON text
    ({"frequency_mhz": 10}, ['"frequency_mhz"', '"itm"', "20"]),
    ({"tx_height_agl_min_m": 5, "tx_height_agl_max_m": 4}, ['"tx_height_agl_max_m"', "tx_height_agl_min_m"]),
    ({"tx_height_agl_min_m": 0.4}, ['"tx_height_agl_min_m"', ">= 0.5"]),
    ({"tx_height_agl_max_m": 3001}, ['"tx_height_agl_max_m"', "<= 3000"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, height_agl_m=0.2)}},
     ['"receivers"', 'station "s0"', "height_agl_m", "[0.5, 3000]"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, height_agl_m="10")}}, ['"receivers"', "height_agl_m"]),
    ({"receivers": {"mode": "random", "height_agl_m": 5000}}, ['"receivers"', "height_agl_m", "[0.5, 3000]"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"pattern": "yagi"})}},
     ['"receivers"', 'station "s0"', "pattern", '"omni" or "directional"']),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"pattern": "directional"})}},
     ['"receivers"', 'station "s0"', "azimuth_deg", "[0, 360)"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"pattern": "directional", "azimuth_deg": 360})}},
     ['station "s0"', "azimuth_deg"]),
    ({"receivers": {"mode": "fixed", "stations": stations(
        3, antenna={"pattern": "directional", "azimuth_deg": 10, "beamwidth_deg": 0.5})}},
     ['station "s0"', "beamwidth_deg", "[1, 360]"]),
    ({"receivers": {"mode": "fixed", "stations": stations(
        3, antenna={"pattern": "directional", "azimuth_deg": 10, "front_to_back_db": 61})}},
     ['station "s0"', "front_to_back_db", "[0, 60]"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"azimuth_deg": 10})}},
     ['station "s0"', "azimuth_deg", '"directional"']),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"gain_dbi": 31})}},
     ['station "s0"', "gain_dbi", "[-20, 30]"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna={"tilt": 3})}},
     ['station "s0"', "unknown key", "tilt"]),
    ({"receivers": {"mode": "fixed", "stations": stations(3, antenna="omni")}}, ['station "s0"', "must be an object"]),
    ({"receivers": {"mode": "random", "antenna": {"pattern": "directional", "azimuth_deg": 0}}},
     ['"receivers"', "antenna of a random layout", "omni"]),
    ({"receivers": {"mode": "hexagonal", "antenna": {"gain_dbi": -21}}}, ['"receivers"', "gain_dbi", "[-20, 30]"]),
    ({"tx_antenna": {"body_loss_db": -1}}, ['"tx_antenna"', '"body_loss_db"', ">= 0 and <= 40"]),
    ({"tx_antenna": {"tilt_max_deg": 91}}, ['"tx_antenna"', '"tilt_max_deg"', "<= 90"]),
    ({"tx_antenna": {"xpd_los_db": "high"}}, ['"tx_antenna"', '"xpd_los_db"']),
    ({"tx_antenna": {"xpd_nlos_db": 61}}, ['"tx_antenna"', '"xpd_nlos_db"', "<= 60"]),
    ({"tx_antenna": {"pattern": "whip"}}, ['"tx_antenna"', "unknown key", '"pattern"']),
    ({"tx_antenna": []}, ['"tx_antenna"', "must be a JSON object"]),
]


@pytest.mark.parametrize("config, words", REJECTED, ids=[json.dumps(c)[:60] for c, _ in REJECTED])
def test_rejected_with_22023_naming_the_key(conn, config, words):
    with pytest.raises(pgerr.InvalidParameterValue) as ei:
        normalize(conn, config)
    assert ei.value.sqlstate == "22023"
    msg = str(ei.value.diag.message_primary)
    for w in words:
        assert w in msg, (w, msg)


def test_create_dataset_stores_the_propagation_config(conn):
    ds = conn.execute("SELECT heimdall.create_dataset('prop', 'feature_based', "
                      "'{\"propagation\": {\"terrain_irregularity_m\": 200}}', 1, 1)").fetchone()[0]
    cfg = conn.execute("SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert cfg["propagation"] == {**DEFAULT_PROPAGATION, "terrain_irregularity_m": 200}


def test_a_config_stored_by_0001_takes_the_old_path_bit_for_bit(conn, db_url):
    """A dataset created before 0002 keeps a config without the new keys; after the upgrade
    the generator reads it and produces the golden bytes of generator 1.0.0."""
    url = make_db(conn, "old_config", db_url)
    db.upgrade(url, "0001")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT heimdall.create_dataset('old', 'iq_raw', '{}', 42, 3)")
    db.upgrade(url, "head")
    with psycopg.connect(url, autocommit=True) as c:
        stored, seed = c.execute("SELECT config, seed FROM heimdall.synthetic_datasets WHERE name = 'old'").fetchone()
        # new datasets get the new keys; the stored one is never re-normalized
        assert "propagation" in c.execute("SELECT heimdall.normalize_config('{}')").fetchone()[0]
    assert not {"propagation", "tx_height_agl_min_m", "tx_height_agl_max_m", "tx_antenna"} & set(stored)
    assert all("height_agl_m" not in s and "antenna" not in s for s in stored["receivers"]["stations"])
    cfg = GenerationConfig.from_normalized(stored)
    assert cfg.propagation is None
    assert batch_digests(stored, seed, 0, 3) == GOLDEN["default"]


def test_new_truth_columns_round_trip_through_binary_copy(conn):
    """The worker's COPY (worker.rows) writes the new columns: values on the propagation
    path, NULL on the legacy path (into a table shaped like measurement_features)."""
    conn.execute("CREATE TEMP TABLE heimdall_stage_features (LIKE heimdall.measurement_features INCLUDING DEFAULTS)")
    new = generate_samples(GenerationConfig.from_normalized(default_config_snapshot()), 3, 0, 2, want_iq=False)
    old = generate_samples(GenerationConfig.from_normalized(legacy_config()), 3, 0, 2, want_iq=False)
    ids = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
    assert copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(uuid.UUID(ids[0]), new)) == 2
    assert copy_rows(conn, "heimdall_stage_features", FEATURE_COLUMNS, feature_rows(uuid.UUID(ids[1]), old)) == 2
    rows = conn.execute("SELECT dataset_id::text, sample_idx, tx_height_agl_m, rx_height_agl_m, path_loss_median_db, "
                        "excess_delay_s, path_loss_db, tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db "
                        "FROM pg_temp.heimdall_stage_features ORDER BY 1, 2").fetchall()
    for ds, k, tx_h, rx_h, median, excess, loss, tx_g, rx_g, pol in rows:
        f4 = np.float32   # real columns: equal at float32 precision
        if ds == ids[0]:
            assert f4(tx_h) == f4(new.tx_height_agl_m[k])
            assert rx_h == [10.0] * 7
            for got, want in ((median, new.path_loss_median_db[k]), (excess, new.excess_delay_s[k]),
                              (loss, new.path_loss_db[k]), (tx_g, new.tx_antenna_gain_db[k]),
                              (rx_g, new.rx_antenna_gain_db[k]), (pol, new.polarization_loss_db[k])):
                assert np.array_equal(np.asarray(got, dtype=f4), want.astype(f4))
            assert np.count_nonzero(excess) == np.count_nonzero(~new.los[k])
        else:
            assert (tx_h, rx_h, median, excess, tx_g, rx_g, pol) == (None,) * 7
            assert np.array_equal(np.asarray(loss, dtype=f4), old.path_loss_db[k].astype(f4))
