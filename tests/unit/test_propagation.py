"""The generator's propagation path (configs with "propagation", issue 11): ITM area-mode
medians for the drawn geometry, ITM's location variability, LOS from the smooth-earth
horizon, Rician / Rayleigh fading, NLOS excess delay in the TOA, WGS 84 ranges, heights
above ground; the legacy path (configs without "propagation") is left alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import config_with

from worker.config import ConfigError, GenerationConfig, Propagation
from worker.rf import generate as G
from worker.rf import generate_samples, geometry, itm, link, propagation, rng
from worker.rf.generate import GenerationError, check_truth, draw_truth
from worker.rows import FEATURE_COLUMNS, NULL_WHEN_NAN, feature_rows

C = 299_792_458.0
AREA = {"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3}


def _cfg(base: dict, **overrides) -> GenerationConfig:
    return GenerationConfig.from_normalized(config_with(base, **overrides))


def _with_prop(base: dict, **prop) -> dict:
    return config_with(base, propagation={**base["propagation"], **prop})


def _attempts(cfg: GenerationConfig, n: int, seed: int = 5) -> list[G.Truth]:
    """Unfiltered truth draws (no acceptance: the variability is not selected on)."""
    return [draw_truth(cfg, rng.stream(seed, i, 0, rng.STREAM_TRUTH)) for i in range(n)]


def _itm_area(t: G.Truth, j: int, **kw) -> itm.ItmResult:
    ground = float(geometry.haversine_m(t.tx_lat, t.tx_lon, t.rx_lat[j], t.rx_lon[j]))
    return itm.itm_area(145.0, ground, t.tx_height_agl_m, float(t.rx_height_agl_m[j]), **kw)


def test_default_config_takes_the_itm_path(default_config_dict, legacy_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    assert cfg.propagation is not None and cfg.propagation.model == "itm" and cfg.propagation.terrain is None
    assert (cfg.tx_height_agl_min_m, cfg.tx_height_agl_max_m) == (1.5, 10.0)
    assert all(s.height_agl_m == 10.0 for s in cfg.receivers.stations)
    old = GenerationConfig.from_normalized(legacy_config_dict)
    assert old.propagation is None and old.tx_height_agl_min_m is None
    assert all(s.height_agl_m is None for s in old.receivers.stations)


def test_path_loss_median_is_itm_area_mode_for_the_drawn_geometry(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    b = generate_samples(cfg, 21, 0, 12, want_iq=False)
    assert np.all((b.tx_height_agl_m >= 1.5) & (b.tx_height_agl_m <= 10.0))
    assert np.all(b.rx_height_agl_m == 10.0)
    for k in range(len(b)):
        ground = geometry.haversine_m(b.tx_lat[k], b.tx_lon[k], b.rx_lat[k], b.rx_lon[k])
        expect = itm.itm_area_loss_db(145.0, ground, b.tx_height_agl_m[k], b.rx_height_agl_m[k],
                                      terrain_irregularity_m=90.0, surface_refractivity_n=301.0,
                                      climate="continental_temperate", ground_permittivity=15.0,
                                      ground_conductivity_s_m=0.005, polarization="vertical",
                                      tx_siting="random", rx_siting="random")
        np.testing.assert_allclose(b.path_loss_median_db[k], expect, rtol=0, atol=1e-9)
    # far links lose far more than free space (the point of the change)
    far = b.distance_m > 60e3
    assert far.any()
    assert np.all(b.path_loss_median_db[far] - link.fspl_db(b.distance_m[far], 145.0) > 30.0)


def test_itm_inputs_of_the_config_reach_the_model(default_config_dict):
    d = _with_prop(default_config_dict, terrain_irregularity_m=300, climate="maritime_temperate_sea",
                   polarization="horizontal", tx_siting="careful", rx_siting="very_careful",
                   surface_refractivity_n=350, ground_permittivity=80, ground_conductivity_s_m=5)
    d["receivers"] = {"mode": "fixed", "stations": [
        dict(s, height_agl_m=h) for s, h in zip(d["receivers"]["stations"], [3, 5, 10, 20, 30, 60, 120], strict=True)]}
    cfg = GenerationConfig.from_normalized(d)
    for t in _attempts(cfg, 15):
        assert t.rx_height_agl_m.tolist() == [3, 5, 10, 20, 30, 60, 120]
        for j in range(7):
            r = _itm_area(t, j, terrain_irregularity_m=300.0, climate="maritime_temperate_sea",
                          polarization="horizontal", tx_siting="careful", rx_siting="very_careful",
                          surface_refractivity_n=350.0, ground_permittivity=80.0, ground_conductivity_s_m=5.0)
            assert t.path_loss_median_db[j] == pytest.approx(r.median_basic_loss_db, abs=1e-9)
            assert bool(t.los[j]) == (r.mode == "line_of_sight")


def test_location_variability_is_itms_sigma_l_per_link(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    z = []
    for t in _attempts(cfg, 300):
        ground = geometry.haversine_m(t.tx_lat, t.tx_lon, t.rx_lat, t.rx_lon)
        sigma = itm.itm_location_sigma_db(145.0, ground, 90.0)
        assert np.all(sigma > 7.0)   # ~8-9.5 dB at 145 MHz, delta h 90 m (not the 6 dB shadowing key)
        z.extend(((t.path_loss_db - t.path_loss_median_db) / sigma).tolist())
    z = np.asarray(z)
    assert z.size == 2100
    assert abs(z.mean()) < 0.08 and abs(z.std() - 1.0) < 0.06
    assert abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.015


def test_los_is_the_smooth_earth_horizon_rule(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    n_los = n_nlos = 0
    for t in _attempts(cfg, 250):
        for j in range(7):
            r = _itm_area(t, j)
            ground = float(geometry.haversine_m(t.tx_lat, t.tx_lon, t.rx_lat[j], t.rx_lon[j]))
            assert bool(t.los[j]) == (ground < r.smooth_earth_horizon_m) == (r.mode == "line_of_sight")
            n_los += bool(t.los[j])
            n_nlos += not t.los[j]
    assert n_los >= 20 and n_nlos >= 1000


def test_excess_delay_only_on_nlos_links_and_in_the_toa(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    nlos_excess = []
    for t in _attempts(cfg, 250):
        rng_m = geometry.ecef_range_m(t.tx_lat, t.tx_lon, t.tx_alt_m, t.rx_lat, t.rx_lon, t.rx_alt_m)
        np.testing.assert_allclose(t.distance_m, rng_m, rtol=1e-12)
        assert np.all(t.excess_delay_s[t.los] == 0.0) and np.all(t.excess_delay_s[~t.los] > 0.0)
        np.testing.assert_allclose(t.toa_s, rng_m / C + t.excess_delay_s, rtol=0, atol=1e-15)
        nlos_excess.extend(t.excess_delay_s[~t.los].tolist())
    e = np.asarray(nlos_excess)
    # exponential with the configured mean (1 us): mean and median (mean * ln 2)
    assert e.mean() == pytest.approx(1e-6, rel=0.08)
    assert np.median(e) == pytest.approx(1e-6 * math.log(2), rel=0.1)
    # the configured mean is used; 0 turns the bias off
    cfg0 = GenerationConfig.from_normalized(_with_prop(default_config_dict, nlos_excess_delay_mean_s=0))
    t0 = _attempts(cfg0, 3)[2]
    assert np.all(t0.excess_delay_s == 0.0)


def test_fading_rician_on_los_rayleigh_on_nlos(default_config_dict):
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, rician_k_db=10.0))
    los_g, nlos_g = [], []
    for t in _attempts(cfg, 600):
        budget = 37.0 + t.tx_antenna_gain_db + t.rx_antenna_gain_db - t.polarization_loss_db - t.path_loss_db
        g = 10 ** ((t.rx_power_dbm - budget) / 10)   # fading power gain
        los_g.extend(g[t.los].tolist())
        nlos_g.extend(g[~t.los].tolist())
    los_g, nlos_g = np.asarray(los_g), np.asarray(nlos_g)
    assert los_g.size > 50
    # Rayleigh: exponential power, mean 1, P(g < 0.1) = 1 - exp(-0.1)
    assert nlos_g.mean() == pytest.approx(1.0, abs=0.05)
    assert np.mean(nlos_g < 0.1) == pytest.approx(1 - math.exp(-0.1), abs=0.015)
    # Rician K = 10: mean 1, variance (2K + 1) / (K + 1)^2 = 0.174, deep fades rare
    assert los_g.mean() == pytest.approx(1.0, abs=0.1)
    assert los_g.var() < 0.35 and np.mean(los_g < 0.1) < 0.01


def ref_antennas(az_out, az_back, los, tx_gain_dbi, body_loss_db, facing, tilt, tilt_az, xpd_los_db, xpd_nlos_db,
                 vertical, rx_gain_dbi, directional, rx_az_deg, bw_deg, fb_db):
    """Independent reference of the antenna model with explicit east-north-up vectors: the
    dipole axis a, the horizontal link direction u, the radiated field p = a - (a.u) u
    (power pattern |p|^2), its projection on the receiver's polarization."""
    a = np.array([math.sin(tilt) * math.sin(tilt_az), math.sin(tilt) * math.cos(tilt_az), math.cos(tilt)])
    u = np.array([math.sin(az_out), math.cos(az_out), 0.0])
    p = a - (a @ u) * u
    power = float(p @ p)
    pattern = max(10 * math.log10(max(power, 1e-30)), propagation.TX_PATTERN_FLOOR_DB)
    body = body_loss_db * (1 - math.cos(az_out - facing)) / 2
    e_rx = np.array([0.0, 0.0, 1.0]) if vertical else np.array([math.cos(az_out), -math.sin(az_out), 0.0])
    co = float(p @ e_rx) ** 2 / power if power > 0 else (1.0 if vertical else 0.0)
    xpd = 10 ** ((xpd_los_db if los else xpd_nlos_db) / 10)
    pol = -10 * math.log10(co + (1 - co) / xpd)
    rx = rx_gain_dbi
    if directional:
        phi = (math.degrees(az_back) - rx_az_deg + 180) % 360 - 180
        rx -= min(12 * (phi / bw_deg) ** 2, fb_db)
    return tx_gain_dbi + pattern - body, rx, pol


