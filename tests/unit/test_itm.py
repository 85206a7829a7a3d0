"""The ITM kernel (worker/rf/itm.py) against independent references.

* ``itmlogic`` (PyPI, a pure-Python port of ITM 1.2.2; a test dependency): 600 random
  cases per mode (20 MHz-3 GHz, 1-500 km, antennas 1-1000 m, delta h 0-500 m, every
  climate, both polarizations, every siting / variability mode) and the region boundaries
  must agree within 0.1 dB, at the median and at random time/location/situation deviates.
* NTIA's published area-mode examples (github.com/NTIA/itm ``area.csv``) and, for the
  deliberate deviations from itmlogic, values computed with NTIA's C++ ITM (v1.3,
  "functionally identical to version 1.2.2 of the FORTRAN", commit 183ad95).

The deviations (where this kernel follows ITM 1.2.2 and itmlogic does not) each have a
test named ``test_deviation_*``; the random cases leave those situations out by
construction (p2p profiles end on a flat pad) or skip and count them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from itmlogic.lrprop import lrprop
from itmlogic.misc.qerfi import qerfi
from itmlogic.preparatory_subroutines.qlra import qlra
from itmlogic.preparatory_subroutines.qlrpfl import qlrpfl
from itmlogic.preparatory_subroutines.qlrps import qlrps
from itmlogic.statistics.avar import avar
from numba import njit

from worker.rf import itm

KM = 1000.0
TOL_DB = 0.1
N_RANDOM = 600
MDVARS = (0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 33)


# --------------------------------------------------------------------------- references


def _free_space_db(distance_m, freq_mhz):
    return 32.45 + 20.0 * math.log10(freq_mhz) + 20.0 * math.log10(distance_m / KM)


def _itmlogic_area(f_mhz, d_m, h_tx, h_rx, dh_m, ns, climate, eps, sigma, pol, siting, mdvar, z):
    """Basic transmission loss from itmlogic (qlrps, qlra, lrprop, avar) and its prop dict."""
    prop = {"hg": [h_tx, h_rx], "dh": dh_m, "klimx": climate, "mdvarx": mdvar, "lvar": 0, "kwx": 0, "mdp": 0}
    wn, gme, ens, zgnd = qlrps(f_mhz, 0, ns, pol, eps, sigma)
    prop.update(wn=wn, gme=gme, ens=ens, zgnd=zgnd)
    prop = qlra(list(siting), prop)
    prop = lrprop(d_m, prop)
    attenuation_db, prop = avar(z[0], z[1], z[2], prop)
    return _free_space_db(d_m, f_mhz) + attenuation_db, prop


def _system_elevation_m(z):
    n = len(z) - 1
    p10 = int(0.1 * n)
    return float(np.mean(z[p10:n - p10 + 1]))


def _itmlogic_p2p(z, spacing_m, f_mhz, h_tx, h_rx, ns, climate, eps, sigma, pol, mdvar, zs):
    n = len(z) - 1
    prop = {"hg": [h_tx, h_rx], "klimx": climate, "mdvarx": mdvar, "lvar": 0, "kwx": 0, "mdp": 0,
            "pfl": [n, spacing_m] + [float(v) for v in z]}
    wn, gme, ens, zgnd = qlrps(f_mhz, _system_elevation_m(z), ns, pol, eps, sigma)
    prop.update(wn=wn, gme=gme, ens=ens, zgnd=zgnd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # itmlogic's log of a negative number
        prop = qlrpfl(prop)
        attenuation_db, prop = avar(zs[0], zs[1], zs[2], prop)
    return _free_space_db(n * spacing_m, f_mhz) + attenuation_db, prop


def _log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _common_case(rng, i):
    return {
        "f_mhz": _log_uniform(rng, 20.0, 3000.0),
        "d_m": _log_uniform(rng, 1 * KM, 500 * KM),
        "h_tx": _log_uniform(rng, 1.0, 1000.0),
        "h_rx": _log_uniform(rng, 1.0, 1000.0),
        "ns": rng.uniform(250.0, 400.0),
        "climate": i % 7 + 1,
        "eps": rng.uniform(4.0, 81.0),
        "sigma": _log_uniform(rng, 1e-4, 5.0),
        "pol": (i // 7) % 2,
        "mdvar": MDVARS[i % len(MDVARS)],
        # half of the cases at the median, half at random deviates
        "z": (0.0, 0.0, 0.0) if i % 2 == 0 else tuple(float(v) for v in rng.normal(0.0, 1.2, 3)),
    }


def _profile(rng, n_intervals, dh_m):
    """A synthetic profile: rolling hills of roughly dh_m, sometimes a ridge, a valley or a
    flat plain. The last two points are equal (the receiver stands on a flat pad), which
    keeps itmlogic's index slip (deviation 2) out of the random comparison."""
    x = np.linspace(0.0, 1.0, n_intervals + 1)
    z = np.full(n_intervals + 1, rng.uniform(0.0, 1500.0))
    kind = rng.integers(0, 4)
    if kind != 3:  # 3: flat
        for _ in range(int(rng.integers(1, 5))):
            z += rng.uniform(0.2, 1.0) * dh_m * np.sin(2 * np.pi * x / rng.uniform(0.03, 1.0) + rng.uniform(0, 6.3))
        z += rng.normal(0.0, 0.05 * dh_m + 1e-6, n_intervals + 1)
    if kind == 1:  # ridge
        z += rng.uniform(0.5, 3.0) * dh_m * np.exp(-(((x - rng.uniform(0.2, 0.8)) / rng.uniform(0.01, 0.1)) ** 2))
    elif kind == 2:  # valley
        z -= rng.uniform(0.5, 2.0) * dh_m * np.exp(-(((x - 0.5) / rng.uniform(0.1, 0.4)) ** 2))
    z[-1] = z[-2]
    return z


