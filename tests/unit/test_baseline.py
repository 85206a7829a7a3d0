"""Baseline TDOA multilateration (heimdall_synth.baseline): exact TDOAs give the true
position, noisy ones an RMSE at the Cramér-Rao level HDOP·c·σ, and the vectorized solver
agrees with an independent per-sample scipy least-squares reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import least_squares

from heimdall_synth.baseline import (
    DIVERGED,
    SOLVED,
    SPEED_OF_LIGHT_M_S,
    TOO_FEW_RECEIVERS,
    hdop,
    horizontal_error_m,
    solve_tdoa,
    summarize,
)
from worker.rf.geometry import geodetic_to_ecef_m

# the default network (worker/default_config.json)
RX_LAT = np.array([45.03, 45.234, 45.044, 45.048, 44.561, 44.395, 45.478])
RX_LON = np.array([7.27, 7.857, 7.672, 7.238, 8.956, 8.956, 9.123])
RX_ALT = np.array([1000.0, 250.0, 250.0, 450.0, 480.0, 100.0, 150.0])
H_TX = float(np.median(RX_ALT))        # the solver's assumed transmitter height


def toa_s(tx_lat, tx_lon, tx_h, rx_lat=RX_LAT, rx_lon=RX_LON, rx_alt=RX_ALT):
    p = np.stack(geodetic_to_ecef_m(tx_lat, tx_lon, tx_h), axis=-1)[..., None, :]
    r = np.stack(geodetic_to_ecef_m(rx_lat, rx_lon, rx_alt), axis=-1)
    return np.linalg.norm(p - r, axis=-1) / SPEED_OF_LIGHT_M_S


def as_tdoa(toa, present, ref):
    tdoa = toa - toa[np.arange(len(toa)), ref][:, None]
    return np.where(present, tdoa, np.nan)


def batch(s):
    return (np.tile(RX_LAT, (s, 1)), np.tile(RX_LON, (s, 1)), np.tile(RX_ALT, (s, 1)))


def test_exact_tdoas_give_the_true_position_with_three_to_seven_receivers():
    rng = np.random.default_rng(1)
    s = 400
    tx_lat, tx_lon = rng.uniform(44.5, 45.4, s), rng.uniform(7.3, 9.0, s)
    toa = toa_s(tx_lat, tx_lon, H_TX)
    present = np.ones((s, 7), bool)
    k = rng.integers(3, 8, s)                     # receivers per sample, 3 (Chan) to 7
    for i in range(s):
        present[i, rng.permutation(7)[k[i]:]] = False
    ref = np.argmax(present, axis=1)
    res = solve_tdoa(*batch(s), as_tdoa(toa, present, ref), present, tx_height_m=H_TX)
    assert (res.status == SOLVED).mean() > 0.97       # three receivers: two roots, rarely the wrong one
    err = horizontal_error_m(res.lat_deg, res.lon_deg, tx_lat, tx_lon)[res.status == SOLVED]
    many = (k >= 4)[res.status == SOLVED]
    assert np.max(err[many]) < 1.0, np.max(err[many])
    assert np.median(err[~many]) < 1.0
    assert np.array_equal(res.receivers_used, k)


def test_noisy_tdoas_reach_hdop_c_sigma():
    """Independent TOA errors σ = 100 ns (30 m): the horizontal RMSE over many draws is
    HDOP·c·σ within 20 % (the maximum-likelihood estimate attains the Cramér-Rao bound)."""
    rng = np.random.default_rng(2)
    s, sigma = 3000, 100e-9
    for tx_lat, tx_lon in ((45.0, 7.9), (44.9, 8.6)):
        toa = toa_s(np.full(s, tx_lat), np.full(s, tx_lon), H_TX) + rng.normal(0.0, sigma, (s, 7))
        present = np.ones((s, 7), bool)
        ref = np.full(s, 2)
        res = solve_tdoa(*batch(s), as_tdoa(toa, present, ref), present)
        assert (res.status == SOLVED).all()
        err = horizontal_error_m(res.lat_deg, res.lon_deg, tx_lat, tx_lon)
        rmse = math.sqrt(np.mean(err ** 2))
        want = hdop(tx_lat, tx_lon, H_TX, RX_LAT, RX_LON, RX_ALT) * SPEED_OF_LIGHT_M_S * sigma
        assert rmse == pytest.approx(want, rel=0.2), (rmse, want)


def test_weights_from_tdoa_std_favour_the_precise_receivers():
    """Two receivers 30x noisier than the rest: weighting by tdoa_std_s beats ignoring it."""
    rng = np.random.default_rng(3)
    s = 2000
    sig = np.array([20e-9, 20e-9, 20e-9, 20e-9, 600e-9, 600e-9, 20e-9])
    toa = toa_s(np.full(s, 45.0), np.full(s, 8.0), H_TX) + rng.normal(0.0, 1.0, (s, 7)) * sig
    present = np.ones((s, 7), bool)
    ref = np.zeros(s, int)
    tdoa = as_tdoa(toa, present, ref)
    std = np.tile(np.sqrt(sig ** 2 + sig[0] ** 2), (s, 1))
    plain = solve_tdoa(*batch(s), tdoa, present)
    weighted = solve_tdoa(*batch(s), tdoa, present, tdoa_std_s=std)
    e_plain = horizontal_error_m(plain.lat_deg, plain.lon_deg, 45.0, 8.0)
    e_w = horizontal_error_m(weighted.lat_deg, weighted.lon_deg, 45.0, 8.0)
    assert math.sqrt(np.mean(e_w ** 2)) < 0.6 * math.sqrt(np.mean(e_plain ** 2))


def test_agrees_with_an_independent_scipy_least_squares_per_sample():
    """Reference: scipy.optimize.least_squares on (lat, lon) per sample, unwhitened residuals
    of the TDOAs with equal σ whitened by hand (same ML criterion), started at the truth."""
    rng = np.random.default_rng(4)
    s = 60
    tx_lat, tx_lon = rng.uniform(44.6, 45.3, s), rng.uniform(7.4, 8.9, s)
    toa = toa_s(tx_lat, tx_lon, H_TX) + rng.normal(0.0, 200e-9, (s, 7))
    present = rng.random((s, 7)) > 0.2
    present[:, 3] = True
    ref = np.full(s, 3)
    tdoa = as_tdoa(toa, present, ref)
    res = solve_tdoa(*batch(s), tdoa, present, tx_height_m=H_TX)
    for i in range(s):
        use = present[i].copy()
        use[3] = False
        if use.sum() < 2:
            assert res.status[i] == TOO_FEW_RECEIVERS
            continue
        k = int(use.sum())
        cov = np.eye(k) + np.ones((k, k))          # TDOA covariance for equal TOA errors
        w = np.linalg.inv(np.linalg.cholesky(cov))

        def f(p, i=i, use=use, w=w):
            t = toa_s(p[0], p[1], H_TX)
            return w @ ((t[use] - t[3]) - tdoa[i, use]) * 1e9

        ref_sol = least_squares(f, [tx_lat[i], tx_lon[i]], x_scale=[1e-3, 1e-3], xtol=1e-15, ftol=1e-15,
                                gtol=1e-15).x
        if res.status[i] == SOLVED:
            assert horizontal_error_m(res.lat_deg[i], res.lon_deg[i], ref_sol[0], ref_sol[1]) < 1.0


def test_unsolvable_samples_are_counted_not_dropped():
    s = 4
    lat, lon, alt = batch(s)
    tdoa = np.full((s, 7), np.nan)
    present = np.zeros((s, 7), bool)
    present[1, :2] = True                                      # two receivers: one TDOA
    tdoa[1, :2] = [0.0, 1e-5]
    present[2] = True                                          # all present, no reference (no 0)
    tdoa[2] = 1e-6
    present[3, :4] = True                                      # absurd TDOAs: no fix near the network
    tdoa[3, :4] = [0.0, 0.9e-3, -0.9e-3, 0.9e-3]
    res = solve_tdoa(lat, lon, alt, tdoa, present)
    assert list(res.status[:3]) == [TOO_FEW_RECEIVERS] * 3
    assert res.status[3] == DIVERGED and np.isnan(res.lat_deg[3])
    summary = summarize(np.full(s, np.nan), res.status, np.ones(s), res.receivers_used)
    assert summary["status"] == {"solved": 0, "too_few_receivers": 3, "diverged": 1}
    assert summary["fraction_solved"] == 0.0 and summary["overall"]["cep50_m"] is None


def test_summary_figures():
    err = np.array([10.0, 20.0, 30.0, 40.0, 1000.0])
    status = np.array([SOLVED] * 4 + [DIVERGED])
    out = summarize(err, status, np.array([1.2, 1.2, 2.5, 2.5, 2.5]), np.array([4, 4, 5, 5, 3]))
    assert out["fraction_solved"] == 0.8
    assert out["overall"]["cep50_m"] == pytest.approx(25.0)
    assert out["overall"]["rmse_m"] == pytest.approx(math.sqrt((100 + 400 + 900 + 1600) / 4))
    assert [(b["gdop_min"], b["solved"]) for b in out["by_gdop"]] == [(0.0, 2), (2.0, 2)]
    assert [(b["receivers"], b["samples"], b["solved"]) for b in out["by_receivers"]] == [(3, 1, 0), (4, 2, 2), (5, 2, 2)]


def test_an_infinite_gdop_is_counted_in_the_last_bin():
    """A stored gdop can be inf (estimated detections left fewer than three receivers):
    such samples belong to the open last bin, never to no bin."""
    status = np.array([SOLVED, SOLVED, TOO_FEW_RECEIVERS])
    out = summarize(np.array([10.0, 20.0, np.nan]), status, np.array([1.2, 12.0, np.inf]), np.array([4, 4, 2]))
    assert [(b["gdop_min"], b["gdop_max"], b["samples"]) for b in out["by_gdop"]] == [(0.0, 1.5, 1), (10.0, None, 2)]
    assert sum(b["samples"] for b in out["by_gdop"]) == out["samples"] == 3


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="shape"):
        solve_tdoa(RX_LAT, RX_LON, RX_ALT, np.zeros(7), np.ones(7, bool))
