"""Attempts of the propagation path run inside one Numba kernel (issue 11 item 9).

Most attempts of a sample are rejected (~11 per accepted one at the default config, ~23
over a terrain set), and in Python each cost ~100 us: building the truth stream (numpy
SeedSequence), the transmitter placement and the draws, one kernel call for the link
budget, the acceptance check. :func:`_attempt_block` does all of it for a block of
attempts without leaving Numba and returns the first accepted attempt; the generator then
re-draws only that attempt with the reference code (``generate.draw_truth``), so the
Truth of a sample still comes from the Python path.

Bit-identity with the Python path (tests/unit/test_fast_attempts.py compares verdicts):

* the truth stream of attempt ``k`` is seeded by :func:`worker.rf.fastrng.stream_state`,
  numpy's SeedSequence / SFC64 re-implemented bit for bit;
* the draws are those of ``geometry.place_transmitter`` with the fixed layout's box (one
  uniform for inside / outside, then two uniforms, or blocks of 64 + 64 uniforms over
  the expanded box until one falls outside the box) and of
  ``generate._draw_truth_propagation`` (``5 + R`` uniforms, ``3 R`` standard normals,
  ``R`` standard exponentials, one more uniform with ``tx_power_fluctuation_db``), with
  every bound computed in Python exactly as numpy computes it (:func:`attempt_params`);
* the link budget is the same kernel (``propagation._attempt_links``, or
  ``terrain._attempt_links_terrain`` with its early rejection), the verdict the same
  rule as ``generate.check_truth`` (``min_receivers`` links with SNR >= ``min_snr_db``,
  then ``geometry._gdop_kernel`` <= ``max_gdop``; a NaN GDOP rejects).

Only fixed receiver layouts with ``propagation`` take this path (random / hexagonal
layouts draw their receivers first, and the legacy path keeps generator 1.0.0's code).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, typed

from . import fastrng
from .geometry import M_PER_DEG, _gdop_kernel
from .propagation import _attempt_links
from .terrain import _attempt_links_terrain

# Float parameters of a config, in the order of the kernel's ``fp`` array.
FLOAT_PARAMS = (
    "lat_lo", "lat_hi", "lon_lo", "lon_hi", "lat_range", "lon_range", "inside_ratio", "outside",
    "out_lat_lo", "out_lat_range", "out_lon_lo", "out_lon_range",
    "tx_alt_min_m", "tx_alt_max_m", "tx_h_min_m", "tx_h_max_m", "tilt_max_rad",
    "frequency_mhz", "terrain_irregularity_m", "surface_refractivity_n", "ground_permittivity",
    "ground_conductivity_s_m", "nlos_excess_delay_mean_s", "shadowing_sigma_db", "rician_k_db",
    "tx_power_dbm", "tx_power_fluctuation_db", "tx_antenna_gain_dbi", "body_loss_db", "xpd_los_db",
    "xpd_nlos_db", "min_snr_db", "max_gdop",
)
# Integer parameters, in the order of the kernel's ``ip`` array.
INT_PARAMS = ("model", "climate", "polarization", "tx_siting", "rx_siting", "min_receivers")
# counts[REASON_FIRST]: the first rejection reason seen (0 none yet), as the Python loop's
# dict keeps its keys in the order they first occur
COUNT_SNR, COUNT_GDOP, REASON_FIRST = 0, 1, 2
REASON_SNR, REASON_GDOP = 1, 2
# place_transmitter draws its outside candidates in blocks of this many
OUTSIDE_BLOCK = 64


class AttemptParams:
    """A config's arguments of :func:`_attempt_block` (see :func:`attempt_params`)."""

    __slots__ = ("fp", "ip", "rx_lat", "rx_lon", "rx_alt", "rx_h", "ant", "floor")

    def __init__(self, fp, ip, rx_lat, rx_lon, rx_alt, rx_h, ant, floor):
        self.fp, self.ip = fp, ip
        self.rx_lat, self.rx_lon, self.rx_alt, self.rx_h, self.ant, self.floor = rx_lat, rx_lon, rx_alt, rx_h, ant, floor


def applies(cfg) -> bool:
    """Whether a config's attempts can run in :func:`_attempt_block`: the propagation path
    with a fixed receiver layout."""
    return cfg.propagation is not None and cfg.receivers.mode == "fixed" and len(cfg.receivers.stations) > 0