def _area_kernel(c, dh_m, siting):
    return itm._itm_area_loss_db(c["f_mhz"], c["d_m"], c["h_tx"], c["h_rx"], dh_m, c["ns"], c["climate"], c["eps"],
                                 c["sigma"], c["pol"], siting[0], siting[1], c["mdvar"], *c["z"])


# --------------------------------------------------------------------------- references


def test_reference_values_145_mhz_handheld_to_mast():
    # environment-notes.md: 145 MHz, 1.5 m / 10 m, delta h 90 m, continental temperate, median
    expected = {10: (129.0, "line_of_sight"), 40: (153.1, "diffraction"),
                80: (169.6, "diffraction"), 150: (190.9, "troposcatter")}
    for d_km, (loss_db, mode) in expected.items():
        r = itm.itm_area(145.0, d_km * KM, 1.5, 10.0, terrain_irregularity_m=90.0)
        assert r.basic_loss_db == pytest.approx(loss_db, abs=0.05), d_km
        assert r.median_basic_loss_db == r.basic_loss_db
        assert r.mode == mode
        assert r.free_space_loss_db == pytest.approx(_free_space_db(d_km * KM, 145.0))
        assert r.warning_code == 0


# NTIA/itm area.csv: h_tx, h_rx, delta h, mdvar, d_km, tx/rx siting, eps, sigma, N_0, f, pol,
# climate, time %, location %, situation %, published A (dB, 0.1 dB resolution).
NTIA_AREA_EXAMPLES = [
    (10, 1, 0, 0, 16, 0, 0, 15, 0.008, 301, 230, 0, 5, 87, 50, 50, 152.5),
    (3, 1.5, 10, 1, 10, 1, 0, 15, 0.008, 301, 450, 0, 5, 40, 28, 25, 133.0),
    (15, 3, 5, 2, 100, 2, 1, 15, 0.008, 301, 980, 1, 4, 92, 53, 97, 224.1),
    (3, 5, 20, 3, 75, 0, 1, 15, 0.008, 301, 3100, 1, 2, 50, 80, 43, 205.1),
    (1.5, 10, 45, 0, 25, 1, 2, 15, 0.008, 301, 8900, 1, 1, 70, 99, 26, 156.0),
]