def test_attempt_kernel_equals_the_numpy_pieces(default_config_dict):
    """The fused per-attempt kernel against geometry.haversine_m / ecef_range_m /
    bearing_unit_vectors, propagation.link_losses, link.fading_power, link.toa_s and the
    vector reference of the antennas above."""
    g = np.random.default_rng(3)
    for model in ("itm", "free_space"):
        for pol_name in ("vertical", "horizontal"):
            p = propagation.PropagationParams.from_config(Propagation.from_normalized(
                {**default_config_dict["propagation"], "model": model, "polarization": pol_name}))
            for _ in range(25):
                n = int(g.integers(3, 9))
                lat, lon, alt = g.uniform(44, 46, n), g.uniform(7, 9.5, n), g.uniform(0, 900, n)
                rx_h = g.uniform(1, 50, n)
                tx = (float(g.uniform(44, 46)), float(g.uniform(7, 9.5)), float(g.uniform(0, 900)),
                      float(g.uniform(1.5, 10)))
                z, u, nr, ni, ex = (g.standard_normal(n), g.random(n), g.standard_normal(n), g.standard_normal(n),
                                    g.standard_exponential(n))
                tx_ant = (float(g.uniform(-5, 3)), float(g.uniform(0, 15)), float(g.uniform(0, 2 * math.pi)),
                          float(g.uniform(0, math.pi / 2)), float(g.uniform(0, 2 * math.pi)), 12.0, 7.0)
                rx_ant = (g.uniform(-3, 10, n), g.random(n) < 0.5, g.uniform(0, 360, n), g.uniform(20, 120, n),
                          g.uniform(5, 30, n))
                out = [np.empty(n) for _ in range(4)]
                los = np.empty(n, dtype=bool)
                rest = [np.empty(n) for _ in range(7)]
                propagation._attempt_links(p.model, 145.0, *tx, lat, lon, alt, rx_h, p.terrain_irregularity_m,
                                           p.surface_refractivity_n, p.climate, p.ground_permittivity,
                                           p.ground_conductivity_s_m, p.polarization, p.tx_siting, p.rx_siting,
                                           1e-6, 6.0, 6.0, 37.0, *tx_ant, *rx_ant, z, u, nr, ni, ex,
                                           out[0], out[1], out[2], out[3], los, *rest)
                ground, slant, median, loss = out
                horizon, excess, p_rx, toa, tx_gain, rx_gain, pol_loss = rest
                np.testing.assert_allclose(ground, geometry.haversine_m(tx[0], tx[1], lat, lon), rtol=1e-12)
                np.testing.assert_allclose(slant, geometry.ecef_range_m(tx[0], tx[1], tx[2], lat, lon, alt),
                                           rtol=1e-12)
                ref = propagation.link_losses(p, 145.0, ground, slant, tx[3], rx_h, z, 6.0)
                np.testing.assert_array_equal(median, ref.median_db)
                np.testing.assert_array_equal(loss, ref.loss_db)
                np.testing.assert_array_equal(los, ref.los)
                np.testing.assert_array_equal(horizon, ref.horizon_m)
                np.testing.assert_array_equal(los, ground < horizon)
                np.testing.assert_array_equal(excess, np.where(los, 0.0, ex * 1e-6))
                ue, un = geometry.bearing_unit_vectors(tx[0], tx[1], lat, lon)
                for j in range(n):
                    ub = geometry.bearing_unit_vectors(lat[j], lon[j], tx[0], [tx[1]])
                    want = ref_antennas(math.atan2(ue[j], un[j]), math.atan2(ub[0][0], ub[1][0]), los[j], *tx_ant,
                                        pol_name == "vertical", *(a[j] for a in rx_ant))
                    assert (tx_gain[j], rx_gain[j], pol_loss[j]) == pytest.approx(want, abs=1e-9)
                assert np.all(pol_loss >= 0) and np.all(pol_loss <= 12.0 + 1e-9)
                fade = 10 * np.log10(link.fading_power(los, 6.0, u, nr, ni))
                np.testing.assert_allclose(p_rx, 37.0 + tx_gain + rx_gain - pol_loss - loss + fade, rtol=0, atol=1e-9)
                np.testing.assert_allclose(toa, link.toa_s(slant) + excess, rtol=0, atol=1e-18)
                if model == "free_space":
                    np.testing.assert_allclose(median, link.fspl_db(slant, 145.0), rtol=0, atol=1e-9)
                    np.testing.assert_allclose(loss, median + 6.0 * z, rtol=0, atol=1e-9)