# Kernel arguments per config (a config is frozen and hashable), at most _PARAMS_MAX of them.
_PARAMS: dict = {}
_PARAMS_MAX = 32


def attempt_params(cfg, pc) -> AttemptParams:
    """The kernel arguments of a config (:func:`applies`), every bound computed as
    ``geometry.place_transmitter`` / numpy's ``uniform`` compute it in Python. ``pc`` is
    the config's ``generate._prepare(cfg)`` (passed in: this module never imports the
    generator, which imports it)."""
    ap = _PARAMS.get(cfg)
    if ap is None:
        if len(_PARAMS) >= _PARAMS_MAX:
            _PARAMS.clear()
        ap = _PARAMS[cfg] = _attempt_params(cfg, pc)
    return ap


def _attempt_params(cfg, pc) -> AttemptParams:
    lat_lo, lat_hi, lon_lo, lon_hi = pc.fixed_box
    margin = cfg.outside_margin_km
    # geometry.place_transmitter's expanded box (same expressions)
    dlat = margin * 1000.0 / M_PER_DEG
    dlon = dlat / max(math.cos(math.radians(0.5 * (lat_lo + lat_hi))), 1e-6)
    o_lat_lo, o_lat_hi = lat_lo - dlat, lat_hi + dlat
    o_lon_lo, o_lon_hi = lon_lo - dlon, lon_hi + dlon
    prop, ta = pc.prop, cfg.tx_antenna
    fluct = cfg.tx_power_fluctuation_db
    v = {
        "lat_lo": lat_lo, "lat_hi": lat_hi, "lon_lo": lon_lo, "lon_hi": lon_hi,
        # numpy's uniform(low, high): low + (high - low) * next_double
        "lat_range": lat_hi - lat_lo, "lon_range": lon_hi - lon_lo,
        "inside_ratio": cfg.inside_ratio, "outside": 1.0 if margin > 0.0 else 0.0,
        "out_lat_lo": o_lat_lo, "out_lat_range": o_lat_hi - o_lat_lo,
        "out_lon_lo": o_lon_lo, "out_lon_range": o_lon_hi - o_lon_lo,
        "tx_alt_min_m": cfg.tx_alt_min_m, "tx_alt_max_m": cfg.tx_alt_max_m,
        "tx_h_min_m": cfg.tx_height_agl_min_m, "tx_h_max_m": cfg.tx_height_agl_max_m,
        "tilt_max_rad": math.radians(ta.tilt_max_deg),
        "frequency_mhz": cfg.frequency_mhz, "terrain_irregularity_m": prop.terrain_irregularity_m,
        "surface_refractivity_n": prop.surface_refractivity_n, "ground_permittivity": prop.ground_permittivity,
        "ground_conductivity_s_m": prop.ground_conductivity_s_m,
        "nlos_excess_delay_mean_s": prop.nlos_excess_delay_mean_s, "shadowing_sigma_db": cfg.shadowing_sigma_db,
        "rician_k_db": cfg.rician_k_db, "tx_power_dbm": cfg.tx_power_dbm,
        "tx_power_fluctuation_db": math.nan if fluct is None else fluct,
        "tx_antenna_gain_dbi": cfg.tx_antenna_gain_dbi, "body_loss_db": ta.body_loss_db,
        "xpd_los_db": ta.xpd_los_db, "xpd_nlos_db": ta.xpd_nlos_db,
        "min_snr_db": cfg.min_snr_db, "max_gdop": cfg.max_gdop,
    }
    fp = np.array([float(v[k]) for k in FLOAT_PARAMS], dtype=np.float64)
    ip = np.array([prop.model, prop.climate, prop.polarization, prop.tx_siting, prop.rx_siting, cfg.min_receivers],
                  dtype=np.int64)
    n = pc.fixed_lat.shape[0]
    floor = np.empty(n)
    floor[:] = pc.noise_floor_dbm
    for a in (fp, ip, floor):
        a.setflags(write=False)
    return AttemptParams(fp, ip, pc.fixed_lat, pc.fixed_lon, pc.fixed_alt, pc.fixed_height_agl, pc.rx_antennas, floor)