@pytest.mark.parametrize("row", NTIA_AREA_EXAMPLES)
def test_ntia_published_area_examples(row):
    (h_tx, h_rx, dh, mdvar, d_km, s_tx, s_rx, eps, sigma, n0, f, pol, climate, t, loc, sit, published) = row
    names = {v: k for k, v in itm.CLIMATES.items()}
    sitings = {v: k for k, v in itm.SITING_CRITERIA.items()}
    modes = {v: k for k, v in itm.VARIABILITY_MODES.items()}
    loss = itm.itm_area_loss_db(
        f, d_km * KM, h_tx, h_rx, terrain_irregularity_m=dh, surface_refractivity_n=n0, climate=names[climate],
        ground_permittivity=eps, ground_conductivity_s_m=sigma, polarization=("horizontal", "vertical")[pol],
        tx_siting=sitings[s_tx], rx_siting=sitings[s_rx], variability_mode=modes[mdvar],
        time_fraction=t / 100, location_fraction=loc / 100, situation_fraction=sit / 100)
    assert loss == pytest.approx(published, abs=TOL_DB)


# --------------------------------------------------------------------------- random cases vs itmlogic


def _scatter_undefined_deviation(ours_detail, itmlogic_prop, d_m):
    """Deviation 1 applies: ITM 1.2.2 found troposcatter undefined (d_x = 10,000 km) and
    itmlogic put its own troposcatter line before this distance."""
    return ours_detail[13] == 10e6 and "dx" in itmlogic_prop and d_m > itmlogic_prop["dx"]


def test_area_mode_matches_itmlogic_on_random_cases():
    rng = np.random.default_rng(20240611)
    diffs, modes, deviations = [], [], 0
    for i in range(N_RANDOM):
        c = _common_case(rng, i)
        dh_m = 0.0 if i % 10 == 0 else rng.uniform(0.0, 500.0)
        siting = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        ours = _area_kernel(c, dh_m, siting)
        ref, prop = _itmlogic_area(c["f_mhz"], c["d_m"], c["h_tx"], c["h_rx"], dh_m, c["ns"], c["climate"],
                                   c["eps"], c["sigma"], c["pol"], siting, c["mdvar"], c["z"])
        detail = itm._itm_area_detail(c["f_mhz"], c["d_m"], c["h_tx"], c["h_rx"], dh_m, c["ns"], c["eps"],
                                      c["sigma"], c["pol"], siting[0], siting[1])
        assert math.isfinite(ours) and isinstance(ours, float)
        if _scatter_undefined_deviation(detail, prop, c["d_m"]):
            deviations += 1
            continue
        diffs.append(abs(ours - ref))
        modes.append(detail[2])
    assert len(diffs) >= 500
    assert max(diffs) < TOL_DB, f"max |ours - itmlogic| = {max(diffs):.4f} dB"
    assert deviations <= N_RANDOM // 20
    counts = np.bincount(modes, minlength=4)
    assert min(counts[1:]) >= 50, counts  # line of sight, diffraction and troposcatter all covered


def test_p2p_mode_matches_itmlogic_on_random_cases():
    rng = np.random.default_rng(20240612)
    diffs, modes, skipped = [], [], 0
    for i in range(N_RANDOM):
        c = _common_case(rng, i)
        n_intervals = int(rng.integers(20, 400))
        z = _profile(rng, n_intervals, rng.uniform(0.0, 500.0) if i % 10 else 0.0)
        spacing = c["d_m"] / n_intervals
        ours = itm._itm_p2p_loss_db(z, spacing, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["climate"], c["eps"],
                                    c["sigma"], c["pol"], c["mdvar"], *c["z"])
        ref, prop = _itmlogic_p2p(z, spacing, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["climate"], c["eps"],
                                  c["sigma"], c["pol"], c["mdvar"], c["z"])
        detail = itm._itm_p2p_detail(z, spacing, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["eps"], c["sigma"],
                                     c["pol"])
        assert math.isfinite(ours)
        if not math.isfinite(ref):  # deviation 3: itmlogic NaN, ITM 1.2.2 A_ref = max(NaN, 0) = 0
            assert detail[1] == 0.0 and detail[3] == 3
            skipped += 1
            continue
        if _scatter_undefined_deviation(detail, prop, c["d_m"]):
            skipped += 1
            continue
        diffs.append(abs(ours - ref))
        modes.append(detail[2])
    assert len(diffs) >= 500
    assert max(diffs) < TOL_DB, f"max |ours - itmlogic| = {max(diffs):.4f} dB"
    counts = np.bincount(modes, minlength=4)
    assert min(counts[1:]) >= 50, counts


