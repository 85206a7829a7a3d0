"""The numbers behind `heimdall-synth plot --kind propagation` (heimdall_synth.propagation_plot):
detection share per distance bin and the half-detection distance against hand-computed
values, the links of feature rows, and the model's median curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heimdall_synth.propagation_plot import (
    detection_by_distance,
    half_detection_km,
    link_table,
    median_rx_power_dbm,
)
from worker.config import default_config_snapshot

# km, and whether the link was detected
DIST = [0.5, 3.0, 9.99, 10.0, 15.0, 19.9, 25.0, 31.0, 35.0]
DET = [True, True, False, True, False, False, False, True, False]


def test_detection_share_per_distance_bin_by_hand():
    b = detection_by_distance(np.array(DIST), np.array(DET), bin_km=10.0, min_links=1)
    # [0, 10): 0.5, 3, 9.99 -> 2 of 3; [10, 20): 10, 15, 19.9 -> 1 of 3; [20, 30): 25 -> 0 of 1;
    # [30, 40): 31, 35 -> 1 of 2
    np.testing.assert_array_equal(b.edges_km, [0.0, 10.0, 20.0, 30.0, 40.0])
    np.testing.assert_array_equal(b.links, [3, 3, 1, 2])
    np.testing.assert_array_equal(b.detected, [2, 1, 0, 1])
    np.testing.assert_allclose(b.fraction, [2 / 3, 1 / 3, 0.0, 0.5])
    np.testing.assert_array_equal(b.centres_km, [5.0, 15.0, 25.0, 35.0])
    # fewer links than min_links: no share
    b2 = detection_by_distance(np.array(DIST), np.array(DET), bin_km=10.0, min_links=2)
    np.testing.assert_allclose(b2.fraction, [2 / 3, 1 / 3, np.nan, 0.5])
    # other bins: 20 km -> [0, 20): 3 of 6, [20, 40): 1 of 3
    b3 = detection_by_distance(np.array(DIST), np.array(DET), bin_km=20.0, min_links=1)
    np.testing.assert_array_equal((b3.links, b3.detected), ([6, 3], [3, 1]))
    # links without a finite distance are left out
    b4 = detection_by_distance(np.array(DIST + [np.nan]), np.array(DET + [True]), bin_km=10.0, min_links=1)
    np.testing.assert_array_equal(b4.links, b.links)


def test_half_detection_distance_by_hand():
    b = detection_by_distance(np.array(DIST), np.array(DET), bin_km=10.0, min_links=2)
    # shares 2/3 at 5 km, 1/3 at 15 km: 0.5 is crossed half-way, at 10 km
    assert half_detection_km(b) == pytest.approx(10.0)
    # crossing at 3/4 of the step: 0.8 at 5 km, 0.4 at 15 km -> 5 + 10 * 0.3 / 0.4 = 12.5 km
    d = np.array([5.0] * 5 + [15.0] * 5)
    hit = np.array([True] * 4 + [False] + [True] * 2 + [False] * 3)
    assert half_detection_km(detection_by_distance(d, hit, min_links=1)) == pytest.approx(12.5)
    # the first bin already below one half: its centre; never below: NaN
    assert half_detection_km(detection_by_distance(np.array([1.0, 2.0, 3.0]), np.array([True, False, False]),
                                                   min_links=1)) == pytest.approx(5.0)
    assert math.isnan(half_detection_km(detection_by_distance(np.array([1.0, 12.0]), np.array([True, True]),
                                                              min_links=1)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="bin_km"):
        detection_by_distance(np.array([1.0]), np.array([True]), bin_km=0)
    with pytest.raises(ValueError, match="differ in shape"):
        detection_by_distance(np.array([1.0, 2.0]), np.array([True]))


def test_link_table_takes_each_samples_receivers():
    rows = [
        {"sample_idx": 0, "attempts": 3, "num_receivers": 2, "distance_m": [1000.0, 25000.0],
         "signal_present": [True, False], "rssi_dbm": [-80.0, float("nan")], "noise_floor_dbm": [-127.0, -126.0],
         "true_rx_power_dbm": [-79.0, -140.0], "path_loss_median_db": [100.0, 150.0], "tx_height_agl_m": 1.5,
         "rx_height_agl_m": [10.0, 20.0], "los": [True, False]},
        {"sample_idx": 1, "attempts": 1, "num_receivers": 1, "distance_m": [5000.0],
         "signal_present": [True], "rssi_dbm": [-90.0], "noise_floor_dbm": [-127.5],
         "true_rx_power_dbm": [-91.0], "path_loss_median_db": None, "tx_height_agl_m": None,
         "rx_height_agl_m": None, "los": [False]},
    ]
    t = link_table(rows)
    np.testing.assert_allclose(t.distance_km, [1.0, 25.0, 5.0])
    np.testing.assert_array_equal(t.detected, [True, False, True])
    np.testing.assert_allclose(t.rx_height_agl_m, [10.0, 20.0, np.nan])
    assert (t.samples, t.attempts) == (2, 4)


def test_median_curve_is_the_models():
    cfg = default_config_snapshot()
    d_km = np.array([10.0, 40.0, 80.0])
    power, name = median_rx_power_dbm(cfg, d_km, 1.5, 10.0)
    from worker.rf import itm

    p = cfg["propagation"]
    loss = itm.itm_area_loss_db(cfg["frequency_mhz"], d_km * 1e3, 1.5, 10.0,
                                terrain_irregularity_m=p["terrain_irregularity_m"], climate=p["climate"],
                                polarization=p["polarization"])
    gains = cfg["tx_antenna_gain_dbi"] + cfg["rx_antenna_gain_dbi"]
    np.testing.assert_allclose(power, cfg["tx_power_dbm"] + gains - loss, atol=1e-9)
    assert name == "ITM area mode, delta h 90 m" and np.all(np.diff(power) < 0)
    # free space: the model's, and the path of configs without "propagation"
    legacy = {k: v for k, v in cfg.items() if k != "propagation"}
    power_fs, name_fs = median_rx_power_dbm(legacy, np.array([10.0]), 1.5, 10.0)
    fs = 32.45 + 20 * math.log10(cfg["frequency_mhz"]) + 20 * math.log10(10.0)
    assert name_fs == "free space" and power_fs[0] == pytest.approx(cfg["tx_power_dbm"] + gains - fs)
    fsm, _ = median_rx_power_dbm({**cfg, "propagation": {**p, "model": "free_space"}}, np.array([10.0]), 1.5, 10.0)
    assert fsm[0] == pytest.approx(power_fs[0])