@functools.lru_cache(maxsize=1)
def _no_terrain():
    """Terrain arguments of the kernel for a config without a terrain set (never read)."""
    v = np.zeros(1, dtype=np.uint16)
    v.flags.writeable = False
    tiles = typed.List()
    tiles.append(v)
    return tiles, np.full((1, 1), -1, dtype=np.int32), 1201, 0.0, 0.0, 1.0


def run_block(ap: AttemptParams, terrain, seed_u64: int, sample_idx: int, k_start: int, k_stop: int,
              counts: np.ndarray) -> int:
    """Attempts ``k_start .. k_stop - 1`` of ``sample_idx``: the first accepted one, or -1;
    rejections are added to ``counts`` (int64: snr, gdop, first reason)."""
    if terrain is None:
        tiles, index, n_side, lat_top, lon_west, step = _no_terrain()
    else:
        tiles, index, n_side = terrain.tiles, terrain.tile_index, terrain.samples_per_side
        lat_top, lon_west, step = float(terrain.lat_top), float(terrain.lon_west), terrain.spacing_m
    return _attempt_block(np.uint64(seed_u64), sample_idx, k_start, k_stop, ap.fp, ap.ip, ap.rx_lat, ap.rx_lon,
                          ap.rx_alt, ap.rx_h, *ap.ant, ap.floor, terrain is not None, tiles, index, n_side,
                          lat_top, lon_west, step, counts)