# --------------------------------------------------------------------------- edge cases


EDGE_CASES = [
    # f MHz, d km, h_tx, h_rx, delta h, climate, pol
    (20.0, 1.0, 1.0, 1.0, 0.0, 1, 0),
    (3000.0, 1.0, 1000.0, 1000.0, 500.0, 7, 1),
    (20.0, 500.0, 1000.0, 1.0, 500.0, 4, 1),
    (3000.0, 500.0, 1.0, 1000.0, 0.0, 2, 0),
    (145.0, 25.0, 1.5, 10.0, 0.0, 5, 1),
    (145.0, 2000.0, 10.0, 10.0, 90.0, 6, 1),
    (430.0, 0.2, 2.0, 30.0, 90.0, 3, 0),
]


@pytest.mark.parametrize("case", EDGE_CASES)
def test_area_edge_cases_match_itmlogic(case):
    f, d_km, h_tx, h_rx, dh, climate, pol = case
    for mdvar, z in ((3, (0.0, 0.0, 0.0)), (1, (-1.5, 0.7, 2.0))):
        ref, _prop = _itmlogic_area(f, d_km * KM, h_tx, h_rx, dh, 301.0, climate, 15.0, 0.005, pol, (0, 0), mdvar, z)
        ours = itm._itm_area_loss_db(f, d_km * KM, h_tx, h_rx, dh, 301.0, climate, 15.0, 0.005, pol, 0, 0, mdvar, *z)
        assert ours == pytest.approx(ref, abs=TOL_DB)


@pytest.mark.parametrize("params", [
    (145.0, 1.5, 10.0, 90.0), (50.0, 30.0, 30.0, 0.0), (900.0, 3.0, 100.0, 200.0), (2400.0, 500.0, 2.0, 30.0),
])
def test_region_boundaries_match_itmlogic_and_are_continuous(params):
    """Line of sight / diffraction at the smooth-earth horizon d_Ls and diffraction /
    troposcatter at d_x: modes flip there, the loss does not jump, itmlogic agrees."""
    f, h_tx, h_rx, dh = params
    far = itm.itm_area(f, 1000 * KM, h_tx, h_rx, terrain_irregularity_m=dh)
    boundaries = ((far.smooth_earth_horizon_m, "line_of_sight", "diffraction"),
                  (far.scatter_distance_m, "diffraction", "troposcatter"))
    for boundary_m, below, above in boundaries:
        assert 1 * KM < boundary_m < 2000 * KM
        losses = {}
        for label, d_m in (("below", boundary_m * (1 - 1e-9)), ("at", boundary_m), ("above", boundary_m * (1 + 1e-9))):
            r = itm.itm_area(f, d_m, h_tx, h_rx, terrain_irregularity_m=dh)
            ref, _prop = _itmlogic_area(f, d_m, h_tx, h_rx, dh, 301.0, 5, 15.0, 0.005, 1, (0, 0), 3, (0.0, 0.0, 0.0))
            assert r.basic_loss_db == pytest.approx(ref, abs=TOL_DB), (label, boundary_m)
            losses[label] = r
        assert losses["below"].mode == below and losses["above"].mode == above
        assert abs(losses["above"].basic_loss_db - losses["below"].basic_loss_db) < 0.01
        # the smooth-earth horizon itself already belongs to the diffraction region (d >= d_Ls)
        if below == "line_of_sight":
            assert losses["at"].mode == "diffraction"
        assert r.smooth_earth_horizon_m == far.smooth_earth_horizon_m
        assert r.scatter_distance_m == far.scatter_distance_m