def test_free_space_model_uses_the_new_geometry(default_config_dict):
    cfg = GenerationConfig.from_normalized(_with_prop(default_config_dict, model="free_space"))
    z = []
    for t in _attempts(cfg, 200):
        slant = geometry.ecef_range_m(t.tx_lat, t.tx_lon, t.tx_alt_m, t.rx_lat, t.rx_lon, t.rx_alt_m)
        np.testing.assert_allclose(t.path_loss_median_db, link.fspl_db(slant, 145.0), rtol=0, atol=1e-9)
        z.extend(((t.path_loss_db - t.path_loss_median_db) / 6.0).tolist())   # shadowing_sigma_db
        for j in range(7):
            ground = float(geometry.haversine_m(t.tx_lat, t.tx_lon, t.rx_lat[j], t.rx_lon[j]))
            assert bool(t.los[j]) == (ground < _itm_area(t, j).smooth_earth_horizon_m)
        assert np.all(t.excess_delay_s[t.los] == 0) and np.all(t.excess_delay_s[~t.los] > 0)
    z = np.asarray(z)
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.07


def test_random_layout_uses_its_antenna_height(default_config_dict):
    rx = {"mode": "hexagonal", "count_min": 6, "count_max": 8, "area": AREA, "alt_m": 200, "height_agl_m": 25,
          "antenna": {"pattern": "omni", "gain_dbi": 2.5}}
    cfg = _cfg(default_config_dict, receivers=rx)
    b = generate_samples(cfg, 3, 0, 6, want_iq=False)
    for k in range(len(b)):
        n = b.num_receivers[k]
        assert np.all(b.rx_height_agl_m[k, :n] == 25.0) and np.all(np.isnan(b.rx_height_agl_m[k, n:]))
        assert np.all(b.rx_antenna_gain_db[k, :n] == 2.5) and np.all(np.isnan(b.rx_antenna_gain_db[k, n:]))
        assert np.all(np.isnan(b.path_loss_median_db[k, n:])) and np.all(np.isnan(b.excess_delay_s[k, n:]))