@njit(cache=True)
def _attempt_block(seed_u64, sample_idx, k_start, k_stop, fp, ip, rx_lat, rx_lon, rx_alt, rx_h, rx_gain_dbi,
                   rx_directional, rx_azimuth, rx_beamwidth, rx_front_to_back, floor, use_terrain, tiles,
                   tile_index, n_side, lat_top, lon_west, step_m, counts):
    """Attempts k_start .. k_stop - 1 of sample_idx (module docstring): the first accepted
    attempt, or -1 if all are rejected; each rejection adds 1 to counts[COUNT_SNR] or
    counts[COUNT_GDOP] (and sets counts[REASON_FIRST] if still 0)."""
    (lat_lo, lat_hi, lon_lo, lon_hi, lat_range, lon_range, inside_ratio, outside,
     out_lat_lo, out_lat_range, out_lon_lo, out_lon_range,
     tx_alt_min, tx_alt_max, tx_h_min, tx_h_max, tilt_max_rad,
     freq_mhz, terrain_irregularity_m, surface_refractivity_n, ground_permittivity,
     ground_conductivity_s_m, nlos_excess_delay_mean_s, shadowing_sigma_db, rician_k_db,
     tx_power_dbm, tx_power_fluctuation_db, tx_gain_dbi, body_loss_db, xpd_los_db,
     xpd_nlos_db, min_snr_db, max_gdop) = (
        fp[0], fp[1], fp[2], fp[3], fp[4], fp[5], fp[6], fp[7], fp[8], fp[9], fp[10], fp[11], fp[12], fp[13],
        fp[14], fp[15], fp[16], fp[17], fp[18], fp[19], fp[20], fp[21], fp[22], fp[23], fp[24], fp[25], fp[26],
        fp[27], fp[28], fp[29], fp[30], fp[31], fp[32])
    model, climate, polarization, tx_siting, rx_siting, min_receivers = ip[0], ip[1], ip[2], ip[3], ip[4], ip[5]
    fluctuates = not math.isnan(tx_power_fluctuation_db)
    n = rx_lat.shape[0]
    state = np.empty(4, dtype=np.uint64)
    u = np.empty(5 + n)
    normals = np.empty(3 * n)
    excess_unit = np.empty(n)
    cand_lat = np.empty(OUTSIDE_BLOCK)
    cand_lon = np.empty(OUTSIDE_BLOCK)
    out = np.empty((11, n))
    ground, dist, median, loss, horizon, excess = out[0], out[1], out[2], out[3], out[4], out[5]
    p_rx, toa, tx_gain, rx_gain, pol_loss = out[6], out[7], out[8], out[9], out[10]
    los = np.empty(n, dtype=np.bool_)
    ok = np.empty(n, dtype=np.bool_)
    z, n_re, n_im = normals[:n], normals[n:2 * n], normals[2 * n:]
    phase_u = u[5:]
    for k in range(k_start, k_stop):
        fastrng.stream_state(seed_u64, sample_idx, k, 0, state)        # rng.STREAM_TRUTH
        # geometry.place_transmitter with the layout's box
        inside = fastrng.next_double(state) < inside_ratio
        if inside or outside == 0.0:
            tx_lat = lat_lo + lat_range * fastrng.next_double(state)
            tx_lon = lon_lo + lon_range * fastrng.next_double(state)
        else:
            while True:
                for j in range(OUTSIDE_BLOCK):
                    cand_lat[j] = out_lat_lo + out_lat_range * fastrng.next_double(state)
                for j in range(OUTSIDE_BLOCK):
                    cand_lon[j] = out_lon_lo + out_lon_range * fastrng.next_double(state)
                hit = -1
                for j in range(OUTSIDE_BLOCK):
                    if cand_lat[j] < lat_lo or cand_lat[j] > lat_hi or cand_lon[j] < lon_lo or cand_lon[j] > lon_hi:
                        hit = j
                        break
                if hit >= 0:
                    tx_lat = cand_lat[hit]
                    tx_lon = cand_lon[hit]
                    break
        # generate._draw_truth_propagation's draws, in its order
        fastrng.fill_random(state, u)
        fastrng.fill_standard_normal(state, normals)
        fastrng.fill_standard_exponential(state, excess_unit)
        tx_power = tx_power_dbm
        if fluctuates:
            tx_power = tx_power_dbm + (2.0 * fastrng.next_double(state) - 1.0) * tx_power_fluctuation_db
        tx_alt = tx_alt_min + (tx_alt_max - tx_alt_min) * u[0]
        tx_h = tx_h_min + (tx_h_max - tx_h_min) * u[1]
        facing = 2.0 * math.pi * u[2]
        tilt = tilt_max_rad * u[3]
        tilt_az = 2.0 * math.pi * u[4]
        if use_terrain:
            _attempt_links_terrain(
                tiles, tile_index, n_side, lat_top, lon_west, step_m, False, model, freq_mhz, tx_lat, tx_lon, tx_h,
                rx_lat, rx_lon, rx_alt, rx_h, surface_refractivity_n, climate, ground_permittivity,
                ground_conductivity_s_m, polarization, nlos_excess_delay_mean_s, shadowing_sigma_db, rician_k_db,
                tx_power, tx_gain_dbi, body_loss_db, facing, tilt, tilt_az, xpd_los_db, xpd_nlos_db,
                rx_gain_dbi, rx_directional, rx_azimuth, rx_beamwidth, rx_front_to_back, z, phase_u, n_re, n_im,
                excess_unit, floor, min_snr_db, min_receivers, ground, dist, median, loss, los, horizon, excess,
                p_rx, toa, tx_gain, rx_gain, pol_loss)
        else:
            _attempt_links(
                model, freq_mhz, tx_lat, tx_lon, tx_alt, tx_h, rx_lat, rx_lon, rx_alt, rx_h, terrain_irregularity_m,
                surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m, polarization,
                tx_siting, rx_siting, nlos_excess_delay_mean_s, shadowing_sigma_db, rician_k_db, tx_power,
                tx_gain_dbi, body_loss_db, facing, tilt, tilt_az, xpd_los_db, xpd_nlos_db, rx_gain_dbi,
                rx_directional, rx_azimuth, rx_beamwidth, rx_front_to_back, z, phase_u, n_re, n_im, excess_unit,
                ground, dist, median, loss, los, horizon, excess, p_rx, toa, tx_gain, rx_gain, pol_loss)
        # generate.check_truth
        n_ok = 0
        for i in range(n):
            ok[i] = p_rx[i] - floor[i] >= min_snr_db
            if ok[i]:
                n_ok += 1
        if n_ok < min_receivers:
            reason = REASON_SNR
        elif not _gdop_kernel(tx_lat, tx_lon, rx_lat, rx_lon, ok) <= max_gdop:
            reason = REASON_GDOP
        else:
            return k
        counts[reason - 1] += 1
        if counts[REASON_FIRST] == 0:
            counts[REASON_FIRST] = reason
    return -1