def test_p2p_ridge_flips_line_of_sight_and_matches_itmlogic():
    """A ridge midway on a 15 km path: below the ray the path is clear (line of sight);
    raised above it, ITM's horizons stop at the ridge and the loss grows."""
    n = 300
    x = np.linspace(0.0, 1.0, n + 1)
    results = []
    for ridge_m in (0.0, 20.0, 60.0, 120.0, 250.0):
        z = 200.0 + ridge_m * np.exp(-(((x - 0.5) / 0.03) ** 2))
        r = itm.itm_p2p(z, 50.0, 145.0, 10.0, 10.0)
        ref, _prop = _itmlogic_p2p(z, 50.0, 145.0, 10.0, 10.0, 301.0, 5, 15.0, 0.005, 1, 3, (0.0, 0.0, 0.0))
        assert r.basic_loss_db == pytest.approx(ref, abs=TOL_DB)
        results.append(r)
    assert results[0].profile_line_of_sight and not results[-1].profile_line_of_sight
    assert results[-1].horizon_distances_m[0] == pytest.approx(7.5 * KM, abs=150.0)
    losses = [r.basic_loss_db for r in results]
    assert losses[-1] > losses[0] + 10.0
    assert all(b >= a - 0.5 for a, b in zip(losses, losses[1:], strict=False))


def test_flat_profile_equals_area_mode_with_zero_delta_h():
    for d_km in (5.0, 20.0, 60.0, 150.0, 400.0):
        z = np.zeros(401)
        p2p = itm.itm_p2p(z, d_km * KM / 400, 145.0, 10.0, 10.0)
        area = itm.itm_area(145.0, d_km * KM, 10.0, 10.0, terrain_irregularity_m=0.0)
        assert p2p.terrain_irregularity_m == 0.0 and p2p.mode == area.mode
        # over a smooth earth the geometric line of sight is ITM's line-of-sight region
        assert p2p.profile_line_of_sight == (area.mode == "line_of_sight")
        assert p2p.basic_loss_db == pytest.approx(area.basic_loss_db, abs=0.05)


# --------------------------------------------------------------------------- deliberate deviations


@pytest.mark.parametrize("f_mhz, h_tx, h_rx, d_km, ntia_db", [
    (50.0, 1.0, 1.0, 400.0, 289.729),
    (30.0, 1.5, 2.0, 300.0, 234.017),
])
def test_deviation_scatter_undefined_extends_diffraction(f_mhz, h_tx, h_rx, d_km, ntia_db):
    """Deviation 1: low frequency, low antennas: r1, r2 < 0.2 at d5, so ITM 1.2.2's ascat
    returns 1001 and lrprop keeps the diffraction line for every distance (d_x = 10,000
    km). itmlogic ignores the 1001 and switches to a troposcatter line far too early."""
    r = itm.itm_area(f_mhz, d_km * KM, h_tx, h_rx, terrain_irregularity_m=0.0)
    assert r.mode == "diffraction" and r.scatter_distance_m == 10e6
    assert r.basic_loss_db == pytest.approx(ntia_db, abs=TOL_DB)  # NTIA C++ ITM
    ref, prop = _itmlogic_area(f_mhz, d_km * KM, h_tx, h_rx, 0.0, 301.0, 5, 15.0, 0.005, 1, (0, 0), 3, (0.0, 0.0, 0.0))
    assert prop["dx"] < d_km * KM and ref < r.basic_loss_db - 10.0


