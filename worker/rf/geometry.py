"""Geometry: great-circle distances, bearings, GDOP, receiver and transmitter placement.

Angles are degrees at the API, radians inside. Distances in metres. The Earth is a sphere
of mean radius ``EARTH_RADIUS_M`` (IUGG mean radius), which is plenty for link budgets and
GDOP over a few hundred kilometres.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EARTH_RADIUS_M = 6_371_008.8
# Metres per degree of latitude on the sphere.
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
# Above this condition number of H^T H the TOA fix is treated as singular (GDOP = inf):
# the float64 inverse would be dominated by rounding and the geometry is useless anyway.
GDOP_MAX_CONDITION = 1e10


def haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg) -> np.ndarray:
    """Great-circle distance in metres (broadcasting over array inputs)."""
    p1 = np.radians(lat1_deg)
    p2 = np.radians(lat2_deg)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2_deg) - np.asarray(lon1_deg))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


# WGS 84 ellipsoid (NIMA TR8350.2, 3rd ed., table 3.1): semi-major axis and flattening.
WGS84_A_M = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)            # first eccentricity squared
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)         # semi-minor axis


def geodetic_to_ecef_m(lat_deg, lon_deg, height_m):
    """Geodetic latitude/longitude (degrees) and ellipsoidal height (m) on WGS 84 to
    Earth-centred, Earth-fixed x, y, z (m), broadcasting over arrays (TR8350.2 eq. 4-14:
    N = a / sqrt(1 - e^2 sin^2 phi); x = (N + h) cos phi cos lambda, y = (N + h) cos phi
    sin lambda, z = (N (1 - e^2) + h) sin phi)."""
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lam = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(height_m, dtype=np.float64)
    sin_phi = np.sin(phi)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_phi * sin_phi)
    x = (n + h) * np.cos(phi) * np.cos(lam)
    y = (n + h) * np.cos(phi) * np.sin(lam)
    z = (n * (1.0 - WGS84_E2) + h) * sin_phi
    return x, y, z


def ecef_range_m(lat1_deg, lon1_deg, h1_m, lat2_deg, lon2_deg, h2_m) -> np.ndarray:
    """Straight-line (slant) range in metres between two WGS 84 points, through ECEF:
    what a time of arrival measures. The sphere (haversine + height) is off by hundreds of
    metres on 150 km baselines; this is exact for the ellipsoid."""
    x1, y1, z1 = geodetic_to_ecef_m(lat1_deg, lon1_deg, h1_m)
    x2, y2, z2 = geodetic_to_ecef_m(lat2_deg, lon2_deg, h2_m)
    return np.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2)


def slant_range_m(ground_m, alt1_m, alt2_m) -> np.ndarray:
    """Straight-line range combining ground distance and height difference (metres)."""
    return np.hypot(ground_m, np.asarray(alt2_m) - np.asarray(alt1_m))


def bearing_unit_vectors(tx_lat_deg: float, tx_lon_deg: float, rx_lat_deg, rx_lon_deg):
    """Unit vectors (east, north) from the transmitter towards each receiver.

    Uses the initial great-circle bearing, i.e. the direction in the local ENU plane at
    the transmitter. Returns two float64 arrays of shape (R,).
    """
    p1 = math.radians(tx_lat_deg)
    p2 = np.radians(np.asarray(rx_lat_deg, dtype=np.float64))
    dl = np.radians(np.asarray(rx_lon_deg, dtype=np.float64) - tx_lon_deg)
    y = np.sin(dl) * np.cos(p2)
    x = math.cos(p1) * np.sin(p2) - math.sin(p1) * np.cos(p2) * np.cos(dl)
    az = np.arctan2(y, x)  # clockwise from north
    return np.sin(az), np.cos(az)


def gdop_from_unit_vectors(u_east: np.ndarray, u_north: np.ndarray) -> float:
    """GDOP of a 2-D TOA fix with unknown emission time.

    H has rows ``[u_east, u_north, 1]``; GDOP = sqrt(trace((H^T H)^-1)). Fewer than three
    rows, or an ill-conditioned H^T H (collinear bearings, condition number above
    ``GDOP_MAX_CONDITION``), give ``inf`` instead of an exception.
    """
    ue = np.asarray(u_east, dtype=np.float64)
    un = np.asarray(u_north, dtype=np.float64)
    if ue.shape[0] < 3:
        return math.inf
    h = np.stack([ue, un, np.ones_like(ue)], axis=1)
    a = h.T @ h
    # trace(A^-1) = sum of 1/eigenvalues; eigvalsh also gives the condition number.
    lam = np.linalg.eigvalsh(a)
    if lam[0] <= 0.0 or lam[-1] / lam[0] > GDOP_MAX_CONDITION:
        return math.inf
    return float(math.sqrt(np.sum(1.0 / lam)))


def gdop(tx_lat_deg: float, tx_lon_deg: float, rx_lat_deg, rx_lon_deg) -> float:
    """GDOP (dimensionless) for a transmitter and receivers given in degrees."""
    ue, un = bearing_unit_vectors(tx_lat_deg, tx_lon_deg, rx_lat_deg, rx_lon_deg)
    return gdop_from_unit_vectors(ue, un)


@njit(cache=True)
def _gdop_kernel(tx_lat_deg, tx_lon_deg, rx_lat_deg, rx_lon_deg, use):
    """:func:`gdop` over the receivers with ``use[i]``, as one kernel (the propagation
    path's acceptance filter calls it on every attempt that passes the SNR check): the same
    bearings, H^T H and rule (fewer than 3 rows, a non-positive eigenvalue or a condition
    number above GDOP_MAX_CONDITION give inf), with the eigenvalues of the symmetric 3x3
    matrix in closed form (trigonometric method) for the condition number and
    trace(adj(H^T H)) / det(H^T H) for the trace of the inverse, instead of LAPACK. Agrees
    with :func:`gdop` to ~1e-8 relative below GDOP 1000 (1e-4 on near-degenerate
    geometries, GDOP ~ 1e4, where both are limited by rounding)."""
    p1 = math.radians(tx_lat_deg)
    see = sen = snn = se = sn = 0.0
    n = 0
    for i in range(rx_lat_deg.shape[0]):
        if not use[i]:
            continue
        p2 = math.radians(rx_lat_deg[i])
        dl = math.radians(rx_lon_deg[i] - tx_lon_deg)
        y = math.sin(dl) * math.cos(p2)
        x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
        az = math.atan2(y, x)
        ue = math.sin(az)
        un = math.cos(az)
        see += ue * ue
        sen += ue * un
        snn += un * un
        se += ue
        sn += un
        n += 1
    if n < 3:
        return math.inf
    a00, a01, a02, a11, a12, a22 = see, sen, se, snn, sn, float(n)
    off = a01 * a01 + a02 * a02 + a12 * a12
    q = (a00 + a11 + a22) / 3.0
    if off == 0.0:
        l1, l2, l3 = a00, a11, a22
    else:
        b00, b11, b22 = a00 - q, a11 - q, a22 - q
        p = math.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * off) / 6.0)
        det = (b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02))
        r = det / (2.0 * p * p * p)
        r = min(max(r, -1.0), 1.0)
        phi = math.acos(r) / 3.0
        l1 = q + 2.0 * p * math.cos(phi)
        l3 = q + 2.0 * p * math.cos(phi + 2.0 * math.pi / 3.0)
        l2 = 3.0 * q - l1 - l3
    lo = min(l1, min(l2, l3))
    hi = max(l1, max(l2, l3))
    if lo <= 0.0 or hi / lo > GDOP_MAX_CONDITION:
        return math.inf
    # trace(A^-1) = trace(adj A) / det A: more accurate than the sum of 1 / eigenvalues
    c00 = a11 * a22 - a12 * a12
    c11 = a00 * a22 - a02 * a02
    c22 = a00 * a11 - a01 * a01
    det = a00 * c00 - a01 * (a01 * a22 - a12 * a02) + a02 * (a01 * a12 - a11 * a02)
    if not det > 0.0:
        return math.inf
    return math.sqrt((c00 + c11 + c22) / det)


def random_placement(
    rng: np.random.Generator, count: int, lat_min: float, lat_max: float, lon_min: float, lon_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` receivers uniform in the lat/lon box (degrees). Returns (lat, lon) arrays."""
    lat = rng.uniform(lat_min, lat_max, count)
    lon = rng.uniform(lon_min, lon_max, count)
    return lat, lon


def hexagonal_placement(
    rng: np.random.Generator, count: int, lat_min: float, lat_max: float, lon_min: float, lon_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``count`` receivers on a hexagonal lattice inside the lat/lon box.

    The lattice spacing starts from the value that tiles the box area with ``count`` cells
    and shrinks until at least ``count`` lattice points fall inside (a random lattice
    offset varies the layout per sample); the ``count`` points closest to the box centre are
    kept. Unlike the old system this can never return fewer receivers than requested.
    """
    if count <= 0:
        return np.empty(0), np.empty(0)
    lat0 = 0.5 * (lat_min + lat_max)
    m_per_deg_lon = M_PER_DEG * math.cos(math.radians(lat0))
    width_m = max((lon_max - lon_min) * m_per_deg_lon, 1.0)
    height_m = max((lat_max - lat_min) * M_PER_DEG, 1.0)
    # Hexagonal cell area is sqrt(3)/2 * s^2.
    spacing = math.sqrt(2.0 * width_m * height_m / (math.sqrt(3.0) * count))
    off_x, off_y = rng.uniform(0.0, 1.0, 2)
    while True:
        row_h = spacing * math.sqrt(3.0) / 2.0
        n_rows = int(height_m / row_h) + 3
        n_cols = int(width_m / spacing) + 3
        rows = np.arange(-1, n_rows - 1)
        cols = np.arange(-1, n_cols - 1)
        cc, rr = np.meshgrid(cols, rows)
        x = (cc + 0.5 * (rr % 2) + off_x) * spacing
        y = (rr + off_y) * row_h
        inside = (x >= 0) & (x <= width_m) & (y >= 0) & (y <= height_m)
        if int(inside.sum()) >= count:
            break
        spacing *= 0.95
    x = x[inside]
    y = y[inside]
    d2 = (x - width_m / 2) ** 2 + (y - height_m / 2) ** 2
    # Stable sort: ties resolved by lattice order, so the choice is deterministic.
    keep = np.argsort(d2, kind="stable")[:count]
    lat = lat_min + y[keep] / M_PER_DEG
    lon = lon_min + x[keep] / m_per_deg_lon
    return lat, lon


def place_transmitter(
    rng: np.random.Generator,
    rx_lat_deg: np.ndarray,
    rx_lon_deg: np.ndarray,
    inside_ratio: float,
    outside_margin_km: float,
    box: tuple[float, float, float, float] | None = None,
) -> tuple[float, float, bool]:
    """Transmitter position (lat, lon, inside) relative to the receivers' bounding box.

    With probability ``inside_ratio`` uniform inside the box, otherwise uniform in the band
    of width ``outside_margin_km`` around it (outside the box). ``box`` (lat_lo, lat_hi,
    lon_lo, lon_hi), if given, must be the receivers' box: it spares recomputing it for a
    fixed layout (same draws, same result).
    """
    if box is None:
        lat_lo, lat_hi = float(np.min(rx_lat_deg)), float(np.max(rx_lat_deg))
        lon_lo, lon_hi = float(np.min(rx_lon_deg)), float(np.max(rx_lon_deg))
    else:
        lat_lo, lat_hi, lon_lo, lon_hi = box
    inside = bool(rng.random() < inside_ratio)
    if inside or outside_margin_km <= 0.0:
        return float(rng.uniform(lat_lo, lat_hi)), float(rng.uniform(lon_lo, lon_hi)), True
    dlat = outside_margin_km * 1000.0 / M_PER_DEG
    dlon = dlat / max(math.cos(math.radians(0.5 * (lat_lo + lat_hi))), 1e-6)
    # Rejection sampling from the expanded box; the ring is a large share of it, so a
    # block of 64 candidates almost always contains a hit (the loop is deterministic).
    while True:
        la = rng.uniform(lat_lo - dlat, lat_hi + dlat, 64)
        lo = rng.uniform(lon_lo - dlon, lon_hi + dlon, 64)
        ok = (la < lat_lo) | (la > lat_hi) | (lo < lon_lo) | (lo > lon_hi)
        if ok.any():
            k = int(np.argmax(ok))
            return float(la[k]), float(lo[k]), False
