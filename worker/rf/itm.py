"""The ITS Irregular Terrain Model (Longley-Rice), version 1.2.2, as Numba kernels.

Follows G.A. Hufford, "The ITS Irregular Terrain Model, version 1.2.2: The Algorithm"
(NTIA/ITS, 1995) and the version 1.2.2 FORTRAN source it documents (github.com/NTIA/
itm-longley-rice, ``fortran/itm.for``): the reference attenuation of ``lrprop`` (line of
sight, diffraction, troposcatter), the preparations ``qlrps`` / ``qlra`` (area mode) and
``qlrpfl`` with ``hzns`` / ``dlthx`` / ``zlsq1`` (point-to-point mode), and the variability
model ``avar`` (time, location, situation). Written from the algorithm, in double precision
(the FORTRAN is single precision); no code is copied.

Two layers, like the rest of ``worker.rf``:

* **Public functions** (``itm_area_loss_db``, ``itm_p2p_loss_db``, ``itm_area``,
  ``itm_p2p``, ``itm_location_sigma_db``, ``itm_deviate``) validate their arguments
  (``ValueError`` naming the argument) and take names: ``climate="continental_temperate"``,
  ``polarization="vertical"``, ``tx_siting="random"``, ``variability_mode="broadcast"``.
* **Kernels** (``_itm_*``, ``@njit``): fixed dtypes (float64 / int64 codes), no
  validation, no I/O, callable from other ``@njit`` code, e.g. once per link inside the
  generator's loop::

      loss_db = _itm_area_loss_db(freq_mhz, distance_m, tx_h_m, rx_h_m, dh_m, n_s, climate,
                                  eps, sigma_s_m, pol, tx_site, rx_site, mdvar,
                                  0.0, z_location, 0.0)

  ``z_location`` is a standard normal deviate drawn by the caller from its own random
  stream: with ``z_time = z_situation = 0`` and the broadcast variability mode (3),
  the loss is the ITM median plus ``sigma_L * (-z_location)`` with ``sigma_L`` from
  ``_itm_location_sigma_db`` (before ITM's soft limit on negative attenuations).

Units are in the names: ``_m`` metres, ``_mhz`` MHz, ``_db`` dB, ``_s_m`` S/m,
``_rad`` radians, ``_per_m`` 1/m. Codes (the ITM ones):

* climate: 1 equatorial, 2 continental subtropical, 3 maritime subtropical, 4 desert,
  5 continental temperate, 6 maritime temperate over land, 7 maritime temperate over sea;
* polarization: 0 horizontal, 1 vertical; siting: 0 random, 1 careful, 2 very careful;
* variability mode ``mdvar``: 0 single message, 1 accidental, 2 mobile, 3 broadcast,
  +10 without location variability, +20 without direct situation variability;
* propagation mode: 1 line of sight, 2 diffraction, 3 troposcatter;
* warning code (ITM's ``kwx``): 0 none, 1 a parameter outside the model's nominal range,
  3 an internal parameter outside its range (results questionable), 4 outside the model's
  limits (results are not meaningful). The kernels compute a value in every case.

Deviates follow ITM: a fraction ``q`` maps to ``z`` with ``Q(z) = q`` (``Q`` the
complementary normal distribution), so ``location_fraction=0.9`` (the loss not exceeded
at 90 % of locations) is ``z = -1.28`` and gives a larger loss than the median.

Deliberate deviations from the ``itmlogic`` Python port (the test reference), where this
kernel follows ITM 1.2.2 instead (tests/unit/test_itm.py names each):

1. troposcatter undefined: when both scatter ratios ``r1, r2 < 0.2`` at ``d5``, ITM 1.2.2
   returns 1001 from ``ascat`` and extends the diffraction line to every distance;
   itmlogic drops the 1001 and uses a troposcatter line (low frequencies, low antennas).
2. point-to-point, line-of-sight profiles: the receiver's effective height uses the last
   profile point ``z[n]`` (FORTRAN ``pfl(np+3)``); itmlogic uses ``z[n-1]``.
3. a reference attenuation that the 1.2.2 formulas make NaN (log of a negative number in
   the smooth-earth diffraction term when a horizon lies very close to a high terminal, a
   case ITM flags with warning 3) becomes 0 dB through ``max(A_ref, 0)``, as in ITM's
   FORTRAN and NTIA's C++; itmlogic returns NaN. Every kernel result is finite.
4. fractions -> deviates use ITM's ``qerfi`` without itmlogic's rounding to 4 decimals
   (0.5 maps to exactly 0, where the formula itself leaves about 1e-9).
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

CLIMATES = {
    "equatorial": 1,
    "continental_subtropical": 2,
    "maritime_subtropical": 3,
    "desert": 4,
    "continental_temperate": 5,
    "maritime_temperate_land": 6,
    "maritime_temperate_sea": 7,
}
POLARIZATIONS = {"horizontal": 0, "vertical": 1}
SITING_CRITERIA = {"random": 0, "careful": 1, "very_careful": 2}
VARIABILITY_MODES = {"single_message": 0, "accidental": 1, "mobile": 2, "broadcast": 3}
PROPAGATION_MODES = {1: "line_of_sight", 2: "diffraction", 3: "troposcatter"}

MODE_LINE_OF_SIGHT = 1
MODE_DIFFRACTION = 2
MODE_TROPOSCATTER = 3

# Limits the public functions enforce (ITM's own hard limits: outside them ITM 1.2.2 sets
# kwx = 4, "results are nonsense").
FREQ_MIN_MHZ, FREQ_MAX_MHZ = 20.0, 20000.0
HEIGHT_MIN_M, HEIGHT_MAX_M = 0.5, 3000.0
REFRACTIVITY_MIN_N, REFRACTIVITY_MAX_N = 250.0, 400.0

_THIRD = 1.0 / 3.0
_CURVATURE_ACTUAL_PER_M = 157e-9  # gamma_a: curvature of the actual earth (1 / 6370 km)

# Variability model (avar): per-climate curve parameters, index = climate code - 1.
# Rows: median time variability V_med (cv1, cv2, yv1, yv2, yv3); sigma_T- (csm1, csm2, ysm1,
# ysm2, ysm3); sigma_T+ (csp1, csp2, ysp1, ysp2, ysp3); then csd1, zd and the frequency
# factors g- (cfm1..3) and g+ (cfp1..3).
_CLIMATE_TABLE = np.array([
    [-9.67, -0.62, 1.26, -9.21, -0.62, -0.39, 3.15],
    [12.7, 9.19, 15.5, 9.05, 9.19, 2.86, 857.9],
    [144.9e3, 228.9e3, 262.6e3, 84.1e3, 228.9e3, 141.7e3, 2222.0e3],
    [190.3e3, 205.2e3, 185.2e3, 101.1e3, 205.2e3, 315.9e3, 164.8e3],
    [133.8e3, 143.6e3, 99.8e3, 98.6e3, 143.6e3, 167.4e3, 116.3e3],
    [2.13, 2.66, 6.11, 1.98, 2.68, 6.86, 8.51],
    [159.5, 7.67, 6.65, 13.11, 7.16, 10.38, 169.8],
    [762.2e3, 100.4e3, 138.2e3, 139.1e3, 93.7e3, 187.8e3, 609.8e3],
    [123.6e3, 172.5e3, 242.2e3, 132.7e3, 186.8e3, 169.6e3, 119.9e3],
    [94.5e3, 136.4e3, 178.6e3, 193.5e3, 133.5e3, 108.9e3, 106.6e3],
    [2.11, 6.87, 10.08, 3.68, 4.75, 8.58, 8.43],
    [102.3, 15.53, 9.60, 159.3, 8.12, 13.97, 8.19],
    [636.9e3, 138.7e3, 165.3e3, 464.4e3, 93.2e3, 216.0e3, 136.2e3],
    [134.8e3, 143.7e3, 225.7e3, 93.1e3, 135.9e3, 152.0e3, 188.5e3],
    [95.6e3, 98.6e3, 129.7e3, 94.2e3, 113.4e3, 122.7e3, 122.9e3],
    [1.224, 0.801, 1.380, 1.000, 1.224, 1.518, 1.518],
    [1.282, 2.161, 1.282, 20.0, 1.282, 1.282, 1.282],
    [1.0, 1.0, 1.0, 1.0, 0.92, 1.0, 1.0],
    [0.0, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 1.77, 0.0, 0.0],
    [1.0, 0.93, 1.0, 0.93, 0.93, 1.0, 1.0],
    [0.0, 0.31, 0.0, 0.19, 0.31, 0.0, 0.0],
    [0.0, 2.00, 0.0, 1.79, 2.00, 0.0, 0.0],
], dtype=np.float64)

# H0 "frequency gain" curves of the troposcatter term (eta_s = 1..5).
_H0_A = np.array([25.0, 80.0, 177.0, 395.0, 705.0])
_H0_B = np.array([24.0, 45.0, 68.0, 80.0, 105.0])


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _itm_free_space_loss_db(distance_m, freq_mhz):
    """Free-space basic transmission loss: 32.45 + 20 log10(f_MHz) + 20 log10(d_km)."""
    return 32.45 + 20.0 * math.log10(freq_mhz) + 20.0 * math.log10(distance_m / 1000.0)


@njit(cache=True)
def _itm_surface_refractivity_n(sea_level_refractivity_n, system_elevation_m):
    """N_s from the sea-level value N_0 and the mean system elevation (qlrps)."""
    if system_elevation_m == 0.0:
        return sea_level_refractivity_n
    return sea_level_refractivity_n * math.exp(-system_elevation_m / 9460.0)


@njit(cache=True)
def _itm_effective_curvature_per_m(surface_refractivity_n):
    """Curvature of the effective earth, gamma_e = 1 / a_e (qlrps)."""
    return _CURVATURE_ACTUAL_PER_M * (1.0 - 0.04665 * math.exp(surface_refractivity_n / 179.3))


@njit(cache=True)
def _itm_ground_impedance(freq_mhz, ground_permittivity, ground_conductivity_s_m, polarization):
    """Surface transfer impedance Z_g of the ground (qlrps): complex128."""
    wave_number_per_m = freq_mhz / 47.7
    eps_complex = complex(ground_permittivity, 376.62 * ground_conductivity_s_m / wave_number_per_m)
    z_g = cmath.sqrt(eps_complex - 1.0)
    if polarization != 0:
        z_g = z_g / eps_complex
    return z_g


@njit(cache=True)
def _itm_deviate(fraction):
    """ITM's qerfi: the standard normal deviate z with Q(z) = fraction (Hastings'
    approximation, |error| < 4.5e-4); 0.5 gives exactly 0 (the formula leaves ~1e-9)."""
    if fraction == 0.5:
        return 0.0
    x = 0.5 - fraction
    t = max(0.5 - abs(x), 0.000001)
    t = math.sqrt(-2.0 * math.log(t))
    z = t - ((0.010328 * t + 0.802853) * t + 2.515516698) / (((0.001308 * t + 0.189269) * t + 1.432788) * t + 1.0)
    if x < 0.0:
        z = -z
    return z


@njit(cache=True)
def _height_gain_db(x, pk):
    """F(x, K): height-gain term of the three-radii smooth-earth diffraction (fht)."""
    if x < 200.0:
        w = -math.log(pk)
        if pk < 1e-5 or x * w * w * w > 5495.0:
            value = -117.0
            if x > 1.0:
                value = 17.372 * math.log(x) + value
        else:
            value = 2.5e-5 * x * x / pk - 8.686 * w - 15.0
    else:
        value = 0.05751 * x - 4.343 * math.log(x)
        if x < 2000.0:
            w = 0.0134 * x * math.exp(-0.005 * x)
            value = (1.0 - w) * value + w * (17.372 * math.log(x) - 117.0)
    return value


@njit(cache=True)
def _knife_edge_db(v_squared):
    """Knife-edge attenuation (Fresnel integral) for nu = sqrt(v_squared) (aknfe)."""
    if v_squared < 5.76:
        return 6.02 + 9.11 * math.sqrt(v_squared) - 1.27 * v_squared
    return 12.953 + 4.343 * math.log(v_squared)


@njit(cache=True)
def _h0_curve_db(r, eta_s):
    """H0(r, eta_s): the troposcatter frequency-gain function (h0f)."""
    it = int(eta_s)
    if it <= 0:
        it = 1
        frac = 0.0
    elif it >= 5:
        it = 5
        frac = 0.0
    else:
        frac = eta_s - it
    x = (1.0 / r) ** 2
    value = 4.343 * math.log((_H0_A[it - 1] * x + _H0_B[it - 1]) * x + 1.0)
    if frac != 0.0:
        value = (1.0 - frac) * value + frac * 4.343 * math.log((_H0_A[it] * x + _H0_B[it]) * x + 1.0)
    return value


@njit(cache=True)
def _scatter_f0_db(theta_d_m):
    """F0(theta * d): the troposcatter attenuation function (ahd)."""
    if theta_d_m <= 10e3:
        return 133.4 + 0.332e-3 * theta_d_m - 4.343 * math.log(theta_d_m)
    if theta_d_m <= 70e3:
        return 104.6 + 0.212e-3 * theta_d_m - 1.086 * math.log(theta_d_m)
    return 71.8 + 0.157e-3 * theta_d_m + 2.171 * math.log(theta_d_m)


@njit(cache=True)
def _diffraction_db(d_m, wn, gme, dla_m, tha_rad, dl0_m, dl1_m, dh_m, inv_abs_zg, xht, aht, wd1, xd1_m, afo_db):
    """Diffraction attenuation at d_m (adiff, d > 0): a weighted mix of double knife-edge
    and three-radii smooth-earth diffraction plus the clutter term afo."""
    th = tha_rad + d_m * gme
    ds = d_m - dla_m
    q = 0.0795775 * wn * ds * th * th
    knife_db = _knife_edge_db(q * dl0_m / (ds + dl0_m)) + _knife_edge_db(q * dl1_m / (ds + dl1_m))
    a = ds / th
    wa = (a * wn) ** _THIRD
    pk = inv_abs_zg / wa
    q = (1.607 - pk) * 151.0 * wa * th + xht
    smooth_db = 0.05751 * q - 4.343 * math.log(q) - aht
    q = (wd1 + xd1_m / d_m) * min((1.0 - 0.8 * math.exp(-d_m / 50e3)) * dh_m * wn, 6283.2)
    wd = 25.1 / (25.1 + math.sqrt(q))
    return smooth_db * wd + (1.0 - wd) * knife_db + afo_db


@njit(cache=True)
def _line_of_sight_db(d_m, wn, dh_m, he0_m, he1_m, z_g, emd, aed, wls):
    """Line-of-sight attenuation at d_m (alos): two-ray field with a rough-earth
    reflection coefficient, blended with the extrapolated diffraction line."""
    q = (1.0 - 0.8 * math.exp(-d_m / 50e3)) * dh_m
    sigma_h_m = 0.78 * q * math.exp(-((q / 16.0) ** 0.25))
    q = he0_m + he1_m
    sin_psi = q / math.sqrt(d_m * d_m + q * q)
    r = (sin_psi - z_g) / (sin_psi + z_g) * math.exp(-min(10.0, wn * sigma_h_m * sin_psi))
    q = r.real * r.real + r.imag * r.imag
    if q < 0.25 or q < sin_psi:
        r = r * math.sqrt(sin_psi / q)
    extrapolated_db = emd * d_m + aed
    q = wn * he0_m * he1_m * 2.0 / d_m
    if q > 1.57:
        q = 3.14 - 2.4649 / q
    field = complex(math.cos(q), -math.sin(q)) + r
    two_ray_db = -4.343 * math.log(field.real * field.real + field.imag * field.imag)
    return (two_ray_db - extrapolated_db) * wls + extrapolated_db


@njit(cache=True)
def _scatter_db(d_m, wn, gme, ns, the0_rad, the1_rad, he0_m, he1_m, tha_rad, ad_m, rr, etq, h0s):
    """Troposcatter attenuation at d_m (ascat, d > 0). Returns (attenuation_db, h0s):
    h0s carries the H0 of the previous call, as ITM's saved variable does. 1001 means
    "scatter undefined" (both r1, r2 < 0.2), h0s unchanged."""
    if h0s > 15.0:
        h0 = h0s
    else:
        th = the0_rad + the1_rad + d_m * gme
        r2 = 2.0 * wn * th
        r1 = r2 * he0_m
        r2 = r2 * he1_m
        if r1 < 0.2 and r2 < 0.2:
            return 1001.0, h0s
        ss = (d_m - ad_m) / (d_m + ad_m)
        q = rr / ss
        ss = max(0.1, ss)
        q = min(max(0.1, q), 10.0)
        z0 = (d_m - ad_m) * (d_m + ad_m) * th * 0.25 / d_m
        et = (etq * math.exp(-(min(1.7, z0 / 8.0e3) ** 6)) + 1.0) * z0 / 1.7556e3
        ett = max(et, 1.0)
        h0 = (_h0_curve_db(r1, ett) + _h0_curve_db(r2, ett)) * 0.5
        h0 = h0 + min(h0, (1.38 - math.log(ett)) * math.log(ss) * math.log(q) * 0.49)
        h0 = max(h0, 0.0)
        if et < 1.0:
            h0 = et * h0 + (1.0 - et) * 4.343 * math.log(
                ((1.0 + 1.4142 / r1) * (1.0 + 1.4142 / r2)) ** 2 * (r1 + r2) / (r1 + r2 + 2.8284))
        if h0 > 15.0 and h0s >= 0.0:
            h0 = h0s
    th = tha_rad + d_m * gme
    value = (_scatter_f0_db(th * d_m) + 4.343 * math.log(47.7 * wn * th ** 4)
             - 0.1 * (ns - 301.0) * math.exp(-th * d_m / 40e3) + h0)
    return value, h0


@njit(cache=True)
def _itm_reference_attenuation(distance_m, freq_mhz, h0_m, h1_m, he0_m, he1_m, dl0_m, dl1_m,
                               the0_rad, the1_rad, dh_m, gme, ns, z_g, point_to_point):
    """ITM's lrprop for one distance: the reference attenuation below free space.

    Inputs are the prepared path (structural heights h, effective heights he, horizon
    distances dl and elevation angles the, terrain irregularity dh, curvature gme,
    refractivity ns, ground impedance z_g). Returns (reference_attenuation_db, mode,
    warning_code, smooth_earth_horizon_m, scatter_distance_m); the last one (where the
    troposcatter line takes over, 10,000 km if scatter is undefined) is NaN for a
    line-of-sight distance, where ITM does not compute it.
    """
    wn = freq_mhz / 47.7
    dls0 = math.sqrt(2.0 * he0_m / gme)
    dls1 = math.sqrt(2.0 * he1_m / gme)
    dlsa = dls0 + dls1
    dla = dl0_m + dl1_m
    tha = max(the0_rad + the1_rad, -dla * gme)

    kwx = 0
    if wn < 0.838 or wn > 210.0:
        kwx = max(kwx, 1)
    if h0_m < 1.0 or h0_m > 1000.0 or h1_m < 1.0 or h1_m > 1000.0:
        kwx = max(kwx, 1)
    if abs(the0_rad) > 200e-3 or dl0_m < 0.1 * dls0 or dl0_m > 3.0 * dls0:
        kwx = max(kwx, 3)
    if abs(the1_rad) > 200e-3 or dl1_m < 0.1 * dls1 or dl1_m > 3.0 * dls1:
        kwx = max(kwx, 3)
    if (ns < 250.0 or ns > 400.0 or gme < 75e-9 or gme > 250e-9 or z_g.real <= abs(z_g.imag)
            or wn < 0.419 or wn > 420.0):
        kwx = 4
    if h0_m < 0.5 or h0_m > 3000.0 or h1_m < 0.5 or h1_m > 3000.0:
        kwx = 4
    dmin = abs(he0_m - he1_m) / 200e-3

    # Diffraction constants (adiff with d = 0).
    q = h0_m * h1_m
    qk = he0_m * he1_m - q
    if point_to_point:
        q += 10.0
    wd1 = math.sqrt(1.0 + qk / q)
    xd1 = dla + tha / gme
    q = (1.0 - 0.8 * math.exp(-dlsa / 50e3)) * dh_m
    q = 0.78 * q * math.exp(-((q / 16.0) ** 0.25))
    afo = min(15.0, 2.171 * math.log(1.0 + 4.77e-4 * h0_m * h1_m * wn * q))
    inv_abs_zg = 1.0 / abs(z_g)
    aht = 20.0
    xht = 0.0
    for j in range(2):
        dl_j = dl0_m if j == 0 else dl1_m
        he_j = he0_m if j == 0 else he1_m
        a = 0.5 * dl_j * dl_j / he_j
        wa = (a * wn) ** _THIRD
        pk = inv_abs_zg / wa
        q = (1.607 - pk) * 151.0 * wa * dl_j / a
        xht += q
        aht += _height_gain_db(q, pk)

    xae = (wn * gme * gme) ** (-_THIRD)
    d3 = max(dlsa, 1.3787 * xae + dla)
    d4 = d3 + 2.7574 * xae
    a3 = _diffraction_db(d3, wn, gme, dla, tha, dl0_m, dl1_m, dh_m, inv_abs_zg, xht, aht, wd1, xd1, afo)
    a4 = _diffraction_db(d4, wn, gme, dla, tha, dl0_m, dl1_m, dh_m, inv_abs_zg, xht, aht, wd1, xd1, afo)
    emd = (a4 - a3) / (d4 - d3)
    aed = a3 - emd * d3

    dist = distance_m
    if dist > 1000e3:
        kwx = max(kwx, 1)
    if dist < dmin:
        kwx = max(kwx, 3)
    if dist < 1e3 or dist > 2000e3:
        kwx = 4

    dx = np.nan
    if dist < dlsa:
        # Line of sight: fit aref = ael + ak1 d + ak2 ln d through alos at d0, d1 and the
        # diffraction line at the smooth-earth horizon distance d2.
        wls = 0.021 / (0.021 + wn * dh_m / max(10e3, dlsa))
        d2 = dlsa
        a2 = aed + d2 * emd
        d0 = 1.908 * wn * he0_m * he1_m
        if aed >= 0.0:
            d0 = min(d0, 0.5 * dla)
            d1 = d0 + 0.25 * (dla - d0)
        else:
            d1 = max(-aed / emd, 0.25 * dla)
        a1 = _line_of_sight_db(d1, wn, dh_m, he0_m, he1_m, z_g, emd, aed, wls)
        ak1 = 0.0
        ak2 = 0.0
        fitted = False
        if d0 < d1:
            a0 = _line_of_sight_db(d0, wn, dh_m, he0_m, he1_m, z_g, emd, aed, wls)
            q = math.log(d2 / d0)
            ak2 = max(0.0, ((d2 - d0) * (a1 - a0) - (d1 - d0) * (a2 - a0))
                      / ((d2 - d0) * math.log(d1 / d0) - (d1 - d0) * q))
            fitted = aed > 0.0 or ak2 > 0.0
            if fitted:
                ak1 = (a2 - a0 - ak2 * q) / (d2 - d0)
                if ak1 < 0.0:
                    ak1 = 0.0
                    ak2 = max(a2 - a0, 0.0) / q
                    if ak2 == 0.0:
                        ak1 = emd
        if not fitted:
            ak1 = max(a2 - a1, 0.0) / (d2 - d1)
            ak2 = 0.0
            if ak1 == 0.0:
                ak1 = emd
        ael = a2 - ak1 * d2 - ak2 * math.log(d2)
        aref = ael + ak1 * dist + ak2 * math.log(dist)
        mode = MODE_LINE_OF_SIGHT
    else:
        # Beyond the horizon: the diffraction line, or the troposcatter line past dx.
        ad = dl0_m - dl1_m
        rr = he1_m / he0_m
        if ad < 0.0:
            ad = -ad
            rr = 1.0 / rr
        etq = (5.67e-6 * ns - 2.32e-3) * ns + 0.031
        d5 = dla + 200e3
        d6 = d5 + 200e3
        a6, h0s = _scatter_db(d6, wn, gme, ns, the0_rad, the1_rad, he0_m, he1_m, tha, ad, rr, etq, -15.0)
        a5, h0s = _scatter_db(d5, wn, gme, ns, the0_rad, the1_rad, he0_m, he1_m, tha, ad, rr, etq, h0s)
        if a5 < 1000.0:
            ems = (a6 - a5) / 200e3
            dx = max(dlsa, max(dla + 0.3 * xae * math.log(47.7 * wn), (a5 - aed - ems * d5) / (emd - ems)))
            aes = (emd - ems) * dx + aed
        else:
            ems = emd
            aes = aed
            dx = 10e6
        if dist > dx:
            aref = aes + ems * dist
            mode = MODE_TROPOSCATTER
        else:
            aref = aed + emd * dist
            mode = MODE_DIFFRACTION
    # max(A_ref, 0) as ITM's FORTRAN and C do it: also a NaN (log of a negative argument in
    # the smooth-earth term, for a horizon very close to a high terminal, warning 3) gives 0.
    if not aref > 0.0:
        aref = 0.0
    return aref, mode, kwx, dlsa, dx


@njit(cache=True)
def _area_terminal(height_agl_m, siting, terrain_irregularity_m, gme):
    """qlra for one terminal: (effective_height_m, horizon_distance_m, horizon_angle_rad)."""
    dh = terrain_irregularity_m
    if siting <= 0:
        he = height_agl_m
    else:
        q = 4.0 if siting == 1 else 9.0
        if height_agl_m < 5.0:
            q = q * math.sin(0.3141593 * height_agl_m)
        he = height_agl_m + (1.0 + q) * math.exp(-min(20.0, 2.0 * height_agl_m / max(1e-3, dh)))
    q = math.sqrt(2.0 * he / gme)
    dl = q * math.exp(-0.07 * math.sqrt(dh / max(he, 5.0)))
    the = (0.65 * dh * (q / dl - 1.0) - 2.0 * he) / q
    return he, dl, the


@njit(cache=True)
def _itm_area_geometry(tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m, gme, tx_siting, rx_siting):
    """qlra: effective heights, horizon distances and horizon elevation angles from the
    structural heights, delta h and the siting criteria. Returns
    (he_tx_m, he_rx_m, dl_tx_m, dl_rx_m, the_tx_rad, the_rx_rad)."""
    he0, dl0, the0 = _area_terminal(tx_height_agl_m, tx_siting, terrain_irregularity_m, gme)
    he1, dl1, the1 = _area_terminal(rx_height_agl_m, rx_siting, terrain_irregularity_m, gme)
    return he0, he1, dl0, dl1, the0, the1


@njit(cache=True)
def _itm_location_sigma_db(distance_m, freq_mhz, terrain_irregularity_m):
    """sigma_L, ITM's location variability (dB, one standard deviation, avar's sgl)."""
    q = (1.0 - 0.8 * math.exp(-distance_m / 50e3)) * terrain_irregularity_m * freq_mhz / 47.7
    return 10.0 * q / (q + 13.0)


@njit(cache=True)
def _itm_variability_db(reference_attenuation_db, distance_m, freq_mhz, tx_effective_height_m,
                        rx_effective_height_m, terrain_irregularity_m, climate, mdvar,
                        z_time, z_location, z_situation):
    """avar: the attenuation below free space (dB) at the given standard normal deviates
    of time, location and situation (ITM convention: z = qerfi(fraction); z = 0 for 50 %).
    At z = 0 for all three it is the median, ``A_ref - V_med`` (softly limited below 0 dB)."""
    k = climate - 1
    if k < 0 or k > 6:
        k = 4  # ITM substitutes continental temperate (kwx = 2)
    wn = freq_mhz / 47.7
    kdv = mdvar
    no_situation = kdv >= 20
    if no_situation:
        kdv -= 20
    no_location = kdv >= 10
    if no_location:
        kdv -= 10
    if kdv < 0 or kdv > 3:
        kdv = 0
    t = _CLIMATE_TABLE
    q = math.log(0.133 * wn)
    gm = t[17, k] + t[18, k] / ((t[19, k] * q) ** 2 + 1.0)
    gp = t[20, k] + t[21, k] / ((t[22, k] * q) ** 2 + 1.0)
    dexa = (math.sqrt(18e6 * tx_effective_height_m) + math.sqrt(18e6 * rx_effective_height_m)
            + (575.7e12 / wn) ** _THIRD)
    if distance_m < dexa:
        de = 130e3 * distance_m / dexa
    else:
        de = 130e3 + distance_m - dexa
    vmd = _curve(t[0, k], t[1, k], t[2, k], t[3, k], t[4, k], de)
    sgtm = _curve(t[5, k], t[6, k], t[7, k], t[8, k], t[9, k], de) * gm
    sgtp = _curve(t[10, k], t[11, k], t[12, k], t[13, k], t[14, k], de) * gp
    sgtd = sgtp * t[15, k]
    zd = t[16, k]
    tgtd = (sgtp - sgtd) * zd
    if no_location:
        sgl = 0.0
    else:
        sgl = _itm_location_sigma_db(distance_m, freq_mhz, terrain_irregularity_m)
    vs0 = 0.0 if no_situation else (5.0 + 3.0 * math.exp(-de / 100e3)) ** 2

    zt = z_time
    zl = z_location
    zc = z_situation
    if kdv == 0:
        zt = zc
        zl = zc
    elif kdv == 1:
        zl = zc
    elif kdv == 2:
        zl = zt
    if zt < 0.0:
        sgt = sgtm
    elif zt <= zd:
        sgt = sgtp
    else:
        sgt = sgtd + tgtd / zt
    vs = vs0 + (sgt * zt) ** 2 / (7.8 + zc * zc) + (sgl * zl) ** 2 / (24.0 + zc * zc)
    if kdv == 0:
        yr = 0.0
        sgc = math.sqrt(sgt * sgt + sgl * sgl + vs)
    elif kdv == 1:
        yr = sgt * zt
        sgc = math.sqrt(sgl * sgl + vs)
    elif kdv == 2:
        yr = math.sqrt(sgt * sgt + sgl * sgl) * zt
        sgc = math.sqrt(vs)
    else:
        yr = sgt * zt + sgl * zl
        sgc = math.sqrt(vs)
    a = reference_attenuation_db - vmd - yr - sgc * zc
    if a < 0.0:
        a = a * (29.0 - a) / (29.0 - 10.0 * a)
    return a


@njit(cache=True)
def _curve(c1, c2, x1, x2, x3, de):
    """The empirical curve of avar (TN101 fig. 10.13 fits)."""
    r = (de / x1) ** 2
    return (c1 + c2 / (1.0 + ((de - x2) / x3) ** 2)) * r / (1.0 + r)


@njit(cache=True)
def _itm_area_reference(freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                        surface_refractivity_n, ground_permittivity, ground_conductivity_s_m,
                        polarization, tx_siting, rx_siting):
    """Area mode up to the reference attenuation. Returns (free_space_loss_db,
    reference_attenuation_db, mode, warning_code, tx_effective_height_m,
    rx_effective_height_m); feed the last two to ``_itm_variability_db``."""
    gme = _itm_effective_curvature_per_m(surface_refractivity_n)
    z_g = _itm_ground_impedance(freq_mhz, ground_permittivity, ground_conductivity_s_m, polarization)
    he0, he1, dl0, dl1, the0, the1 = _itm_area_geometry(
        tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m, gme, tx_siting, rx_siting)
    aref, mode, kwx, _dlsa, _dx = _itm_reference_attenuation(
        distance_m, freq_mhz, tx_height_agl_m, rx_height_agl_m, he0, he1, dl0, dl1, the0, the1,
        terrain_irregularity_m, gme, surface_refractivity_n, z_g, False)
    return _itm_free_space_loss_db(distance_m, freq_mhz), aref, mode, kwx, he0, he1


@njit(cache=True)
def _itm_area_loss_db(freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                      surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                      polarization, tx_siting, rx_siting, mdvar, z_time, z_location, z_situation):
    """Area mode basic transmission loss (dB) at the given deviates (0, 0, 0 = median)."""
    fs, aref, _mode, _kwx, he0, he1 = _itm_area_reference(
        freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
        surface_refractivity_n, ground_permittivity, ground_conductivity_s_m, polarization,
        tx_siting, rx_siting)
    return fs + _itm_variability_db(aref, distance_m, freq_mhz, he0, he1, terrain_irregularity_m,
                                    climate, mdvar, z_time, z_location, z_situation)


@njit(cache=True)
def _itm_area_loss_db_many(freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                           surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                           polarization, tx_siting, rx_siting, mdvar, z_time, z_location, z_situation, out):
    """``_itm_area_loss_db`` over equal-length float64 arrays (the first five), into out."""
    for i in range(out.shape[0]):
        out[i] = _itm_area_loss_db(freq_mhz[i], distance_m[i], tx_height_agl_m[i], rx_height_agl_m[i],
                                   terrain_irregularity_m[i], surface_refractivity_n, climate,
                                   ground_permittivity, ground_conductivity_s_m, polarization,
                                   tx_siting, rx_siting, mdvar, z_time, z_location, z_situation)


# --- point-to-point preparation (qlrpfl and its helpers) -----------------------------


@njit(cache=True)
def _least_squares_ends(values, n_intervals, spacing_m, x1_m, x2_m):
    """zlsq1: least-squares line through values[i] (at i * spacing_m) between x1_m and
    x2_m; returns its heights at 0 and at n_intervals * spacing_m."""
    xn = float(n_intervals)
    xa = float(int(max(x1_m / spacing_m, 0.0)))
    xb = xn - float(int(max(xn - x2_m / spacing_m, 0.0)))
    if xb <= xa:
        xa = max(xa - 1.0, 0.0)
        xb = xn - max(xn - (xb + 1.0), 0.0)
    ja = int(xa)
    jb = int(xb)
    n = jb - ja
    xa = xb - xa
    x = -0.5 * xa
    xb = xb + x
    a = 0.5 * (values[ja] + values[jb])
    b = 0.5 * (values[ja] - values[jb]) * x
    for _ in range(2, n + 1):
        ja += 1
        x += 1.0
        a += values[ja]
        b += values[ja] * x
    a = a / xa
    b = b * 12.0 / ((xa * xa + 2.0) * xa)
    return a - b * xb, a + b * (xn - xb)


@njit(cache=True)
def _terrain_irregularity_m(elevations_m, spacing_m, x1_m, x2_m):
    """dlthx: delta h of the profile between x1_m and x2_m, the interdecile range of the
    elevations about a least-squares line, scaled to its asymptotic value."""
    n_intervals = elevations_m.shape[0] - 1
    xa = x1_m / spacing_m
    xb = x2_m / spacing_m
    if xb - xa < 2.0:
        return 0.0
    ka = int(0.1 * (xb - xa + 8.0))
    ka = min(max(4, ka), 25)
    n = 10 * ka - 5
    kb = n - ka + 1
    sn = float(n - 1)
    s = np.empty(n)
    xb = (xb - xa) / sn
    k = int(xa + 1.0)
    xa = xa - k
    for j in range(n):
        while xa > 0.0 and k < n_intervals:
            xa -= 1.0
            k += 1
        s[j] = elevations_m[k] + (elevations_m[k] - elevations_m[k - 1]) * xa
        xa += xb
    z0, zn = _least_squares_ends(s, n - 1, 1.0, 0.0, sn)
    slope = (zn - z0) / sn
    for j in range(n):
        s[j] -= z0
        z0 += slope
    s.sort()
    # ka-th and kb-th largest of the n residuals
    dh = s[n - ka] - s[n - kb]
    return dh / (1.0 - 0.8 * math.exp(-(x2_m - x1_m) / 50e3))


@njit(cache=True)
def _horizons(elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, gme):
    """hzns: horizon elevation angles and distances of both terminals along the profile.
    Returns (the_tx_rad, the_rx_rad, dl_tx_m, dl_rx_m); on a line-of-sight path both
    horizon distances are the path length."""
    n_intervals = elevations_m.shape[0] - 1
    dist = n_intervals * spacing_m
    za = elevations_m[0] + tx_height_agl_m
    zb = elevations_m[n_intervals] + rx_height_agl_m
    qc = 0.5 * gme
    q = qc * dist
    slope = (zb - za) / dist
    the0 = slope - q
    the1 = -slope - q
    dl0 = dist
    dl1 = dist
    if n_intervals >= 2:
        sa = 0.0
        sb = dist
        tx_blocked = False
        for i in range(1, n_intervals):
            sa += spacing_m
            sb -= spacing_m
            q = elevations_m[i] - (qc * sa + the0) * sa - za
            if q > 0.0:
                the0 += q / sa
                dl0 = sa
                tx_blocked = True
            if tx_blocked:
                q = elevations_m[i] - (qc * sb + the1) * sb - zb
                if q > 0.0:
                    the1 += q / sb
                    dl1 = sb
    return the0, the1, dl0, dl1


@njit(cache=True)
def _itm_profile_geometry(elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, gme):
    """qlrpfl: the prepared path of a profile. Returns (distance_m, terrain_irregularity_m,
    he_tx_m, he_rx_m, dl_tx_m, dl_rx_m, the_tx_rad, the_rx_rad, profile_clear), the last
    True when the horizon search finds no horizon (_itm_profile_line_of_sight)."""
    n_intervals = elevations_m.shape[0] - 1
    dist = n_intervals * spacing_m
    the0, the1, dl0, dl1 = _horizons(elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, gme)
    clear = dl0 >= dist
    xl0 = min(15.0 * tx_height_agl_m, 0.1 * dl0)
    xl1 = dist - min(15.0 * rx_height_agl_m, 0.1 * dl1)
    dh = _terrain_irregularity_m(elevations_m, spacing_m, xl0, xl1)
    z_tx = elevations_m[0]
    z_rx = elevations_m[n_intervals]
    if dl0 + dl1 > 1.5 * dist:
        # Line of sight: effective heights above a line fitted to the whole path; horizons
        # and angles as in area mode (stretched so that they reach over the path).
        za, zb = _least_squares_ends(elevations_m, n_intervals, spacing_m, xl0, xl1)
        he0 = tx_height_agl_m + max(z_tx - za, 0.0)
        he1 = rx_height_agl_m + max(z_rx - zb, 0.0)
        dl0 = math.sqrt(2.0 * he0 / gme) * math.exp(-0.07 * math.sqrt(dh / max(he0, 5.0)))
        dl1 = math.sqrt(2.0 * he1 / gme) * math.exp(-0.07 * math.sqrt(dh / max(he1, 5.0)))
        q = dl0 + dl1
        if q <= dist:
            q = (dist / q) ** 2
            he0 *= q
            he1 *= q
            dl0 = math.sqrt(2.0 * he0 / gme) * math.exp(-0.07 * math.sqrt(dh / max(he0, 5.0)))
            dl1 = math.sqrt(2.0 * he1 / gme) * math.exp(-0.07 * math.sqrt(dh / max(he1, 5.0)))
        q = math.sqrt(2.0 * he0 / gme)
        the0 = (0.65 * dh * (q / dl0 - 1.0) - 2.0 * he0) / q
        q = math.sqrt(2.0 * he1 / gme)
        the1 = (0.65 * dh * (q / dl1 - 1.0) - 2.0 * he1) / q
    else:
        # Trans-horizon: effective heights above lines fitted to each foreground.
        za, _unused = _least_squares_ends(elevations_m, n_intervals, spacing_m, xl0, 0.9 * dl0)
        _unused, zb = _least_squares_ends(elevations_m, n_intervals, spacing_m, dist - 0.9 * dl1, xl1)
        he0 = tx_height_agl_m + max(z_tx - za, 0.0)
        he1 = rx_height_agl_m + max(z_rx - zb, 0.0)
    return dist, dh, he0, he1, dl0, dl1, the0, the1, clear


@njit(cache=True)
def _itm_profile_system_elevation_m(elevations_m):
    """Mean elevation of the profile without its first and last 10 % (the z_sys the ITM
    point-to-point driver uses to reduce N_0 to N_s)."""
    n_intervals = elevations_m.shape[0] - 1
    p10 = int(0.1 * n_intervals)
    total = 0.0
    for i in range(p10, n_intervals - p10 + 1):
        total += elevations_m[i]
    return total / (n_intervals - 2 * p10 + 1)


@njit(cache=True)
def _itm_profile_line_of_sight(elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, surface_refractivity_n):
    """True when no profile point rises above the straight ray between the antennas over
    the effective earth (ITM's hzns finds no horizon: both horizon distances are the path
    length). This is the geometric line of sight; ITM's *mode* instead compares the
    distance with the smooth-earth horizon distance."""
    ns = _itm_surface_refractivity_n(surface_refractivity_n, _itm_profile_system_elevation_m(elevations_m))
    gme = _itm_effective_curvature_per_m(ns)
    _the0, _the1, dl0, _dl1 = _horizons(elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, gme)
    return dl0 >= (elevations_m.shape[0] - 1) * spacing_m


@njit(cache=True)
def _itm_p2p_detail(elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m,
                    surface_refractivity_n, ground_permittivity, ground_conductivity_s_m, polarization):
    """Point-to-point mode up to the reference attenuation, with the intermediate values:
    (free_space_loss_db, reference_attenuation_db, mode, warning_code, distance_m,
    terrain_irregularity_m, he_tx_m, he_rx_m, dl_tx_m, dl_rx_m, the_tx_rad, the_rx_rad,
    smooth_earth_horizon_m, scatter_distance_m, surface_refractivity_ns, profile_clear);
    profile_clear is _itm_profile_line_of_sight of the same profile (one horizon search)."""
    ns = _itm_surface_refractivity_n(surface_refractivity_n, _itm_profile_system_elevation_m(elevations_m))
    gme = _itm_effective_curvature_per_m(ns)
    z_g = _itm_ground_impedance(freq_mhz, ground_permittivity, ground_conductivity_s_m, polarization)
    dist, dh, he0, he1, dl0, dl1, the0, the1, clear = _itm_profile_geometry(
        elevations_m, spacing_m, tx_height_agl_m, rx_height_agl_m, gme)
    aref, mode, kwx, dlsa, dx = _itm_reference_attenuation(
        dist, freq_mhz, tx_height_agl_m, rx_height_agl_m, he0, he1, dl0, dl1, the0, the1, dh, gme,
        ns, z_g, True)
    return (_itm_free_space_loss_db(dist, freq_mhz), aref, mode, kwx, dist, dh, he0, he1, dl0, dl1,
            the0, the1, dlsa, dx, ns, clear)


@njit(cache=True)
def _itm_p2p_reference(elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m,
                       surface_refractivity_n, ground_permittivity, ground_conductivity_s_m, polarization):
    """Point-to-point mode up to the reference attenuation. Returns (free_space_loss_db,
    reference_attenuation_db, mode, warning_code, distance_m, terrain_irregularity_m,
    tx_effective_height_m, rx_effective_height_m); the last four go to
    ``_itm_variability_db``."""
    r = _itm_p2p_detail(elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m,
                        surface_refractivity_n, ground_permittivity, ground_conductivity_s_m, polarization)
    return r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]


@njit(cache=True)
def _itm_p2p_loss_db(elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m,
                     surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                     polarization, mdvar, z_time, z_location, z_situation):
    """Point-to-point basic transmission loss (dB) over a profile (float64 elevations at
    equal spacing, transmitter first) at the given deviates (0, 0, 0 = median)."""
    fs, aref, _mode, _kwx, dist, dh, he0, he1 = _itm_p2p_reference(
        elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m, surface_refractivity_n,
        ground_permittivity, ground_conductivity_s_m, polarization)
    return fs + _itm_variability_db(aref, dist, freq_mhz, he0, he1, dh, climate, mdvar,
                                    z_time, z_location, z_situation)


@njit(cache=True)
def _itm_area_detail(freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                     surface_refractivity_n, ground_permittivity, ground_conductivity_s_m,
                     polarization, tx_siting, rx_siting):
    """Area mode with the intermediate values, same layout as ``_itm_p2p_detail``. The
    scatter distance is computed also for a line-of-sight distance (at the horizon)."""
    gme = _itm_effective_curvature_per_m(surface_refractivity_n)
    z_g = _itm_ground_impedance(freq_mhz, ground_permittivity, ground_conductivity_s_m, polarization)
    he0, he1, dl0, dl1, the0, the1 = _itm_area_geometry(
        tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m, gme, tx_siting, rx_siting)
    aref, mode, kwx, dlsa, dx = _itm_reference_attenuation(
        distance_m, freq_mhz, tx_height_agl_m, rx_height_agl_m, he0, he1, dl0, dl1, the0, the1,
        terrain_irregularity_m, gme, surface_refractivity_n, z_g, False)
    if mode == MODE_LINE_OF_SIGHT:
        _a, _m, _k, _l, dx = _itm_reference_attenuation(
            dlsa, freq_mhz, tx_height_agl_m, rx_height_agl_m, he0, he1, dl0, dl1, the0, the1,
            terrain_irregularity_m, gme, surface_refractivity_n, z_g, False)
    return (_itm_free_space_loss_db(distance_m, freq_mhz), aref, mode, kwx, distance_m,
            terrain_irregularity_m, he0, he1, dl0, dl1, the0, the1, dlsa, dx, surface_refractivity_n)


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class ItmResult:
    """One ITM prediction with its intermediate values (SI units in the names)."""

    basic_loss_db: float  # at the requested time / location / situation fractions
    median_basic_loss_db: float  # at 50 % / 50 % / 50 %
    free_space_loss_db: float
    reference_attenuation_db: float  # A_ref, below free space, before variability
    location_sigma_db: float  # sigma_L, one standard deviation of location variability
    mode: str  # "line_of_sight", "diffraction" or "troposcatter"
    warning_code: int  # ITM's kwx: 0 none, 1 nominal range, 3 internal range, 4 limits
    distance_m: float
    terrain_irregularity_m: float  # delta h (given in area mode, from the profile in p2p)
    effective_heights_m: tuple[float, float]  # (tx, rx)
    horizon_distances_m: tuple[float, float]  # (tx, rx)
    horizon_angles_rad: tuple[float, float]  # (tx, rx)
    smooth_earth_horizon_m: float  # d_Ls: line of sight below this distance
    scatter_distance_m: float  # d_x: troposcatter beyond this distance (1e7 if undefined)
    surface_refractivity_n: float  # N_s used (p2p: reduced to the profile's mean elevation)
    profile_line_of_sight: bool | None = None  # p2p: the profile clears the ray (None in area mode)


def _finite(name: str, value, lo: float | None = None, hi: float | None = None, *,
            lo_open: bool = False, hi_open: bool = False):
    """value as float (Python scalars) or float64 array, checked: finite and in range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if lo is not None and (x <= lo if lo_open else x < lo):
            raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
        if hi is not None and (x >= hi if hi_open else x > hi):
            raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")
        return x
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (np.any(arr <= lo) if lo_open else np.any(arr < lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and (np.any(arr >= hi) if hi_open else np.any(arr > hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")
    return arr


def _code(name: str, value, table: dict[str, int]) -> int:
    if isinstance(value, str) and value in table:
        return table[value]
    raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")


def _mdvar(variability_mode: str, location_variability: bool, situation_variability: bool) -> int:
    code = _code("variability_mode", variability_mode, VARIABILITY_MODES)
    return code + (0 if location_variability else 10) + (0 if situation_variability else 20)


def _fractions(time_fraction, location_fraction, situation_fraction) -> tuple[float, float, float]:
    zs = []
    for name, value in (("time_fraction", time_fraction), ("location_fraction", location_fraction),
                        ("situation_fraction", situation_fraction)):
        f = float(_finite(name, value, 0.0, 1.0, lo_open=True, hi_open=True))
        zs.append(0.0 if f == 0.5 else _itm_deviate(f))
    return zs[0], zs[1], zs[2]


def _common(freq_mhz, surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
            polarization) -> tuple[float | np.ndarray, float, int, float, float, int]:
    f = _finite("freq_mhz", freq_mhz, FREQ_MIN_MHZ, FREQ_MAX_MHZ)
    ns = float(_finite("surface_refractivity_n", surface_refractivity_n, REFRACTIVITY_MIN_N, REFRACTIVITY_MAX_N))
    eps = float(_finite("ground_permittivity", ground_permittivity, 1.0, lo_open=True))
    sigma = float(_finite("ground_conductivity_s_m", ground_conductivity_s_m, 0.0, lo_open=True))
    return (f, ns, _code("climate", climate, CLIMATES), eps, sigma,
            _code("polarization", polarization, POLARIZATIONS))


def itm_deviate(fraction: float) -> float:
    """ITM's standard normal deviate for a fraction in (0, 1): z with Q(z) = fraction
    (so 0.5 -> 0, 0.9 -> -1.28: the 90 % value is the larger loss)."""
    return float(_itm_deviate(float(_finite("fraction", fraction, 0.0, 1.0, lo_open=True, hi_open=True))))


def itm_location_sigma_db(freq_mhz, distance_m, terrain_irregularity_m):
    """sigma_L (dB): the standard deviation of ITM's location variability, 10 q / (q + 13)
    with q = (1 - 0.8 exp(-d / 50 km)) * delta_h * f / 47.7 MHz. Broadcasts over arrays."""
    f = _finite("freq_mhz", freq_mhz, FREQ_MIN_MHZ, FREQ_MAX_MHZ)
    d = _finite("distance_m", distance_m, 0.0, lo_open=True)
    dh = _finite("terrain_irregularity_m", terrain_irregularity_m, 0.0)
    q = (1.0 - 0.8 * np.exp(-d / 50e3)) * dh * f / 47.7
    out = 10.0 * q / (q + 13.0)
    return float(out) if out.ndim == 0 else out


def itm_area_loss_db(freq_mhz, distance_m, tx_height_agl_m, rx_height_agl_m, *,
                     terrain_irregularity_m=90.0, surface_refractivity_n=301.0,
                     climate="continental_temperate", ground_permittivity=15.0,
                     ground_conductivity_s_m=0.005, polarization="vertical",
                     tx_siting="random", rx_siting="random", variability_mode="broadcast",
                     time_fraction=0.5, location_fraction=0.5, situation_fraction=0.5,
                     location_variability=True, situation_variability=True):
    """ITM area mode basic transmission loss (dB).

    ``freq_mhz`` (20-20000), ``distance_m`` (> 0; ITM's range is 1-2000 km),
    ``tx_height_agl_m`` / ``rx_height_agl_m`` (antenna above ground, 0.5-3000 m) and
    ``terrain_irregularity_m`` (delta h >= 0) broadcast against each other; a float comes
    back when all are scalars, else a float64 array. The fractions (0 < f < 1) select the
    quantile: all 0.5 is the median (reference) loss; ``location_fraction`` is the share of
    locations where the loss does not exceed the result. ``location_variability`` /
    ``situation_variability`` False are ITM's mdvar +10 / +20.
    """
    f, ns, climate_code, eps, sigma, pol = _common(freq_mhz, surface_refractivity_n, climate,
                                                   ground_permittivity, ground_conductivity_s_m, polarization)
    d = _finite("distance_m", distance_m, 0.0, lo_open=True)
    h_tx = _finite("tx_height_agl_m", tx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M)
    h_rx = _finite("rx_height_agl_m", rx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M)
    dh = _finite("terrain_irregularity_m", terrain_irregularity_m, 0.0)
    site_tx = _code("tx_siting", tx_siting, SITING_CRITERIA)
    site_rx = _code("rx_siting", rx_siting, SITING_CRITERIA)
    mdvar = _mdvar(variability_mode, location_variability, situation_variability)
    zt, zl, zc = _fractions(time_fraction, location_fraction, situation_fraction)
    if all(isinstance(v, float) for v in (f, d, h_tx, h_rx, dh)):
        return float(_itm_area_loss_db(f, d, h_tx, h_rx, dh, ns, climate_code, eps, sigma, pol, site_tx, site_rx,
                                       mdvar, zt, zl, zc))
    arrays = np.broadcast_arrays(f, d, h_tx, h_rx, dh)
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in arrays]
    out = np.empty(flat[0].shape[0], dtype=np.float64)
    _itm_area_loss_db_many(flat[0], flat[1], flat[2], flat[3], flat[4], ns, climate_code, eps, sigma,
                           pol, site_tx, site_rx, mdvar, zt, zl, zc, out)
    return float(out[0]) if shape == () else out.reshape(shape)


def _validate_profile(elevations_m, spacing_m) -> tuple[np.ndarray, float]:
    z = np.ascontiguousarray(_finite("elevations_m", elevations_m), dtype=np.float64)
    if z.ndim != 1 or z.shape[0] < 3:
        raise ValueError(f"elevations_m must be a 1-D array of at least 3 points, got shape {z.shape}")
    spacing = float(_finite("spacing_m", spacing_m, 0.0, lo_open=True))
    return z, spacing


def _result(detail, basic_loss_db: float, median_db: float, sigma_db: float) -> ItmResult:
    (fs, aref, mode, kwx, dist, dh, he0, he1, dl0, dl1, the0, the1, dlsa, dx, ns) = detail[:15]
    return ItmResult(
        basic_loss_db=float(basic_loss_db), median_basic_loss_db=float(median_db),
        free_space_loss_db=float(fs), reference_attenuation_db=float(aref),
        location_sigma_db=float(sigma_db), mode=PROPAGATION_MODES[int(mode)], warning_code=int(kwx),
        distance_m=float(dist), terrain_irregularity_m=float(dh),
        effective_heights_m=(float(he0), float(he1)), horizon_distances_m=(float(dl0), float(dl1)),
        horizon_angles_rad=(float(the0), float(the1)), smooth_earth_horizon_m=float(dlsa),
        scatter_distance_m=float(dx), surface_refractivity_n=float(ns))


def _variability_warning(kwx: int, zs: tuple[float, float, float]) -> int:
    return max(kwx, 1) if any(abs(z) > 3.10 for z in zs) else kwx


def itm_area(freq_mhz: float, distance_m: float, tx_height_agl_m: float, rx_height_agl_m: float, *,
             terrain_irregularity_m=90.0, surface_refractivity_n=301.0,
             climate="continental_temperate", ground_permittivity=15.0,
             ground_conductivity_s_m=0.005, polarization="vertical", tx_siting="random",
             rx_siting="random", variability_mode="broadcast", time_fraction=0.5,
             location_fraction=0.5, situation_fraction=0.5, location_variability=True,
             situation_variability=True) -> ItmResult:
    """One area-mode prediction with its intermediate values (scalars only); arguments as
    in :func:`itm_area_loss_db`."""
    f, ns, climate_code, eps, sigma, pol = _common(freq_mhz, surface_refractivity_n, climate,
                                                   ground_permittivity, ground_conductivity_s_m, polarization)
    f = float(f)
    d = float(_finite("distance_m", distance_m, 0.0, lo_open=True))
    h_tx = float(_finite("tx_height_agl_m", tx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M))
    h_rx = float(_finite("rx_height_agl_m", rx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M))
    dh = float(_finite("terrain_irregularity_m", terrain_irregularity_m, 0.0))
    site_tx = _code("tx_siting", tx_siting, SITING_CRITERIA)
    site_rx = _code("rx_siting", rx_siting, SITING_CRITERIA)
    mdvar = _mdvar(variability_mode, location_variability, situation_variability)
    zs = _fractions(time_fraction, location_fraction, situation_fraction)
    detail = _itm_area_detail(f, d, h_tx, h_rx, dh, ns, eps, sigma, pol, site_tx, site_rx)
    fs, aref, he0, he1 = detail[0], detail[1], detail[6], detail[7]
    loss = fs + _itm_variability_db(aref, d, f, he0, he1, dh, climate_code, mdvar, *zs)
    median = fs + _itm_variability_db(aref, d, f, he0, he1, dh, climate_code, mdvar, 0.0, 0.0, 0.0)
    sigma_l = 0.0 if mdvar % 20 >= 10 else _itm_location_sigma_db(d, f, dh)
    result = _result(detail, loss, median, sigma_l)
    return _replace_warning(result, _variability_warning(result.warning_code, zs))


def _replace_warning(result: ItmResult, kwx: int) -> ItmResult:
    return result if kwx == result.warning_code else replace(result, warning_code=kwx)


def itm_p2p(elevations_m, spacing_m: float, freq_mhz: float, tx_height_agl_m: float,
            rx_height_agl_m: float, *, surface_refractivity_n=301.0,
            climate="continental_temperate", ground_permittivity=15.0,
            ground_conductivity_s_m=0.005, polarization="vertical", variability_mode="broadcast",
            time_fraction=0.5, location_fraction=0.5, situation_fraction=0.5,
            location_variability=True, situation_variability=True) -> ItmResult:
    """One point-to-point prediction over a terrain profile: ``elevations_m`` (>= 3 finite
    elevations above sea level, transmitter first, at equal ``spacing_m``; path length =
    (len - 1) * spacing_m). ``surface_refractivity_n`` is N_0 (sea level), reduced to N_s
    at the profile's mean elevation as ITM's driver does. Other arguments as in
    :func:`itm_area_loss_db`."""
    z, spacing = _validate_profile(elevations_m, spacing_m)
    f, ns, climate_code, eps, sigma, pol = _common(freq_mhz, surface_refractivity_n, climate,
                                                   ground_permittivity, ground_conductivity_s_m, polarization)
    f = float(f)
    h_tx = float(_finite("tx_height_agl_m", tx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M))
    h_rx = float(_finite("rx_height_agl_m", rx_height_agl_m, HEIGHT_MIN_M, HEIGHT_MAX_M))
    mdvar = _mdvar(variability_mode, location_variability, situation_variability)
    zs = _fractions(time_fraction, location_fraction, situation_fraction)
    detail = _itm_p2p_detail(z, spacing, f, h_tx, h_rx, ns, eps, sigma, pol)
    fs, aref, dist, dh, he0, he1 = detail[0], detail[1], detail[4], detail[5], detail[6], detail[7]
    loss = fs + _itm_variability_db(aref, dist, f, he0, he1, dh, climate_code, mdvar, *zs)
    median = fs + _itm_variability_db(aref, dist, f, he0, he1, dh, climate_code, mdvar, 0.0, 0.0, 0.0)
    sigma_l = 0.0 if mdvar % 20 >= 10 else _itm_location_sigma_db(dist, f, dh)
    result = replace(_result(detail, loss, median, sigma_l), profile_line_of_sight=bool(detail[15]))
    return _replace_warning(result, _variability_warning(result.warning_code, zs))


def itm_p2p_loss_db(elevations_m, spacing_m: float, freq_mhz: float, tx_height_agl_m: float,
                    rx_height_agl_m: float, **kwargs) -> float:
    """Point-to-point basic transmission loss (dB); arguments as in :func:`itm_p2p`."""
    return itm_p2p(elevations_m, spacing_m, freq_mhz, tx_height_agl_m, rx_height_agl_m, **kwargs).basic_loss_db