def test_deviation_p2p_receiver_height_uses_last_profile_point():
    """Deviation 2: on a line-of-sight profile the receiver's effective height is measured
    from the last point z[n] (FORTRAN pfl(np+3)); itmlogic takes z[n-1]. The receiver here
    stands on a 30 m mound: 31.4 m effective height (NTIA C++: same), not 2 m."""
    z = np.full(101, 100.0)
    z[-1] = 130.0
    r = itm.itm_p2p(z, 100.0, 450.0, 10.0, 2.0)
    assert r.mode == "line_of_sight"
    assert r.effective_heights_m[1] == pytest.approx(31.394, abs=0.001)
    assert r.basic_loss_db == pytest.approx(109.836, abs=TOL_DB)  # NTIA C++ ITM
    ref, prop = _itmlogic_p2p(z, 100.0, 450.0, 10.0, 2.0, 301.0, 5, 15.0, 0.005, 1, 3, (0.0, 0.0, 0.0))
    assert prop["he"][1] == 2.0 and abs(ref - r.basic_loss_db) > 10.0
    # With a flat pad (z[n-1] == z[n]) the two agree: the random cases use such profiles.
    z[-2] = 130.0
    ref, _prop = _itmlogic_p2p(z, 100.0, 450.0, 10.0, 2.0, 301.0, 5, 15.0, 0.005, 1, 3, (0.0, 0.0, 0.0))
    assert itm.itm_p2p_loss_db(z, 100.0, 450.0, 10.0, 2.0) == pytest.approx(ref, abs=TOL_DB)


def test_deviation_nan_reference_attenuation_becomes_zero():
    """Deviation 3: a 200 m mast 650 m in front of a cliff over sea-water ground at 30 MHz:
    the smooth-earth term takes the log of a negative number. ITM's max(A_ref, 0) (FORTRAN,
    NTIA C++) gives 0 dB, i.e. free space less V_med, flagged with warning 3; itmlogic
    returns NaN."""
    z = np.zeros(161)
    z[13:] = 250.0
    kwargs = {"ground_permittivity": 81.0, "ground_conductivity_s_m": 5.0}
    r = itm.itm_p2p(z, 50.0, 30.0, 200.0, 10.0, **kwargs)
    assert r.reference_attenuation_db == 0.0 and r.warning_code == 3
    assert r.basic_loss_db == pytest.approx(80.0524, abs=TOL_DB)  # NTIA C++ ITM
    ref, _prop = _itmlogic_p2p(z, 50.0, 30.0, 200.0, 10.0, 301.0, 5, 81.0, 5.0, 1, 3, (0.0, 0.0, 0.0))
    assert math.isnan(ref)


def test_deviation_deviates_are_not_rounded():
    """Deviation 4: fractions map to deviates with ITM's qerfi as is; itmlogic's qerfi
    rounds to 4 decimals."""
    t = math.sqrt(-2.0 * math.log(0.1))
    exact = t - ((0.010328 * t + 0.802853) * t + 2.515516698) / (((0.001308 * t + 0.189269) * t + 1.432788) * t + 1.0)
    assert itm.itm_deviate(0.1) == pytest.approx(exact, abs=1e-12)
    assert itm.itm_deviate(0.9) == pytest.approx(-exact, abs=1e-12)
    assert itm.itm_deviate(0.5) == 0.0
    assert qerfi([0.1])[0] == round(exact, 4) != itm.itm_deviate(0.1)


# --------------------------------------------------------------------------- variability


def test_location_quantiles_are_median_plus_sigma_l():
    """Broadcast mode, time and situation at 50 %: the loss at location fraction q is the
    median + sigma_L * (-z(q)), the per-link draw the generator makes."""
    for d_km, dh in ((10.0, 90.0), (60.0, 200.0), (200.0, 30.0)):
        median = itm.itm_area(145.0, d_km * KM, 1.5, 10.0, terrain_irregularity_m=dh)
        sigma = itm.itm_location_sigma_db(145.0, d_km * KM, dh)
        assert median.location_sigma_db == pytest.approx(sigma)
        assert 0.0 < sigma < 10.0
        for q in (0.02, 0.1, 0.5, 0.9, 0.98):
            r = itm.itm_area(145.0, d_km * KM, 1.5, 10.0, terrain_irregularity_m=dh, location_fraction=q)
            assert r.basic_loss_db - median.basic_loss_db == pytest.approx(-sigma * itm.itm_deviate(q), abs=1e-9)
        z = 0.7
        kernel = itm._itm_area_loss_db(145.0, d_km * KM, 1.5, 10.0, dh, 301.0, 5, 15.0, 0.005, 1, 0, 0, 3, 0.0, z, 0.0)
        assert kernel - median.basic_loss_db == pytest.approx(-sigma * z, abs=1e-9)


