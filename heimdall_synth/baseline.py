"""Classical TDOA multilateration: the accuracy a localization model must beat.

Each sample's transmitter position is solved from its **estimated** features only
(``tdoa_s``, ``signal_present``, optionally ``tdoa_std_s``, and the receivers' positions),
never from the truth columns; the truth is used afterwards, to score.

Model. Receiver i records a time of arrival t_i = |P - R_i| / c + t0 + e_i with an unknown
emission time t0 and independent errors e_i (σ_i). The stored ``tdoa_s[i] = t_i - t_ref``
(ref = the receiver with tdoa 0, the strongest) removes t0; the TDOA errors are then
correlated through the reference: Cov = diag(σ_i²) + σ_ref² 11ᵀ. The solver whitens with
that covariance (Cholesky), so its estimate is the maximum-likelihood one and its error
follows the TOA-with-unknown-offset geometry (HDOP, below) that the stored ``gdop`` comes
from. Without ``tdoa_std_s`` all σ_i are equal (the solution does not depend on their value).

Geometry. Positions are on the WGS 84 ellipsoid through ECEF (worker.rf.geometry); the
transmitter is solved in latitude and longitude at a fixed ellipsoidal height (the
receivers' median height minus ``TX_BELOW_RX_M``): with ground receivers the height is
barely observable, and a height wrong by 500 m moves a 50 km range by ~2.5 m.

Steps, vectorized over samples (no Python loop per sample):
1. a closed-form start in the tangent plane at the present receivers' centroid: the
   spherical-intersection equations 2 s_i·x + 2 d_i R_ref = |s_i|² - d_i² (s_i = receiver
   i relative to the reference, d_i = c·tdoa_i, R_ref = range to the reference) are linear
   in (x, y, R_ref): least squares with four or more receivers; with three the two
   equations give x(R_ref) and |x|² = R_ref² a quadratic (Chan's method; of its two roots
   the one nearer the receivers);
2. Levenberg-Marquardt on the ellipsoid (Gauss-Newton steps in local east/north metres,
   damping per sample) from that start and from the centroid; the lower whitened cost wins.
A sample with fewer than three present receivers cannot be solved (two unknowns need two
TDOAs); one whose solution does not converge or lands farther than ``MAX_RANGE_FACTOR``
network radii from the centroid is counted as diverged. Neither is dropped silently: the
result says why for each sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.rf.geometry import WGS84_A_M, WGS84_E2, geodetic_to_ecef_m

SPEED_OF_LIGHT_M_S = 299_792_458.0
# Recorded with every stored run (heimdall.baseline_runs.solver_version): change it when a
# change of the solver can change its figures.
SOLVER_VERSION = "tdoa-closed-form-lm/1"
TX_BELOW_RX_M = 0.0          # transmitter height assumed = receivers' median height - this
MAX_RANGE_FACTOR = 5.0       # beyond 5 network radii (+ 50 km) from the centroid: diverged
LM_ITERATIONS = 60
LM_TOL_M = 1e-3              # a step below 1 mm ends a sample's iterations

# Why a sample has no solution (codes in SolveResult.status)
SOLVED, TOO_FEW_RECEIVERS, DIVERGED = 0, 1, 2
STATUS_NAMES = {SOLVED: "solved", TOO_FEW_RECEIVERS: "too_few_receivers", DIVERGED: "diverged"}


@dataclass
class SolveResult:
    """Per sample (arrays of shape (S,)): the estimate (degrees; NaN unless solved), the
    whitened cost at the solution, the number of present receivers used and the status
    (SOLVED / TOO_FEW_RECEIVERS / DIVERGED)."""

    lat_deg: np.ndarray
    lon_deg: np.ndarray
    cost: np.ndarray
    receivers_used: np.ndarray
    status: np.ndarray


def _unit_east_north(lat_rad: np.ndarray, lon_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECEF unit vectors pointing east and north at (lat, lon): shape (..., 3)."""
    sl, cl, so, co = np.sin(lat_rad), np.cos(lat_rad), np.sin(lon_rad), np.cos(lon_rad)
    east = np.stack([-so, co, np.zeros_like(so)], axis=-1)
    north = np.stack([-sl * co, -sl * so, cl], axis=-1)
    return east, north


