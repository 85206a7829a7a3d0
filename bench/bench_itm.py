"""Benchmark of the ITM kernel (worker/rf/itm.py): time per call in area mode and in
point-to-point mode (a 200-point profile), against itmlogic (pure Python ITM 1.2.2), plus
the first-call compile time and the agreement with itmlogic over the random cases of
tests/unit/test_itm.py.

Usage:  .venv/bin/python bench/bench_itm.py [--links 20000] [--repeats 5]

"kernel" = the @njit kernel called once per link from an @njit loop (how the generator
calls it); "wrapper" = the validating Python function per call; "vectorized" =
itm_area_loss_db over an array of links. Medians over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.rf import itm  # noqa: E402

PROFILE_POINTS = 200
FREQ_MHZ = 145.0


@njit(cache=True)
def _area_loop(distance_m, rx_height_m, z_location):
    total = 0.0
    for i in range(distance_m.shape[0]):
        total += itm._itm_area_loss_db(FREQ_MHZ, distance_m[i], 1.5, rx_height_m[i], 90.0, 301.0, 5, 15.0, 0.005,
                                       1, 0, 0, 3, 0.0, z_location[i], 0.0)
    return total


@njit(cache=True)
def _p2p_loop(profiles_m, spacing_m, rx_height_m, z_location):
    total = 0.0
    for i in range(rx_height_m.shape[0]):
        total += itm._itm_p2p_loss_db(profiles_m[i % profiles_m.shape[0]], spacing_m[i], FREQ_MHZ, 1.5,
                                      rx_height_m[i], 301.0, 5, 15.0, 0.005, 1, 3, 0.0, z_location[i], 0.0)
    return total


def _links(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    distance_m = np.exp(rng.uniform(math.log(1e3), math.log(200e3), n))
    rx_height_m = rng.uniform(5.0, 30.0, n)
    z = rng.normal(size=n)
    x = np.linspace(0.0, 1.0, PROFILE_POINTS)
    profiles = np.empty((64, PROFILE_POINTS))
    for k in range(64):
        profiles[k] = 300.0 + sum(rng.uniform(20, 150) * np.sin(2 * np.pi * x / rng.uniform(0.05, 1.0) + rng.uniform(0, 6))
                                  for _ in range(3))
    return distance_m, rx_height_m, z, profiles


def _itmlogic_area(d_m, h_rx):
    from itmlogic.lrprop import lrprop
    from itmlogic.preparatory_subroutines.qlra import qlra
    from itmlogic.preparatory_subroutines.qlrps import qlrps
    from itmlogic.statistics.avar import avar

    prop = {"hg": [1.5, h_rx], "dh": 90.0, "klimx": 5, "mdvarx": 3, "lvar": 0, "kwx": 0, "mdp": 0}
    wn, gme, ens, zgnd = qlrps(FREQ_MHZ, 0, 301.0, 1, 15.0, 0.005)
    prop.update(wn=wn, gme=gme, ens=ens, zgnd=zgnd)
    prop = lrprop(d_m, qlra([0, 0], prop))
    return avar(0.0, 0.0, 0.0, prop)[0]


def _itmlogic_p2p(profile, spacing_m, h_rx):
    from itmlogic.preparatory_subroutines.qlrpfl import qlrpfl
    from itmlogic.preparatory_subroutines.qlrps import qlrps
    from itmlogic.statistics.avar import avar

    n = len(profile) - 1
    prop = {"hg": [1.5, h_rx], "klimx": 5, "mdvarx": 3, "lvar": 0, "kwx": 0, "mdp": 0,
            "pfl": [n, spacing_m] + profile.tolist()}
    wn, gme, ens, zgnd = qlrps(FREQ_MHZ, float(np.mean(profile)), 301.0, 1, 15.0, 0.005)
    prop.update(wn=wn, gme=gme, ens=ens, zgnd=zgnd)
    return avar(0.0, 0.0, 0.0, qlrpfl(prop))[0]


def _per_call_us(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / n * 1e6


def timings(n: int) -> dict:
    d, h, z, profiles = _links(n)
    spacing = np.exp(np.random.default_rng(2).uniform(math.log(1e3), math.log(200e3), n)) / (PROFILE_POINTS - 1)
    _area_loop(d[:10], h[:10], z[:10])
    _p2p_loop(profiles, spacing[:10], h[:10], z[:10])
    itm.itm_area_loss_db(FREQ_MHZ, d[:2], 1.5, h[:2])
    itm.itm_p2p_loss_db(profiles[0], spacing[0], FREQ_MHZ, 1.5, h[0])
    m = min(n, 2000)
    k = min(n, 300)
    return {
        "area_kernel_us": _per_call_us(lambda: _area_loop(d, h, z), n),
        "area_vectorized_us": _per_call_us(lambda: itm.itm_area_loss_db(FREQ_MHZ, d, 1.5, h), n),
        "area_wrapper_us": _per_call_us(lambda: [itm.itm_area_loss_db(FREQ_MHZ, float(d[i]), 1.5, float(h[i]))
                                                 for i in range(m)], m),
        "area_itmlogic_us": _per_call_us(lambda: [_itmlogic_area(float(d[i]), float(h[i])) for i in range(m)], m),
        "p2p_kernel_us": _per_call_us(lambda: _p2p_loop(profiles, spacing, h, z), n),
        "p2p_wrapper_us": _per_call_us(lambda: [itm.itm_p2p_loss_db(profiles[i % 64], float(spacing[i]), FREQ_MHZ,
                                                                    1.5, float(h[i])) for i in range(m)], m),
        "p2p_itmlogic_us": _per_call_us(lambda: [_itmlogic_p2p(profiles[i % 64], float(spacing[i]), float(h[i]))
                                                 for i in range(k)], k),
    }


def compile_times() -> dict:
    """First area + p2p call in a fresh interpreter: empty Numba cache, then cached."""
    code = (
        f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); t0=time.perf_counter();"
        "import numpy as np; from worker.rf import itm;"
        "itm.itm_area_loss_db(145.0, 1e4, 1.5, 10.0); itm.itm_p2p_loss_db(np.zeros(50), 100.0, 145.0, 1.5, 10.0);"
        "print(time.perf_counter()-t0)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "cached"):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            out[label] = float(r.stdout.strip().splitlines()[-1])
    return out


def agreement() -> dict:
    """max |kernel - itmlogic| (dB) per ITM mode over the random cases of the unit tests
    (same seeds and generators; deviation cases counted apart)."""
    spec = importlib.util.spec_from_file_location("test_itm", ROOT / "tests" / "unit" / "test_itm.py")
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)
    result = {}
    for mode_name in ("area", "p2p"):
        rng = np.random.default_rng(20240611 if mode_name == "area" else 20240612)
        worst = {1: 0.0, 2: 0.0, 3: 0.0}
        count = {1: 0, 2: 0, 3: 0}
        skipped = 0
        for i in range(t.N_RANDOM):
            c = t._common_case(rng, i)
            if mode_name == "area":
                dh = 0.0 if i % 10 == 0 else rng.uniform(0.0, 500.0)
                siting = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
                ours = t._area_kernel(c, dh, siting)
                ref, prop = t._itmlogic_area(c["f_mhz"], c["d_m"], c["h_tx"], c["h_rx"], dh, c["ns"], c["climate"],
                                             c["eps"], c["sigma"], c["pol"], siting, c["mdvar"], c["z"])
                detail = itm._itm_area_detail(c["f_mhz"], c["d_m"], c["h_tx"], c["h_rx"], dh, c["ns"], c["eps"],
                                              c["sigma"], c["pol"], siting[0], siting[1])
            else:
                n_int = int(rng.integers(20, 400))
                z = t._profile(rng, n_int, rng.uniform(0.0, 500.0) if i % 10 else 0.0)
                sp = c["d_m"] / n_int
                ours = itm._itm_p2p_loss_db(z, sp, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["climate"], c["eps"],
                                            c["sigma"], c["pol"], c["mdvar"], *c["z"])
                ref, prop = t._itmlogic_p2p(z, sp, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["climate"], c["eps"],
                                            c["sigma"], c["pol"], c["mdvar"], c["z"])
                detail = itm._itm_p2p_detail(z, sp, c["f_mhz"], c["h_tx"], c["h_rx"], c["ns"], c["eps"], c["sigma"],
                                             c["pol"])
            if not math.isfinite(ref) or t._scatter_undefined_deviation(detail, prop, c["d_m"]):
                skipped += 1
                continue
            worst[detail[2]] = max(worst[detail[2]], abs(ours - ref))
            count[detail[2]] += 1
        result[mode_name] = {"max_abs_diff_db": worst, "cases": count, "deviation_cases": skipped}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--links", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"ITM kernel; {os.cpu_count()} CPUs; medians of {a.repeats} runs; {a.links} links; "
          f"p2p profiles of {PROFILE_POINTS} points")
    ct = [compile_times() for _ in range(max(1, a.repeats // 2))]
    print(f"first area + p2p call, empty Numba cache : {statistics.median(c['cold'] for c in ct):.2f} s")
    print(f"first area + p2p call, warm Numba cache  : {statistics.median(c['cached'] for c in ct):.2f} s")
    runs = [timings(a.links) for _ in range(a.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    for key, value in med.items():
        print(f"{key:20s} {value:10.2f} us/call")
    print(f"area: kernel {med['area_itmlogic_us'] / med['area_kernel_us']:.0f}x faster than itmlogic; "
          f"p2p: {med['p2p_itmlogic_us'] / med['p2p_kernel_us']:.0f}x")
    for mode_name, r in agreement().items():
        per_mode = ", ".join(f"{itm.PROPAGATION_MODES[m]} {r['max_abs_diff_db'][m]:.1e} dB ({r['cases'][m]} cases)"
                             for m in (1, 2, 3))
        print(f"agreement {mode_name}: max |kernel - itmlogic| {per_mode}; deviation cases left out: "
              f"{r['deviation_cases']}")


if __name__ == "__main__":
    main()