def test_location_sigma_matches_itmlogic_and_formula():
    for f, d_km, dh in ((145.0, 10.0, 90.0), (30.0, 300.0, 0.0), (2400.0, 3.0, 400.0)):
        _ref, prop = _itmlogic_area(f, d_km * KM, 5.0, 20.0, dh, 301.0, 5, 15.0, 0.005, 1, (0, 0), 3, (0.0, 0.0, 0.0))
        assert itm.itm_location_sigma_db(f, d_km * KM, dh) == pytest.approx(prop["sgl"], abs=1e-9)
        q = (1 - 0.8 * math.exp(-d_km / 50.0)) * dh * f / 47.7
        assert itm._itm_location_sigma_db(d_km * KM, f, dh) == pytest.approx(10 * q / (q + 13), abs=1e-12)
    many = itm.itm_location_sigma_db(145.0, np.array([1e3, 1e4, 1e5]), 90.0)
    assert many.shape == (3,) and np.all(np.diff(many) > 0)


def test_variability_switches_and_median_independent_of_mode():
    base = {"terrain_irregularity_m": 90.0}
    median = itm.itm_area_loss_db(145.0, 40 * KM, 1.5, 10.0, **base)
    for mode in itm.VARIABILITY_MODES:
        assert itm.itm_area_loss_db(145.0, 40 * KM, 1.5, 10.0, variability_mode=mode, **base) == pytest.approx(median)
    no_loc = itm.itm_area(145.0, 40 * KM, 1.5, 10.0, location_fraction=0.9, location_variability=False, **base)
    assert no_loc.basic_loss_db == pytest.approx(median) and no_loc.location_sigma_db == 0.0
    losses = [itm.itm_area_loss_db(145.0, 40 * KM, 1.5, 10.0, location_fraction=q, **base) for q in (0.05, 0.3, 0.7, 0.95)]
    assert np.all(np.diff(losses) > 0)
    times = [itm.itm_area_loss_db(145.0, 40 * KM, 1.5, 10.0, time_fraction=q, **base) for q in (0.01, 0.5, 0.99)]
    assert times[0] < times[1] < times[2]
    extreme = itm.itm_area(145.0, 40 * KM, 1.5, 10.0, time_fraction=0.0005, **base)
    assert extreme.warning_code == 1  # |z| > 3.1


def test_warning_codes():
    assert itm.itm_area(145.0, 40 * KM, 1.5, 10.0).warning_code == 0
    assert itm.itm_area(30.0, 40 * KM, 1.5, 10.0).warning_code == 1  # below 40 MHz
    assert itm.itm_area(145.0, 1500 * KM, 10.0, 10.0).warning_code == 1  # beyond 1000 km
    assert itm.itm_area(145.0, 0.5 * KM, 1.5, 10.0).warning_code == 4  # below 1 km
    assert itm.itm_area(145.0, 0.5 * KM, 1.5, 10.0).basic_loss_db > 0.0


# --------------------------------------------------------------------------- API


@njit(cache=True)
def _generator_like_loop(freq_mhz, distances_m, heights_m, z_location, profile_m, spacing_m):
    """What the generator will do: per link, the median and a location draw, in njit code."""
    n = distances_m.shape[0]
    median = np.empty(n)
    drawn = np.empty(n)
    p2p = np.empty(n)
    for i in range(n):
        fs, aref, mode, kwx, he0, he1 = itm._itm_area_reference(
            freq_mhz, distances_m[i], 1.5, heights_m[i], 90.0, 301.0, 15.0, 0.005, 1, 0, 0)
        median[i] = fs + itm._itm_variability_db(aref, distances_m[i], freq_mhz, he0, he1, 90.0, 5, 3, 0.0, 0.0, 0.0)
        drawn[i] = itm._itm_area_loss_db(freq_mhz, distances_m[i], 1.5, heights_m[i], 90.0, 301.0, 5, 15.0, 0.005,
                                         1, 0, 0, 3, 0.0, z_location[i], 0.0)
        p2p[i] = itm._itm_p2p_loss_db(profile_m, spacing_m, freq_mhz, 1.5, heights_m[i], 301.0, 5, 15.0, 0.005,
                                      1, 3, 0.0, z_location[i], 0.0)
    return median, drawn, p2p