def test_acceptance_keeps_the_filter_and_fewer_receivers_hear(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    b = generate_samples(cfg, 7, 0, 60, want_iq=False)
    # the filter on truth holds for every accepted sample, and rejections are recorded
    assert np.all((b.true_snr_db >= 3.0).sum(axis=1) >= 3)
    assert b.attempts.sum() > 1.5 * len(b) and sum(r.get("snr", 0) for r in b.rejections) > 0
    # the "before": all 7 receivers detected in 499 of 500 samples
    assert np.mean(b.num_receivers_detected == 7) < 0.2


def test_a_config_that_can_almost_never_be_accepted_fails_clearly(default_config_dict):
    cfg = _cfg(default_config_dict, tx_power_dbm=-30.0, max_attempts=40)
    with pytest.raises(GenerationError, match="sample_idx 3: all 40 attempts rejected") as ei:
        generate_samples(cfg, 1, 3, 1, want_iq=False)
    assert ei.value.rejections == {"snr": 40}


def test_tdoa_features_follow_the_biased_toa(default_config_dict):
    """The IQ is delayed by the TOA including the excess delay: estimated TDOA matches
    true_tdoa_s (which carries the bias) within half a sample on strong links."""
    cfg = _cfg(_with_prop(default_config_dict, nlos_excess_delay_mean_s=2e-5), tx_power_dbm=60.0)
    b = generate_samples(cfg, 12, 0, 25, want_iq=False)
    strong = b.true_snr_db >= 20
    assert strong.sum() > 60
    err = np.abs(b.tdoa_s - b.true_tdoa_s)[strong]
    assert np.nanmax(err) <= 0.5 / 50_000
    # with a 20 us mean the bias is visible against the geometric TDOA (0.05 .. 1 sample)
    geo = b.distance_m / C
    ref = np.nanargmax(np.where(b.signal_present, b.snr_db, -np.inf), axis=1)
    geo_tdoa = geo - geo[np.arange(len(b)), ref][:, None]
    assert np.nanmax(np.abs(b.true_tdoa_s - geo_tdoa)) > 2e-5


def test_legacy_path_leaves_the_new_truth_empty(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(legacy_config_dict)
    b = generate_samples(cfg, 42, 0, 2, want_iq=False)
    new = ["tx_height_agl_m", "rx_height_agl_m", "path_loss_median_db", "excess_delay_s", "tx_antenna_gain_db",
           "rx_antenna_gain_db", "polarization_loss_db"]
    for name in new:
        assert np.all(np.isnan(getattr(b, name))), name
    rows = list(feature_rows("ds", b))
    cols = [c for c, _ in FEATURE_COLUMNS]
    first = cols.index(new[0])
    assert cols[first:first + 7] == new and set(new) <= NULL_WHEN_NAN
    for row in rows:
        assert all(row[cols.index(c)] is None for c in NULL_WHEN_NAN)


def test_new_path_rows_carry_the_truth(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    b = generate_samples(cfg, 42, 0, 2, want_iq=False)
    cols = [c for c, _ in FEATURE_COLUMNS]
    for k, row in enumerate(feature_rows("ds", b)):
        assert row[cols.index("tx_height_agl_m")] == b.tx_height_agl_m[k]
        assert row[cols.index("rx_height_agl_m")] == [10.0] * 7
        assert row[cols.index("path_loss_median_db")] == b.path_loss_median_db[k].tolist()
        assert row[cols.index("excess_delay_s")] == b.excess_delay_s[k].tolist()
        for c in ("tx_antenna_gain_db", "rx_antenna_gain_db", "polarization_loss_db"):
            assert row[cols.index(c)] == getattr(b, c)[k].tolist()


def test_chunking_does_not_change_the_free_space_model(default_config_dict):
    rx = {"mode": "random", "count_min": 5, "count_max": 7, "area": AREA, "alt_m": 150, "height_agl_m": 15,
          "antenna": {"pattern": "omni", "gain_dbi": 0}}
    cfg = _cfg(_with_prop(default_config_dict, model="free_space"), receivers=rx, duration_ms=20)
    whole = generate_samples(cfg, -9, 0, 9)
    parts = [generate_samples(cfg, -9, i, min(4, 9 - i)) for i in range(0, 9, 4)]
    for name in ("tx_height_agl_m", "rx_height_agl_m", "path_loss_median_db", "excess_delay_s", "toa_s",
                 "path_loss_db", "los", "tx_antenna_gain_db", "rx_antenna_gain_db", "polarization_loss_db", "iq"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        assert joined.tobytes() == getattr(whole, name).tobytes(), name


def test_config_reading(default_config_dict, legacy_config_dict):
    # without "propagation" the new keys are ignored (a stored 0001 config never has them)
    extra = config_with(legacy_config_dict, tx_height_agl_min_m=3, tx_height_agl_max_m=4)
    assert GenerationConfig.from_normalized(extra).tx_height_agl_min_m is None
    # with it, they are required
    broken = {k: v for k, v in default_config_dict.items() if k != "tx_height_agl_max_m"}
    with pytest.raises(ConfigError, match="tx_height_agl_max_m"):
        GenerationConfig.from_normalized(broken)
    with pytest.raises(ConfigError, match="'propagation' lacks 'terrain'"):
        GenerationConfig.from_normalized(config_with(default_config_dict, propagation={"model": "itm"}))


@pytest.mark.parametrize("sub, value, match", [
    ("terrain", "alps", "'propagation' lacks 'terrain_sha256'"),   # normalize_config adds it; the set: test_terrain.py
    ("climate", "tropical", "propagation.climate"),
    ("model", "hata", "propagation.model"),
    ("surface_refractivity_n", 200, "propagation.surface_refractivity_n"),
    ("tx_siting", "sloppy", "propagation.tx_siting"),
])
def test_generator_refuses_a_bad_propagation_object(default_config_dict, sub, value, match):
    with pytest.raises(ValueError, match=match):
        cfg = GenerationConfig.from_normalized(_with_prop(default_config_dict, **{sub: value}))
        generate_samples(cfg, 1, 0, 1, want_iq=False)


def test_link_losses_validates(default_config_dict):
    p = propagation.PropagationParams.from_config(Propagation.from_normalized(default_config_dict["propagation"]))
    ok = dict(freq_mhz=145.0, ground_m=[1e4], slant_m=[1e4], tx_height_agl_m=2.0, rx_height_agl_m=[10.0], z=[0.0])
    assert propagation.link_losses(p, **ok).median_db[0] == pytest.approx(itm.itm_area_loss_db(145.0, 1e4, 2.0, 10.0))
    for key, bad in (("freq_mhz", 10.0), ("tx_height_agl_m", 0.1), ("rx_height_agl_m", [0.2]), ("ground_m", [-1.0]),
                     ("slant_m", [1.0, 2.0]), ("z", [math.nan])):
        with pytest.raises(ValueError, match=key):
            propagation.link_losses(p, **{**ok, key: bad})


def test_check_truth_is_shared(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    t = draw_truth(cfg, rng.stream(1, 0, 0, rng.STREAM_TRUTH))
    ok = t.snr_db >= cfg.min_snr_db
    assert check_truth(cfg, t) == ("snr" if ok.sum() < 3 else (None if geometry.gdop(
        t.tx_lat, t.tx_lon, t.rx_lat[ok], t.rx_lon[ok]) <= 10 else "gdop"))


def test_gdop_kernel_of_the_propagation_filter_equals_gdop():
    g = np.random.default_rng(8)
    finite = 0
    for k in range(4000):
        n = int(g.integers(3, 9))
        lat, lon = g.uniform(44, 46, n), g.uniform(7, 9.5, n)
        use = g.random(n) < 0.8
        if k % 9 == 0:
            lat[:] = 45.0                   # receivers on one parallel: near-degenerate
        if k % 13 == 0:
            lat[:], lon[:] = 45.0, 8.0     # all at one point: singular
        tx = float(g.uniform(43.8, 46.2)), float(g.uniform(6.8, 9.7))
        ref = geometry.gdop(*tx, lat[use], lon[use])
        got = geometry._gdop_kernel(*tx, lat, lon, use)
        assert math.isinf(ref) == math.isinf(got), (ref, got)
        if math.isfinite(ref) and ref < 1000:
            assert got == pytest.approx(ref, rel=1e-7)
            finite += 1
    assert finite > 2500
    assert geometry._gdop_kernel(45.0, 8.0, np.array([45.1, 45.2]), np.array([8.0, 8.1]), np.ones(2, bool)) == math.inf


def test_antennas_of_the_default_config(default_config_dict):
    """Omni receivers of gain rx_antenna_gain_dbi; a handheld that loses up to 8 dB through
    the body (4 dB on average over random facing), tilts up to 45 degrees (pattern at most
    -3 dB) and so loses at most 3 dB of polarization against the vertical receivers."""
    cfg = GenerationConfig.from_normalized(default_config_dict)
    tx, rx, pol = [], [], []
    for t in _attempts(cfg, 400):
        assert np.all(t.rx_antenna_gain_db == 0.0)
        tx.extend(t.tx_antenna_gain_db.tolist())
        rx.extend(t.rx_antenna_gain_db.tolist())
        pol.extend(t.polarization_loss_db[t.los].tolist() + t.polarization_loss_db[~t.los].tolist())
    tx, pol = np.asarray(tx), np.asarray(pol)
    assert tx.max() <= 0.0 and tx.min() >= -8.0 - 3.0 - 1e-9
    assert -tx.mean() == pytest.approx(4.0 + 0.5, abs=0.5)     # body 4 dB + tilted-pattern ~0.5 dB on average
    # tilt <= 45 deg: mismatch angle <= 45 deg, loss <= 3 dB, and 0 for an upright handheld
    assert pol.min() >= 0.0 and pol.max() <= 3.0103 + 1e-9 and np.median(pol) < 1.0


def test_antenna_config_reaches_the_link_budget(default_config_dict):
    stations = [dict(s) for s in default_config_dict["receivers"]["stations"]]
    stations[2]["antenna"] = {"pattern": "directional", "gain_dbi": 9.0, "azimuth_deg": 90.0,
                              "beamwidth_deg": 60.0, "front_to_back_db": 20.0}   # torino, looking east
    d = config_with(default_config_dict, receivers={"mode": "fixed", "stations": stations},
                    tx_antenna={"body_loss_db": 0, "tilt_max_deg": 0, "xpd_los_db": 12, "xpd_nlos_db": 7})
    cfg = GenerationConfig.from_normalized(d)
    seen_front = seen_back = False
    for t in _attempts(cfg, 200):
        # an upright handheld without body loss: 0 dB transmit gain, no polarization loss
        assert np.all(t.tx_antenna_gain_db == 0.0) and np.all(t.polarization_loss_db == 0.0)
        ue, un = geometry.bearing_unit_vectors(t.rx_lat[2], t.rx_lon[2], t.tx_lat, [t.tx_lon])
        phi = (math.degrees(math.atan2(ue[0], un[0])) - 90.0 + 180.0) % 360.0 - 180.0
        assert t.rx_antenna_gain_db[2] == pytest.approx(9.0 - min(12 * (phi / 60.0) ** 2, 20.0), abs=1e-9)
        seen_front |= abs(phi) < 20
        seen_back |= abs(phi) > 150
        others = np.delete(t.rx_antenna_gain_db, 2)
        assert np.all(others == 0.0)
    assert seen_front and seen_back
    # horizontal receivers see a vertical handheld cross-polarized: the channel's XPD is the loss
    cfg_h = GenerationConfig.from_normalized(_with_prop(d, polarization="horizontal"))
    for t in _attempts(cfg_h, 20):
        np.testing.assert_allclose(t.polarization_loss_db, np.where(t.los, 12.0, 7.0), atol=1e-9)


def test_place_transmitter_with_a_given_box_draws_the_same():
    lat = np.array([45.03, 45.234, 45.044, 44.395])
    lon = np.array([7.27, 7.857, 7.672, 8.956])
    box = (float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max()))
    for i in range(200):
        a = geometry.place_transmitter(rng.stream(1, i, 0, 0), lat, lon, 0.5, 20.0)
        b = geometry.place_transmitter(rng.stream(1, i, 0, 0), lat, lon, 0.5, 20.0, box=box)
        assert a == b
