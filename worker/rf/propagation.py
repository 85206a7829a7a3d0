"""Per-link propagation of the new generator path (configs with ``propagation``).

For one transmitter and its receivers this gives, per link: the median basic transmission
loss of the model, the loss with the link's location variability, and whether the link is
line of sight. Two layers, as elsewhere in ``worker.rf``: :func:`link_losses` validates
(``ValueError`` naming the argument) and calls the ``@njit`` kernel ``_link_losses``.

Models (``propagation.model``):

* ``"itm"`` - ITM 1.2.2 area mode (:mod:`worker.rf.itm`) at the *ground* (great-circle)
  distance with both antenna heights above ground, delta h, N_s, climate, ground constants,
  polarization and siting. The median is ITM's loss at 50 % time / location / situation;
  the link's loss is ITM's at the location deviate ``z_L = -z`` (broadcast variability,
  time and situation at their medians), i.e. ``median + sigma_L * z`` with ITM's
  ``sigma_L`` (before ITM's soft limit on negative attenuations), ``z ~ N(0, 1)`` drawn by
  the caller from the sample's truth stream.
* ``"free_space"`` - the free-space loss (ITU-R P.525) at the *slant* range (WGS 84) as the
  median, plus ``shadowing_sigma_db * z`` (the legacy log-normal shadowing).

Line of sight, for both models, is ITM's geometric rule in area mode: the ground distance
is shorter than the smooth-earth horizon distance ``d_Ls = sqrt(2 h_e,tx / gamma_e) +
sqrt(2 h_e,rx / gamma_e)`` (effective heights from the structural heights, delta h and
siting; gamma_e the effective earth curvature from N_s). With ITM this is exactly where
ITM's mode is "line of sight".

Antennas (both models, ``_link_antennas``): the transmitter is a handheld (tilted short
dipole, body loss, polarization mismatch against the receivers filled by the channel's
cross-polar discrimination); receivers are omni or directional (3GPP horizontal pattern).
The generator runs all of it, per attempt, in one kernel call: ``_attempt_links``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .geometry import EARTH_RADIUS_M, WGS84_A_M, WGS84_E2
from .itm import (
    CLIMATES,
    HEIGHT_MAX_M,
    HEIGHT_MIN_M,
    MODE_LINE_OF_SIGHT,
    POLARIZATIONS,
    REFRACTIVITY_MAX_N,
    REFRACTIVITY_MIN_N,
    SITING_CRITERIA,
    _itm_area_geometry,
    _itm_area_reference,
    _itm_effective_curvature_per_m,
    _itm_free_space_loss_db,
    _itm_variability_db,
)

MODEL_FREE_SPACE = 0
MODEL_ITM = 1
MODELS = {"free_space": MODEL_FREE_SPACE, "itm": MODEL_ITM}
# ITM variability mode of the per-link draw: broadcast (3), all three variabilities on; the
# time and situation deviates stay 0 (their medians), so only location variability moves.
MDVAR_BROADCAST = 3
# Shortest distance handed to the models (m): both take log10(d).
MIN_DISTANCE_M = 1.0
SPEED_OF_LIGHT_M_S = 299_792_458.0


@dataclass(frozen=True)
class PropagationParams:
    """A ``propagation`` config as kernel arguments (ITM codes)."""

    model: int
    terrain_irregularity_m: float
    surface_refractivity_n: float
    climate: int
    ground_permittivity: float
    ground_conductivity_s_m: float
    polarization: int
    tx_siting: int
    rx_siting: int
    nlos_excess_delay_mean_s: float

    @classmethod
    def from_config(cls, p) -> PropagationParams:
        """From a :class:`worker.config.Propagation`; ``ValueError`` naming the sub-key."""
        def code(name: str, table: dict[str, int]) -> int:
            v = getattr(p, name)
            if v not in table:
                raise ValueError(f"propagation.{name} must be one of {sorted(table)}, got {v!r}")
            return table[v]

        def number(name: str, lo: float, hi: float, lo_open: bool = False) -> float:
            v = float(getattr(p, name))
            if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
                raise ValueError(f"propagation.{name} must be in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")
            return v

        # p.terrain (a terrain set: ITM point-to-point mode) is not a kernel argument: the
        # set itself is (worker.rf.terrain.Dem, given to generate_samples)
        return cls(
            model=code("model", MODELS),
            terrain_irregularity_m=number("terrain_irregularity_m", 0.0, 3000.0),
            surface_refractivity_n=number("surface_refractivity_n", REFRACTIVITY_MIN_N, REFRACTIVITY_MAX_N),
            climate=code("climate", CLIMATES),
            ground_permittivity=number("ground_permittivity", 1.0, 100.0, lo_open=True),
            ground_conductivity_s_m=number("ground_conductivity_s_m", 0.0, 100.0, lo_open=True),
            polarization=code("polarization", POLARIZATIONS),
            tx_siting=code("tx_siting", SITING_CRITERIA),
            rx_siting=code("rx_siting", SITING_CRITERIA),
            nlos_excess_delay_mean_s=number("nlos_excess_delay_mean_s", 0.0, 1e-4),
        )


@njit(cache=True)
def _smooth_earth_horizon_m(tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                            surface_refractivity_n, tx_siting, rx_siting):
    """ITM's d_Ls in area mode: sum of the smooth-earth horizon distances of the two
    effective heights (m). A ground distance below it is line of sight."""
    gme = _itm_effective_curvature_per_m(surface_refractivity_n)
    he0, he1, _dl0, _dl1, _th0, _th1 = _itm_area_geometry(
        tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m, gme, tx_siting, rx_siting)
    return math.sqrt(2.0 * he0 / gme) + math.sqrt(2.0 * he1 / gme)


@njit(cache=True)
def _link_losses(model, freq_mhz, ground_m, slant_m, tx_height_agl_m, rx_height_agl_m,
                 terrain_irregularity_m, surface_refractivity_n, climate, ground_permittivity,
                 ground_conductivity_s_m, polarization, tx_siting, rx_siting, z,
                 shadowing_sigma_db, median_db, loss_db, los, horizon_m):
    """Per link i: median loss, loss at deviate z[i], LOS flag and d_Ls (outputs last).
    Distances are floored at MIN_DISTANCE_M."""
    for i in range(ground_m.shape[0]):
        d_ground = max(ground_m[i], MIN_DISTANCE_M)
        h_rx = rx_height_agl_m[i]
        d_ls = _smooth_earth_horizon_m(tx_height_agl_m, h_rx, terrain_irregularity_m,
                                       surface_refractivity_n, tx_siting, rx_siting)
        horizon_m[i] = d_ls
        los[i] = d_ground < d_ls
        if model == MODEL_ITM:
            fs, aref, mode, _kwx, he0, he1 = _itm_area_reference(
                freq_mhz, d_ground, tx_height_agl_m, h_rx, terrain_irregularity_m,
                surface_refractivity_n, ground_permittivity, ground_conductivity_s_m,
                polarization, tx_siting, rx_siting)
            median_db[i] = fs + _itm_variability_db(aref, d_ground, freq_mhz, he0, he1, terrain_irregularity_m,
                                                    climate, MDVAR_BROADCAST, 0.0, 0.0, 0.0)
            loss_db[i] = fs + _itm_variability_db(aref, d_ground, freq_mhz, he0, he1, terrain_irregularity_m,
                                                  climate, MDVAR_BROADCAST, 0.0, -z[i], 0.0)
            los[i] = mode == MODE_LINE_OF_SIGHT
        else:
            median_db[i] = _itm_free_space_loss_db(max(slant_m[i], MIN_DISTANCE_M), freq_mhz)
            loss_db[i] = median_db[i] + shadowing_sigma_db * z[i]


@dataclass
class LinkLosses:
    """Per-link results (float64 / bool arrays, shape (R,))."""

    median_db: np.ndarray
    loss_db: np.ndarray
    los: np.ndarray
    horizon_m: np.ndarray


def _array(name: str, value, n: int | None, lo: float) -> np.ndarray:
    a = np.ascontiguousarray(value, dtype=np.float64)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        raise ValueError(f"{name} must be a 1-D array{'' if n is None else f' of {n} values'}, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < lo):
        raise ValueError(f"{name} must be finite and >= {lo}")
    return a


def link_losses(params: PropagationParams, freq_mhz: float, ground_m, slant_m, tx_height_agl_m: float,
                rx_height_agl_m, z, shadowing_sigma_db: float = 0.0) -> LinkLosses:
    """Median loss, loss with location variability, LOS and d_Ls for the links from one
    transmitter (``tx_height_agl_m``) to receivers at ground distances ``ground_m`` and
    slant ranges ``slant_m`` (m) with antenna heights ``rx_height_agl_m`` (m); ``z`` are
    the links' standard normal deviates; ``shadowing_sigma_db`` is used by the free-space
    model only. See the module docstring."""
    g = _array("ground_m", ground_m, None, 0.0)
    n = g.shape[0]
    s = _array("slant_m", slant_m, n, 0.0)
    h_rx = _array("rx_height_agl_m", rx_height_agl_m, n, HEIGHT_MIN_M)
    zz = _array("z", z, n, -np.inf)
    if np.any(h_rx > HEIGHT_MAX_M):
        raise ValueError(f"rx_height_agl_m must be <= {HEIGHT_MAX_M}")
    h_tx = float(tx_height_agl_m)
    if not HEIGHT_MIN_M <= h_tx <= HEIGHT_MAX_M:
        raise ValueError(f"tx_height_agl_m must be in [{HEIGHT_MIN_M}, {HEIGHT_MAX_M}], got {tx_height_agl_m!r}")
    f = float(freq_mhz)
    if params.model == MODEL_ITM and not 20.0 <= f <= 20000.0:
        raise ValueError(f"freq_mhz must be in [20, 20000] for ITM, got {freq_mhz!r}")
    if not (f > 0.0 and math.isfinite(f)):
        raise ValueError(f"freq_mhz must be > 0, got {freq_mhz!r}")
    sigma = float(shadowing_sigma_db)
    if not (math.isfinite(sigma) and sigma >= 0.0):
        raise ValueError(f"shadowing_sigma_db must be >= 0, got {shadowing_sigma_db!r}")
    out = LinkLosses(np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_), np.empty(n))
    _link_losses(params.model, f, g, s, h_tx, h_rx, params.terrain_irregularity_m,
                 params.surface_refractivity_n, params.climate, params.ground_permittivity,
                 params.ground_conductivity_s_m, params.polarization, params.tx_siting, params.rx_siting,
                 zz, sigma, out.median_db, out.loss_db, out.los, out.horizon_m)
    return out


# --------------------------------------------------------------------------- one attempt
# The generator's propagation path runs the whole link budget of an attempt in one kernel
# call (an attempt is cheap: most are rejected), from the draws made in Python. The scalar
# geometry below is the same formulas as worker.rf.geometry.haversine_m / ecef_range_m
# (tests compare them).


@njit(cache=True)
def _haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg):
    """Great-circle distance on the sphere of radius EARTH_RADIUS_M (m)."""
    p1 = math.radians(lat1_deg)
    p2 = math.radians(lat2_deg)
    dl = math.radians(lon2_deg - lon1_deg)
    a = math.sin((p2 - p1) / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


@njit(cache=True)
def _ecef_m(lat_deg, lon_deg, height_m):
    """WGS 84 geodetic -> ECEF (m), TR8350.2 eq. 4-14."""
    phi = math.radians(lat_deg)
    lam = math.radians(lon_deg)
    sin_phi = math.sin(phi)
    n = WGS84_A_M / math.sqrt(1.0 - WGS84_E2 * sin_phi * sin_phi)
    return ((n + height_m) * math.cos(phi) * math.cos(lam), (n + height_m) * math.cos(phi) * math.sin(lam),
            (n * (1.0 - WGS84_E2) + height_m) * sin_phi)


# Antennas (issue 11 item 5). A handheld's pattern null is filled by the hand, the body and
# the ground: the tilted-dipole pattern loss is floored here (dB).
TX_PATTERN_FLOOR_DB = -20.0
# 3GPP horizontal sector pattern: A(phi) = -min(12 (phi / phi_3dB)^2, A_m).
SECTOR_PATTERN_COEFF_DB = 12.0


@njit(cache=True)
def _bearing_rad(lat1_deg, lon1_deg, lat2_deg, lon2_deg):
    """Initial great-circle bearing from point 1 to point 2, clockwise from north (rad),
    as worker.rf.geometry.bearing_unit_vectors."""
    p1 = math.radians(lat1_deg)
    p2 = math.radians(lat2_deg)
    dl = math.radians(lon2_deg - lon1_deg)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.atan2(y, x)


@njit(cache=True)
def _wrap_deg(x):
    """Angle in degrees wrapped to [-180, 180)."""
    return (x + 180.0) % 360.0 - 180.0


@njit(cache=True)
def _link_antennas(az_tx_to_rx_rad, az_rx_to_tx_rad, los, tx_gain_dbi, body_loss_db, facing_rad, tilt_rad,
                   tilt_azimuth_rad, xpd_los_db, xpd_nlos_db, rx_vertical, rx_gain_dbi, rx_directional,
                   rx_azimuth_deg, rx_beamwidth_deg, rx_front_to_back_db):
    """One link's (tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db).

    Transmitter: a handheld short dipole of peak gain tx_gain_dbi, tilted from vertical by
    tilt_rad towards azimuth tilt_azimuth_rad, held by a body facing facing_rad. Towards
    the receiver (horizontal direction u at azimuth az) its axis a has a.u = sin(tilt)
    cos(az - tilt_azimuth): pattern 10 log10(1 - (a.u)^2) (floored at
    TX_PATTERN_FLOOR_DB); body loss body_loss_db (1 - cos(az - facing)) / 2 (0 in front,
    body_loss_db through the body). The radiated field is a projected on the plane
    transverse to u: vertical part cos(tilt), horizontal part sin(tilt) sin(az -
    tilt_azimuth); its angle delta from vertical gives the polarization loss against the
    receiver's polarization (vertical if rx_vertical, else horizontal):
    -10 log10(co + cross / XPD), co = cos^2(mismatch), cross = sin^2(mismatch), XPD (linear)
    from xpd_los_db / xpd_nlos_db (depolarization by the channel fills the mismatch).
    Receiver: gain rx_gain_dbi, omni, or directional (3GPP horizontal pattern:
    -min(12 (phi / beamwidth)^2, front_to_back) with phi the angle from rx_azimuth_deg to
    the transmitter)."""
    d = az_tx_to_rx_rad - tilt_azimuth_rad
    s_t = math.sin(tilt_rad)
    au = s_t * math.cos(d)
    transverse = 1.0 - au * au
    pattern_db = max(10.0 * math.log10(max(transverse, 1e-30)), TX_PATTERN_FLOOR_DB)
    body_db = body_loss_db * 0.5 * (1.0 - math.cos(az_tx_to_rx_rad - facing_rad))
    tx_db = tx_gain_dbi + pattern_db - body_db
    # field = a minus its component along u: vertical part cos(tilt), horizontal part
    # sin(tilt) sin(d); |field|^2 = 1 - (a.u)^2. cos^2(delta) = vertical^2 / |field|^2 (an
    # axis pointing at the receiver radiates nothing towards it: taken as vertical).
    v = math.cos(tilt_rad)
    cos2 = min(v * v / transverse, 1.0) if transverse > 0.0 else 1.0
    co = cos2 if rx_vertical else 1.0 - cos2
    xpd_db = xpd_los_db if los else xpd_nlos_db
    pol_db = -10.0 * math.log10(co + (1.0 - co) * 10.0 ** (-xpd_db / 10.0))
    rx_db = rx_gain_dbi
    if rx_directional:
        phi = _wrap_deg(math.degrees(az_rx_to_tx_rad) - rx_azimuth_deg)
        rx_db -= min(SECTOR_PATTERN_COEFF_DB * (phi / rx_beamwidth_deg) ** 2, rx_front_to_back_db)
    return tx_db, rx_db, pol_db


@njit(cache=True)
def _attempt_links(model, freq_mhz, tx_lat, tx_lon, tx_alt_m, tx_height_agl_m, rx_lat, rx_lon, rx_alt_m,
                   rx_height_agl_m, terrain_irregularity_m, surface_refractivity_n, climate,
                   ground_permittivity, ground_conductivity_s_m, polarization, tx_siting, rx_siting,
                   nlos_excess_delay_mean_s, shadowing_sigma_db, rician_k_db, tx_power_dbm,
                   tx_gain_dbi, body_loss_db, facing_rad, tilt_rad, tilt_azimuth_rad, xpd_los_db, xpd_nlos_db,
                   rx_gain_dbi, rx_directional, rx_azimuth_deg, rx_beamwidth_deg, rx_front_to_back_db,
                   z, phase_u, n_re, n_im, excess_unit,
                   ground_m, slant_m, median_db, loss_db, los, horizon_m, excess_s, rx_power_dbm, toa_s,
                   tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db):
    """The link budget of one attempt (outputs last, shape (R,)): ground distance, WGS 84
    slant range (floored at 1 m), median and varied loss, LOS and d_Ls (_link_losses),
    excess delay (0 on LOS links, excess_unit * mean on NLOS ones), antenna gains and
    polarization loss (_link_antennas; the receivers' polarization is the propagation
    polarization), received power tx_power + tx gain + rx gain - polarization loss - loss +
    fading (Rician K for LOS, Rayleigh for NLOS, as link.fading_power) and
    TOA = slant / c + excess."""
    n = rx_lat.shape[0]
    x0, y0, z0 = _ecef_m(tx_lat, tx_lon, tx_alt_m)
    for i in range(n):
        ground_m[i] = _haversine_m(tx_lat, tx_lon, rx_lat[i], rx_lon[i])
        x1, y1, z1 = _ecef_m(rx_lat[i], rx_lon[i], rx_alt_m[i])
        slant_m[i] = max(math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2 + (z1 - z0) ** 2), MIN_DISTANCE_M)
    _link_losses(model, freq_mhz, ground_m, slant_m, tx_height_agl_m, rx_height_agl_m, terrain_irregularity_m,
                 surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m, polarization,
                 tx_siting, rx_siting, z, shadowing_sigma_db, median_db, loss_db, los, horizon_m)
    _attempt_budget(tx_lat, tx_lon, rx_lat, rx_lon, polarization, nlos_excess_delay_mean_s, rician_k_db,
                    tx_power_dbm, tx_gain_dbi, body_loss_db, facing_rad, tilt_rad, tilt_azimuth_rad, xpd_los_db,
                    xpd_nlos_db, rx_gain_dbi, rx_directional, rx_azimuth_deg, rx_beamwidth_deg,
                    rx_front_to_back_db, phase_u, n_re, n_im, excess_unit, slant_m, loss_db, los, excess_s,
                    rx_power_dbm, toa_s, tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db)


@njit(cache=True)
def _attempt_budget(tx_lat, tx_lon, rx_lat, rx_lon, polarization, nlos_excess_delay_mean_s, rician_k_db,
                    tx_power_dbm, tx_gain_dbi, body_loss_db, facing_rad, tilt_rad, tilt_azimuth_rad, xpd_los_db,
                    xpd_nlos_db, rx_gain_dbi, rx_directional, rx_azimuth_deg, rx_beamwidth_deg,
                    rx_front_to_back_db, phase_u, n_re, n_im, excess_unit, slant_m, loss_db, los, excess_s,
                    rx_power_dbm, toa_s, tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db):
    """The link budget of an attempt once its slant ranges, losses and LOS flags are known
    (shared by _attempt_links and the terrain kernel worker.rf.terrain._attempt_links_terrain;
    outputs last, shape (R,)): excess delay (0 on LOS links, excess_unit * mean on NLOS
    ones), antenna gains and polarization loss (_link_antennas; the receivers'
    polarization is the propagation polarization), received power tx_power + tx gain + rx
    gain - polarization loss - loss + fading (Rician K for LOS, Rayleigh for NLOS, as
    link.fading_power) and TOA = slant / c + excess."""
    n = rx_lat.shape[0]
    k = 10.0 ** (rician_k_db / 10.0)
    spec = math.sqrt(k / (k + 1.0))
    diff = math.sqrt(1.0 / (k + 1.0))
    half = math.sqrt(0.5)
    for i in range(n):
        re = n_re[i] * half
        im = n_im[i] * half
        if los[i]:
            ang = 2.0 * math.pi * phase_u[i]
            re = spec * math.cos(ang) + re * diff
            im = spec * math.sin(ang) + im * diff
            excess_s[i] = 0.0
        else:
            excess_s[i] = excess_unit[i] * nlos_excess_delay_mean_s
        az_out = _bearing_rad(tx_lat, tx_lon, rx_lat[i], rx_lon[i])
        az_back = _bearing_rad(rx_lat[i], rx_lon[i], tx_lat, tx_lon)
        tx_db, rx_db, pol_db = _link_antennas(
            az_out, az_back, los[i], tx_gain_dbi, body_loss_db, facing_rad, tilt_rad, tilt_azimuth_rad,
            xpd_los_db, xpd_nlos_db, polarization != 0, rx_gain_dbi[i], rx_directional[i], rx_azimuth_deg[i],
            rx_beamwidth_deg[i], rx_front_to_back_db[i])
        tx_antenna_gain_db[i] = tx_db
        rx_antenna_gain_db[i] = rx_db
        polarization_loss_db[i] = pol_db
        rx_power_dbm[i] = (tx_power_dbm + tx_db + rx_db - pol_db - loss_db[i]
                           + 10.0 * math.log10(re * re + im * im))
        toa_s[i] = slant_m[i] / SPEED_OF_LIGHT_M_S + excess_s[i]