def test_kernels_are_callable_from_njit_code():
    rng = np.random.default_rng(7)
    d = rng.uniform(2e3, 150e3, 16)
    h = rng.uniform(5.0, 30.0, 16)
    z = rng.normal(size=16)
    profile = 150.0 + 40.0 * np.sin(np.linspace(0.0, 7.0, 201))
    median, drawn, p2p = _generator_like_loop(145.0, d, h, z, profile, 200.0)
    assert median.dtype == np.float64 and np.all(np.isfinite(drawn))
    np.testing.assert_allclose(median, itm.itm_area_loss_db(145.0, d, 1.5, h), rtol=0, atol=1e-9)
    for i in range(16):
        sigma = itm.itm_location_sigma_db(145.0, d[i], 90.0)
        assert drawn[i] - median[i] == pytest.approx(-sigma * z[i], abs=1e-6)
        r = itm.itm_p2p(profile, 200.0, 145.0, 1.5, float(h[i]))
        assert r.location_sigma_db > 0.0
        assert p2p[i] == pytest.approx(r.median_basic_loss_db - r.location_sigma_db * z[i], abs=1e-6)


def test_vectorized_area_broadcasts_like_scalars():
    d = np.array([[5e3, 50e3, 200e3]])
    h = np.array([[2.0], [20.0]])
    out = itm.itm_area_loss_db(145.0, d, 1.5, h)
    assert out.shape == (2, 3) and out.dtype == np.float64
    for i in range(2):
        for j in range(3):
            assert out[i, j] == itm.itm_area_loss_db(145.0, float(d[0, j]), 1.5, float(h[i, 0]))
    assert isinstance(itm.itm_area_loss_db(145.0, 5e3, 1.5, 2.0), float)


@pytest.mark.parametrize("kwargs, name", [
    ({"freq_mhz": 10.0}, "freq_mhz"),
    ({"freq_mhz": math.nan}, "freq_mhz"),
    ({"distance_m": 0.0}, "distance_m"),
    ({"tx_height_agl_m": 0.2}, "tx_height_agl_m"),
    ({"rx_height_agl_m": 5000.0}, "rx_height_agl_m"),
    ({"terrain_irregularity_m": -1.0}, "terrain_irregularity_m"),
    ({"surface_refractivity_n": 200.0}, "surface_refractivity_n"),
    ({"climate": "temperate"}, "climate"),
    ({"climate": 5}, "climate"),
    ({"ground_permittivity": 1.0}, "ground_permittivity"),
    ({"ground_conductivity_s_m": 0.0}, "ground_conductivity_s_m"),
    ({"polarization": "circular"}, "polarization"),
    ({"tx_siting": "great_care"}, "tx_siting"),
    ({"variability_mode": "single"}, "variability_mode"),
    ({"location_fraction": 1.0}, "location_fraction"),
    ({"time_fraction": 0.0}, "time_fraction"),
])
def test_area_rejects_bad_arguments(kwargs, name):
    args = {"freq_mhz": 145.0, "distance_m": 10e3, "tx_height_agl_m": 1.5, "rx_height_agl_m": 10.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        itm.itm_area_loss_db(**args)


@pytest.mark.parametrize("profile, spacing, name", [
    (np.array([1.0, 2.0]), 100.0, "elevations_m"),
    (np.array([1.0, np.nan, 2.0, 3.0]), 100.0, "elevations_m"),
    (np.zeros((3, 3)), 100.0, "elevations_m"),
    (np.zeros(10), 0.0, "spacing_m"),
])
def test_p2p_rejects_bad_profiles(profile, spacing, name):
    with pytest.raises(ValueError, match=name):
        itm.itm_p2p(profile, spacing, 145.0, 1.5, 10.0)