def _radii_m(lat_rad: np.ndarray, h_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Meridian (M + h) and parallel ((N + h) cos lat) radii: metres per radian of latitude
    and of longitude at (lat, h) on WGS 84."""
    s2 = np.sin(lat_rad) ** 2
    w = np.sqrt(1.0 - WGS84_E2 * s2)
    n = WGS84_A_M / w
    m = WGS84_A_M * (1.0 - WGS84_E2) / w ** 3
    return m + h_m, (n + h_m) * np.cos(lat_rad)


def _ecef(lat_rad, lon_rad, h_m) -> np.ndarray:
    return np.stack(geodetic_to_ecef_m(np.degrees(lat_rad), np.degrees(lon_rad), h_m), axis=-1)


def tdoa_covariance(present: np.ndarray, ref: np.ndarray, tdoa_std_s: np.ndarray | None) -> np.ndarray:
    """Covariance (s², up to a common factor) of each sample's TDOA vector, shape (S, R, R),
    from independent TOA errors: diag(σ_i²) + σ_ref² 11ᵀ over the present non-reference
    receivers; identity rows for the others (their residuals are zero: no contribution)."""
    s, r = present.shape
    use = present.copy()
    use[np.arange(s), ref] = False
    if tdoa_std_s is None:
        sig_toa = np.ones((s, r))
    else:
        # a TDOA's σ covers two TOAs: split evenly; the reference's σ is their median
        sig_toa = np.where(np.isfinite(tdoa_std_s) & (tdoa_std_s > 0), tdoa_std_s, np.nan) / math.sqrt(2.0)
        sig_toa = np.where(use, sig_toa, np.nan)
        with warnings.catch_warnings():        # a sample without any σ: All-NaN slice, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(np.isfinite(sig_toa), sig_toa, np.nan), axis=1)
        med = np.where(np.isfinite(med), med, 1.0)
        sig_toa = np.where(np.isfinite(sig_toa), sig_toa, med[:, None])
        sig_toa[np.arange(s), ref] = med
        sig_toa = sig_toa / med[:, None]          # scale-free: only ratios matter
    sig_ref = sig_toa[np.arange(s), ref]
    cov = np.where((use[:, :, None] & use[:, None, :]), sig_ref[:, None, None] ** 2, 0.0)
    idx = np.arange(r)
    cov[:, idx, idx] = np.where(use, sig_toa ** 2 + sig_ref[:, None] ** 2, 1.0)
    return cov


def _closed_form_start(rx_en_m: np.ndarray, d_m: np.ndarray, use: np.ndarray, ref: np.ndarray,
                       weight: np.ndarray) -> np.ndarray:
    """Tangent-plane start (S, 2) east/north metres from the spherical-intersection
    equations (module docstring); NaN where there is no start."""
    s = rx_en_m.shape[0]
    ref_xy = rx_en_m[np.arange(s), ref]                     # (S, 2)
    si = rx_en_m - ref_xy[:, None, :]                        # (S, R, 2)
    a = np.concatenate([2.0 * si, 2.0 * d_m[:, :, None]], axis=2)          # (S, R, 3)
    b = np.sum(si * si, axis=2) - d_m ** 2                               # (S, R)
    w = np.where(use, weight, 0.0)
    a = np.where(use[:, :, None], a, 0.0)
    b = np.where(use, b, 0.0)
    k = use.sum(axis=1)
    out = np.full((s, 2), np.nan)
    # four or more receivers (three or more equations): weighted least squares in (x, y, R)
    many = k >= 3
    if many.any():
        aw = a[many] * w[many][:, :, None]
        ata = np.einsum("sri,srj->sij", aw, a[many])
        atb = np.einsum("sri,sr->si", aw, b[many])
        ok = np.abs(np.linalg.det(ata)) > 1e-300
        sol = np.full((many.sum(), 3), np.nan)
        if ok.any():
            sol[ok] = np.linalg.solve(ata[ok], atb[ok][:, :, None])[:, :, 0]
        out[many] = sol[:, :2] + ref_xy[many]
    # three receivers: x = x0 + x1 R from the two equations, then |x|^2 = R^2 (Chan)
    two = k == 2
    if two.any():
        rows = np.argsort(~use[two], axis=1, kind="stable")[:, :2]          # the two equations
        at = np.take_along_axis(a[two], rows[:, :, None], axis=1)          # (T, 2, 3)
        bt = np.take_along_axis(b[two], rows, axis=1)                      # (T, 2)
        m2 = at[:, :, :2]
        ok = np.abs(np.linalg.det(m2)) > 1e-6
        res = np.full((two.sum(), 2), np.nan)
        if ok.any():
            inv = np.linalg.inv(m2[ok])
            x0 = np.einsum("tij,tj->ti", inv, bt[ok])
            x1 = -np.einsum("tij,tj->ti", inv, at[ok][:, :, 2])
            qa = np.sum(x1 * x1, axis=1) - 1.0
            qb = 2.0 * np.sum(x0 * x1, axis=1)
            qc = np.sum(x0 * x0, axis=1)
            disc = np.maximum(qb * qb - 4.0 * qa * qc, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r1 = (-qb + np.sqrt(disc)) / (2.0 * qa)
                r2 = (-qb - np.sqrt(disc)) / (2.0 * qa)
            cands = []
            for root in (r1, r2):
                xy = x0 + x1 * root[:, None]
                bad = ~np.isfinite(root) | (root < 0.0)
                xy[bad] = np.nan
                cands.append(xy + ref_xy[two][ok])
            # of two valid roots, the one nearer the receivers' centroid (the origin)
            d1 = np.where(np.isfinite(cands[0][:, 0]), np.hypot(*cands[0].T), np.inf)
            d2 = np.where(np.isfinite(cands[1][:, 0]), np.hypot(*cands[1].T), np.inf)
            res[ok] = np.where((d1 <= d2)[:, None], cands[0], cands[1])
        out[two] = res
    return out


def _lm(lat0, lon0, h_m, rx_ecef, tdoa_s, use, ref, chol_inv):
    """Levenberg-Marquardt on the ellipsoid from (lat0, lon0) radians, all samples at once.
    Returns (lat, lon, whitened cost, converged)."""
    s = lat0.shape[0]
    lat, lon = lat0.copy(), lon0.copy()
    lam = np.full(s, 1e-3)
    active = np.isfinite(lat) & np.isfinite(lon)
    lat = np.where(active, lat, 0.0)
    lon = np.where(active, lon, 0.0)
    converged = np.zeros(s, bool)
    rows = np.arange(s)

    def residual(la, lo):
        p = _ecef(la, lo, h_m)                                         # (S, 3)
        diff = p[:, None, :] - rx_ecef                                 # (S, R, 3)
        rng = np.sqrt(np.sum(diff * diff, axis=2))                     # (S, R)
        u = diff / rng[:, :, None]
        f = (rng - rng[rows, ref][:, None]) / SPEED_OF_LIGHT_M_S - np.where(use, tdoa_s, 0.0)
        f = np.where(use, f, 0.0)
        east, north = _unit_east_north(la, lo)
        du = u - u[rows, ref][:, None, :]
        j = np.stack([np.einsum("srk,sk->sr", du, east), np.einsum("srk,sk->sr", du, north)], axis=2)
        j = np.where(use[:, :, None], j / SPEED_OF_LIGHT_M_S, 0.0)    # s per metre
        fw = np.einsum("sij,sj->si", chol_inv, f)
        jw = np.einsum("sij,sjk->sik", chol_inv, j)
        return fw, jw

    fw, jw = residual(lat, lon)
    cost = np.sum(fw * fw, axis=1)
    for _ in range(LM_ITERATIONS):
        if not (active & ~converged).any():
            break
        jtj = np.einsum("sri,srj->sij", jw, jw)
        g = np.einsum("sri,sr->si", jw, fw)
        damp = jtj.copy()
        damp[:, [0, 1], [0, 1]] *= (1.0 + lam[:, None])
        damp[:, [0, 1], [0, 1]] += 1e-30
        step = -np.linalg.solve(damp, g[:, :, None])[:, :, 0]          # (S, 2) east, north m
        step = np.where((active & ~converged)[:, None] & np.isfinite(step), step, 0.0)
        m_r, p_r = _radii_m(lat, h_m)
        lat_n = lat + step[:, 1] / m_r
        lon_n = lon + step[:, 0] / p_r
        fw_n, jw_n = residual(lat_n, lon_n)
        cost_n = np.sum(fw_n * fw_n, axis=1)
        better = (cost_n <= cost) & active & ~converged
        lat, lon = np.where(better, lat_n, lat), np.where(better, lon_n, lon)
        fw = np.where(better[:, None], fw_n, fw)
        jw = np.where(better[:, None, None], jw_n, jw)
        small = np.hypot(step[:, 0], step[:, 1]) < LM_TOL_M
        converged |= active & ((better & small) | (cost <= 1e-30))
        cost = np.where(better, cost_n, cost)
        lam = np.where(better, lam / 3.0, lam * 4.0)
        converged |= active & (lam > 1e12)        # no step lowers the cost: a minimum
    return lat, lon, cost, converged & active


def solve_tdoa(rx_lat_deg: np.ndarray, rx_lon_deg: np.ndarray, rx_alt_m: np.ndarray, tdoa_s: np.ndarray,
               signal_present: np.ndarray, tdoa_std_s: np.ndarray | None = None,
               tx_height_m: float | np.ndarray | None = None) -> SolveResult:
    """Transmitter positions from TDOAs, for S samples of up to R receivers.

    Parameters (arrays of shape (S, R); receivers missing from a sample may be NaN):
      rx_lat_deg, rx_lon_deg (degrees), rx_alt_m (m, ellipsoidal): receiver positions;
      tdoa_s (s): TDOA relative to the sample's reference receiver (the present receiver
      with tdoa 0; NaN for receivers without a signal or an untrusted estimate);
      signal_present (bool): receivers that heard the transmitter;
      tdoa_std_s (s, optional): each TDOA's standard deviation, for weighting;
      tx_height_m (m, scalar or (S,), optional): the transmitter's assumed ellipsoidal
      height; default the present receivers' median height minus TX_BELOW_RX_M.
    Returns a SolveResult. Raises ValueError on inconsistent shapes.
    """
    lat_r = np.asarray(rx_lat_deg, dtype=np.float64)
    shape = lat_r.shape
    arrays = [np.asarray(x, dtype=np.float64) for x in (rx_lon_deg, rx_alt_m, tdoa_s)]
    present = np.asarray(signal_present, dtype=bool)
    if lat_r.ndim != 2 or any(a.shape != shape for a in arrays) or present.shape != shape:
        raise ValueError(f"receiver arrays must all have shape (samples, receivers), got "
                         f"{[np.shape(x) for x in (rx_lat_deg, rx_lon_deg, rx_alt_m, tdoa_s, signal_present)]}")
    lon_r, alt_r, tdoa = arrays
    std = None
    if tdoa_std_s is not None:
        std = np.asarray(tdoa_std_s, dtype=np.float64)
        if std.shape != shape:
            raise ValueError(f"tdoa_std_s must have shape {shape}, got {std.shape}")
    s, r = shape
    ok_rx = present & np.isfinite(tdoa) & np.isfinite(lat_r) & np.isfinite(lon_r) & np.isfinite(alt_r)
    # reference: the present receiver whose TDOA is exactly 0 (the estimator's reference)
    is_ref = ok_rx & (tdoa == 0.0)
    has_ref = is_ref.any(axis=1)
    ref = np.argmax(is_ref, axis=1)
    use = ok_rx.copy()
    use[np.arange(s), ref] = False
    k = np.where(has_ref, use.sum(axis=1), 0)
    solvable = k >= 2
    use &= solvable[:, None]

    lat_rad, lon_rad = np.radians(np.nan_to_num(lat_r)), np.radians(np.nan_to_num(lon_r))
    rx_ecef = _ecef(lat_rad, lon_rad, np.nan_to_num(alt_r))                     # (S, R, 3)
    w_rx = np.where(ok_rx & solvable[:, None], 1.0, 0.0)
    cnt = np.maximum(w_rx.sum(axis=1), 1.0)
    c_ecef = np.einsum("sr,srk->sk", w_rx, rx_ecef) / cnt[:, None]
    # centroid latitude/longitude (of the ECEF mean: fine for a regional network)
    c_lon = np.arctan2(c_ecef[:, 1], c_ecef[:, 0])
    c_lat = np.arctan2(c_ecef[:, 2], np.hypot(c_ecef[:, 0], c_ecef[:, 1]) * (1.0 - WGS84_E2))
    alt_masked = np.where(ok_rx & solvable[:, None], alt_r, np.nan)
    if tx_height_m is None:
        h_tx = np.where(solvable, np.nan_to_num(np.nanmedian(np.where(solvable[:, None], alt_masked, 0.0), axis=1)),
                        0.0) - TX_BELOW_RX_M
    else:
        h_tx = np.broadcast_to(np.asarray(tx_height_m, dtype=np.float64), (s,)).copy()
    east, north = _unit_east_north(c_lat, c_lon)
    rel = rx_ecef - c_ecef[:, None, :]
    rx_en = np.stack([np.einsum("srk,sk->sr", rel, east), np.einsum("srk,sk->sr", rel, north)], axis=2)
    radius_m = np.max(np.where(ok_rx, np.hypot(rx_en[:, :, 0], rx_en[:, :, 1]), 0.0), axis=1)

    cov = tdoa_covariance(ok_rx & solvable[:, None], ref, std)
    chol = np.linalg.cholesky(cov)
    chol_inv = np.linalg.inv(chol)
    weight = 1.0 / np.diagonal(cov, axis1=1, axis2=2)

    d_m = np.where(use, tdoa, 0.0) * SPEED_OF_LIGHT_M_S
    start_en = _closed_form_start(rx_en, d_m, use, ref, weight)
    m_r, p_r = _radii_m(c_lat, h_tx)
    starts = [(c_lat + start_en[:, 1] / m_r, c_lon + start_en[:, 0] / p_r), (c_lat, c_lon)]
    best = None
    for la0, lo0 in starts:
        la0 = np.where(solvable, la0, np.nan)
        lo0 = np.where(solvable, lo0, np.nan)
        la, lo, cost, conv = _lm(la0, lo0, h_tx, rx_ecef, np.nan_to_num(tdoa), use, ref, chol_inv)
        cost = np.where(conv, cost, np.inf)
        if best is None:
            best = (la, lo, cost, conv)
        else:
            take = cost < best[2]
            best = tuple(np.where(take, new, old) for new, old in zip((la, lo, cost, conv), best, strict=True))
    la, lo, cost, conv = best
    # how far from the centroid the solution is (tangent-plane metres)
    rel_sol = _ecef(la, lo, h_tx) - c_ecef
    dist = np.hypot(np.einsum("sk,sk->s", rel_sol, east), np.einsum("sk,sk->s", rel_sol, north))
    good = solvable & conv & np.isfinite(cost) & (dist <= MAX_RANGE_FACTOR * radius_m + 50_000.0)
    status = np.where(~solvable, TOO_FEW_RECEIVERS, np.where(good, SOLVED, DIVERGED)).astype(np.int8)
    return SolveResult(lat_deg=np.where(good, np.degrees(la), np.nan), lon_deg=np.where(good, np.degrees(lo), np.nan),
                       cost=np.where(good, cost, np.nan), receivers_used=np.where(solvable, k + 1, k).astype(np.int16),
                       status=status)


def horizontal_error_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg) -> np.ndarray:
    """Horizontal distance (m) between two positions: the ECEF chord at height 0 (equal
    to the geodesic within 1 mm per 100 km at these distances)."""
    a = np.stack(geodetic_to_ecef_m(lat1_deg, lon1_deg, 0.0), axis=-1)
    b = np.stack(geodetic_to_ecef_m(lat2_deg, lon2_deg, 0.0), axis=-1)
    return np.sqrt(np.sum((a - b) ** 2, axis=-1))


def hdop(tx_lat_deg: float, tx_lon_deg: float, tx_h_m: float, rx_lat_deg: Sequence[float],
         rx_lon_deg: Sequence[float], rx_alt_m: Sequence[float]) -> float:
    """Horizontal dilution of precision of a TOA fix with unknown emission time at the
    transmitter's height: sqrt of the east and north diagonal of (HᵀH)⁻¹, H rows
    [u_east, u_north, 1] from the 3-D line-of-sight vectors. Horizontal RMSE = HDOP·c·σ for
    independent TOA errors σ (≤ the stored ``gdop``, which includes the time term)."""
    p = np.stack(geodetic_to_ecef_m(tx_lat_deg, tx_lon_deg, tx_h_m))
    r = np.stack(geodetic_to_ecef_m(np.asarray(rx_lat_deg), np.asarray(rx_lon_deg), np.asarray(rx_alt_m)), axis=-1)
    u = (p - r) / np.linalg.norm(p - r, axis=1)[:, None]
    east, north = _unit_east_north(np.radians(tx_lat_deg), np.radians(tx_lon_deg))
    h = np.stack([u @ east, u @ north, np.ones(len(u))], axis=1)
    q = np.linalg.inv(h.T @ h)
    return float(math.sqrt(q[0, 0] + q[1, 1]))


def summarize(error_m: np.ndarray, status: np.ndarray, gdop: np.ndarray, receivers: np.ndarray) -> dict:
    """Figures of a run: fraction solved, counts per status, CEP50 / CEP90 / RMSE (m) of
    the solved samples overall, by GDOP bin and by number of receivers used."""
    error_m, status = np.asarray(error_m, float), np.asarray(status)
    gdop, receivers = np.asarray(gdop, float), np.asarray(receivers)
    solved = status == SOLVED

    def stats(mask: np.ndarray) -> dict:
        e = error_m[mask & solved]
        if e.size == 0:
            return {"samples": int(mask.sum()), "solved": 0, "cep50_m": None, "cep90_m": None, "rmse_m": None}
        return {"samples": int(mask.sum()), "solved": int(e.size), "cep50_m": float(np.percentile(e, 50)),
                "cep90_m": float(np.percentile(e, 90)), "rmse_m": float(np.sqrt(np.mean(e * e)))}

    out = {"samples": int(status.size), "fraction_solved": float(solved.mean()) if status.size else 0.0,
           "status": {name: int((status == code).sum()) for code, name in STATUS_NAMES.items()},
           "overall": stats(np.ones(status.size, bool))}
    edges = GDOP_BINS

    def in_bin(lo: float, hi: float) -> np.ndarray:
        # the last bin holds an infinite GDOP too (the stored gdop of a sample whose
        # estimated detections leave fewer than three receivers)
        return (gdop >= lo) & ((gdop < hi) | (hi == math.inf))
    out["by_gdop"] = [{"gdop_min": lo, "gdop_max": hi if math.isfinite(hi) else None, **stats(in_bin(lo, hi))}
                      for lo, hi in zip(edges[:-1], edges[1:], strict=True) if in_bin(lo, hi).any()]
    out["by_receivers"] = [{"receivers": int(k), **stats(receivers == k)} for k in np.unique(receivers)]
    return out


GDOP_BINS = (0.0, 1.5, 2.0, 3.0, 5.0, 10.0, math.inf)
