"""Terrain (SRTM elevation tiles) for ITM point-to-point mode, as Numba kernels.

A *terrain set* is a group of SRTM ``.hgt`` tiles of one resolution (issue 11 item 3): each
tile covers one whole degree, [lat, lat + 1] x [lon, lon + 1] for ``N45E007`` (lat 45,
lon 7; ``S`` / ``W`` negative), as ``n x n`` big-endian int16 elevations (m above the
geoid) with ``n = 3601`` (SRTM1, 1 arcsec) or ``1201`` (SRTM3, 3 arcsec), rows from north
to south, columns from west to east; neighbouring tiles share their edge row / column;
-32768 marks a void. This module has no I/O: :mod:`worker.terrain` fetches, verifies and
memory-maps the tiles of a set and builds a :class:`Dem` from them.

Layout in the kernels (numba takes neither big-endian arrays nor lists of memmaps): each
tile is a read-only 1-D native ``uint16`` view of its raw bytes (the memmap itself, no copy;
``_decode`` swaps a sample's two bytes back: little-endian hosts only) in a numba typed
List; ``tile_index[row, col]`` (int32, row 0 the northernmost whole-degree
cell) is the tile of each cell of the set's bounding box, -1 where the set has none. The
global sample grid has row ``gr = (lat_top - lat) * (n - 1)`` and column
``gc = (lon - lon_west) * (n - 1)``.

* **Elevation** at a point (``_elevation``): bilinear interpolation between the four
  surrounding samples. A void (or a sample outside the set's tiles) is filled from its
  neighbours: the valid corners keep their bilinear weights, renormalized; when every
  corner with a positive weight is void, the mean of the valid samples on the nearest
  square ring (radius 1 .. ``VOID_SEARCH_SAMPLES``) around the nearest sample; 0 m (sea
  level) when there is none. Deterministic, finite, never an error.
* **Profile** between two points (``_profile``): ``n_intervals + 1`` elevations at equal
  steps along the great circle (sphere of radius ``EARTH_RADIUS_M``, as the ground
  distance), transmitter first. The path's points are exact every ``NODE_SPACING_M``
  (spherical interpolation) and linear in latitude / longitude in between (off the great
  circle by < 0.1 m up to 60 deg latitude, far below a sample spacing). The generator
  (``_link_profile``) uses the tile spacing up to a cap: ``n_intervals = max(2,
  min(ceil(distance / spacing), MAX_PROFILE_INTERVALS))`` with ``spacing`` the north-south
  sample spacing (30.9 m for SRTM1, 92.7 m for SRTM3), i.e. the profile spacing is
  ``max(spacing, distance / 600)``; an SRTM1 profile whose spacing is 3 samples (92.7 m) or
  more is read from the set's coarse level (every third sample, the SRTM3 grid of the
  same tiles), its two end points (the ground under the antennas) from the tiles.
* **Links** (``_terrain_links``, per attempt ``_attempt_links_terrain`` with early
  rejection): the transmitter stands on the ground (its antenna at DEM
  + height above ground), receivers either stand on the ground too (random / hexagonal
  layouts) or keep their configured altitude (fixed stations, checked against the DEM by
  :func:`station_ground_errors`); per link the ITM point-to-point median over the profile,
  ITM's location variability at the link's deviate, and line of sight where the profile
  clears the straight ray between the antennas over the effective earth
  (``itm._itm_profile_line_of_sight``; with ITM the same horizon search as its median).
  The attempt computes its links longest first and stops once it cannot be accepted.

Validating wrappers (``elevation_m``, ``profile_m``, ``terrain_link_losses``) check their
arguments and raise ``ValueError`` naming them; units are in the names.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np
from numba import njit, typed

from .geometry import EARTH_RADIUS_M
from .itm import (
    FREQ_MAX_MHZ,
    FREQ_MIN_MHZ,
    HEIGHT_MAX_M,
    HEIGHT_MIN_M,
    _itm_free_space_loss_db,
    _itm_p2p_detail,
    _itm_profile_line_of_sight,
    _itm_variability_db,
)
from .propagation import (
    MDVAR_BROADCAST,
    MIN_DISTANCE_M,
    MODEL_ITM,
    PropagationParams,
    _attempt_budget,
    _ecef_m,
    _haversine_m,
)

VOID = -32768
# samples per tile side -> resolution (arcsec), and file size (bytes) -> samples per side
SAMPLES_PER_SIDE = {3601: 1, 1201: 3}
TILE_BYTES = {2 * n * n: n for n in SAMPLES_PER_SIDE}
# Void fill: largest ring radius searched around a void (samples: 2 km at SRTM1, 6 km at SRTM3).
VOID_SEARCH_SAMPLES = 64
# Profile points are computed exactly on the great circle every NODE_SPACING_M (the rest
# linear in latitude / longitude in between: off the great circle by L^2 tan(lat) / 8R, 4 cm
# at 45 deg, 8 cm at 60 deg for L = 1.5 km; a sample is 31 or 93 m apart).
NODE_SPACING_M = 1500.0
# A fixed station's ground (alt_m - height_agl_m) may differ from the DEM by this much (m):
# SRTM's absolute vertical error is <= 16 m (90 %), a station's coordinates may be tens of
# metres off on a slope, and height_agl_m may not count the building under the antenna.
STATION_GROUND_TOLERANCE_M = 50.0
# Profile resolution (docs/propagation.md, "Per link"): a profile has at most this many
# intervals (paths longer than MAX_PROFILE_INTERVALS tile spacings get a coarser spacing,
# distance / MAX_PROFILE_INTERVALS), and a profile whose spacing is at least LEVEL_STRIDE
# SRTM1 samples reads the SRTM1 set's coarse level (every LEVEL_STRIDE-th sample: the
# SRTM3 grid; 2.9 MB per tile instead of 26 MB, so its points stay in the CPU caches).
MAX_PROFILE_INTERVALS = 600
SRTM1_SIDE = 3601
LEVEL_STRIDE = 3


class TerrainError(ValueError):
    """A terrain set cannot be used for a config (unknown, wrong content, a station's
    altitude that contradicts the DEM): permanent for that config, not a transient fault."""


@dataclass(frozen=True, eq=False)
class Dem:
    """A terrain set ready for the kernels (build with :meth:`from_tiles`)."""

    name: str
    sha256: str                    # the set's digest (heimdall.register_terrain_set)
    samples_per_side: int          # 3601 or 1201
    lat_top: int                   # northern edge of the bounding box (whole degrees)
    lon_west: int                  # western edge
    tile_index: np.ndarray         # int32 (rows, cols), row 0 northernmost, -1 = no tile
    # read-only native uint16 views of the tiles' big-endian bytes; an SRTM1 set also holds,
    # after its T tiles, each tile's coarse level (every LEVEL_STRIDE-th sample: the 1201 x
    # 1201 SRTM3 grid) in the same order, tiles[T + k] for tiles[k]
    tiles: typed.List
    keep: tuple = field(default=(), repr=False)   # the arrays / memmaps behind ``tiles``

    @property
    def resolution_arcsec(self) -> int:
        return SAMPLES_PER_SIDE[self.samples_per_side]

    @property
    def spacing_m(self) -> float:
        """North-south sample spacing (m) on the sphere: the profile step."""
        return EARTH_RADIUS_M * math.radians(1.0 / (self.samples_per_side - 1))

    @property
    def num_tiles(self) -> int:
        """Tiles of the set (``tiles`` holds twice as many arrays for SRTM1: the coarse level)."""
        return int(np.count_nonzero(self.tile_index >= 0))

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(lat, lon) of the south-west corner of every tile."""
        rows, cols = np.nonzero(self.tile_index >= 0)
        return sorted((self.lat_top - 1 - int(r), self.lon_west + int(c)) for r, c in zip(rows, cols, strict=True))

    @classmethod
    def from_tiles(cls, name: str, sha256: str, tiles: dict[tuple[int, int], np.ndarray]) -> Dem:
        """``tiles`` maps the south-west corner (lat, lon) of each tile (whole degrees) to its
        elevations, shape (n, n) with n 3601 or 1201, rows north to south: a ``>i2`` memmap
        of the .hgt file (used in place) or any integer array (converted). SRTM1 tiles also
        get their coarse level (every third sample, a 2.9 MB copy per tile in memory)."""
        if not tiles:
            raise ValueError("a terrain set needs at least one tile")
        if sys.byteorder != "little":   # the kernels swap the big-endian bytes of a sample
            raise ValueError("terrain sets need a little-endian host")
        sides = {np.shape(a)[0] for a in tiles.values()} | {np.shape(a)[1] for a in tiles.values()}
        if len(sides) != 1 or next(iter(sides)) not in SAMPLES_PER_SIDE:
            raise ValueError(f"tiles must all be 3601 x 3601 or all 1201 x 1201, got sides {sorted(sides)}")
        n = next(iter(sides))
        lats = [int(k[0]) for k in tiles]
        lons = [int(k[1]) for k in tiles]
        for lat, lon in tiles:
            if int(lat) != lat or int(lon) != lon or not (-90 <= lat < 90 and -180 <= lon < 180):
                raise ValueError(f"tile corner ({lat}, {lon}) must be whole degrees, lat -90 .. 89, lon -180 .. 179")
        lat_top, lon_west = max(lats) + 1, min(lons)
        index = np.full((lat_top - min(lats), max(lons) + 1 - lon_west), -1, dtype=np.int32)
        views, keep = typed.List(), []
        for k, ((lat, lon), arr) in enumerate(sorted(tiles.items())):
            a = arr if isinstance(arr, np.ndarray) and arr.dtype == np.dtype(">i2") else np.asarray(arr).astype(">i2")
            a = np.ascontiguousarray(a)
            keep.append(a)
            # the big-endian bytes as native uint16 (swapped back in the kernels), read-only
            v = np.frombuffer(a, dtype=np.uint16) if not a.flags.writeable else a.reshape(-1).view(np.uint16)
            if v.flags.writeable:      # one array type in the typed List: read-only
                v = v.view()
                v.flags.writeable = False
            views.append(v)
            index[lat_top - 1 - int(lat), int(lon) - lon_west] = k
        if n == SRTM1_SIDE:
            for a in list(keep):
                coarse = np.ascontiguousarray(a[::LEVEL_STRIDE, ::LEVEL_STRIDE])    # big-endian copy
                keep.append(coarse)
                v = coarse.reshape(-1).view(np.uint16)
                v.flags.writeable = False
                views.append(v)
        return cls(name=name, sha256=sha256, samples_per_side=n, lat_top=lat_top, lon_west=lon_west,
                   tile_index=index, tiles=views, keep=tuple(keep))


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _decode(u):
    """Elevation (int) of one sample from its uint16 as read natively on a little-endian
    host from big-endian bytes (bytes swapped back); VOID stays VOID."""
    v = ((np.int32(u) & 0xFF) << 8) | (np.int32(u) >> 8)
    return v - 65536 if v >= 32768 else v


@njit(cache=True)
def _sample(tiles, tile_index, n, gr, gc, t_off):
    """Elevation (m, int) of global grid sample (gr, gc) of the level whose tiles start at
    tiles[t_off] (n samples per side), or VOID (a void, or no tile). A sample on a tile
    edge belongs to both tiles: the other one answers if the first is missing."""
    m = n - 1
    n_tr = tile_index.shape[0]
    n_tc = tile_index.shape[1]
    if gr < 0 or gc < 0 or gr > n_tr * m or gc > n_tc * m:
        return VOID
    tr = gr // m
    tc = gc // m
    r = gr - tr * m
    c = gc - tc * m
    for dr in range(2):
        if dr == 1 and r != 0:
            break
        for dc in range(2):
            if dc == 1 and c != 0:
                break
            ttr = tr - dr
            ttc = tc - dc
            if ttr < 0 or ttc < 0 or ttr >= n_tr or ttc >= n_tc:
                continue
            t = tile_index[ttr, ttc]
            if t < 0:
                continue
            return _decode(tiles[t + t_off][(r + dr * m) * n + (c + dc * m)])
    return VOID


@njit(cache=True)
def _void_fill(tiles, tile_index, n, gr, gc, t_off):
    """Elevation for a point whose weighted corners are all void: the sample (gr, gc) if
    valid, else the mean of the valid samples on the nearest square ring around it (radius
    1 .. VOID_SEARCH_SAMPLES), else 0 m."""
    v = _sample(tiles, tile_index, n, gr, gc, t_off)
    if v != VOID:
        return float(v)
    for k in range(1, VOID_SEARCH_SAMPLES + 1):
        total = 0.0
        count = 0
        for j in range(-k, k + 1):
            for rr, cc in ((gr - k, gc + j), (gr + k, gc + j)):
                v = _sample(tiles, tile_index, n, rr, cc, t_off)
                if v != VOID:
                    total += v
                    count += 1
        for j in range(-k + 1, k):
            for rr, cc in ((gr + j, gc - k), (gr + j, gc + k)):
                v = _sample(tiles, tile_index, n, rr, cc, t_off)
                if v != VOID:
                    total += v
                    count += 1
        if count > 0:
            return total / count
    return 0.0


@njit(cache=True)
def _elevation_slow(tiles, tile_index, n, y, x, t_off):
    """_elevation at global grid coordinates (y, x) when a corner is void or outside the
    set's tiles: valid corners keep their bilinear weights (renormalized), else _void_fill
    around the nearest sample."""
    fr = math.floor(y)
    fc = math.floor(x)
    r0 = int(fr)
    c0 = int(fc)
    fy = y - fr
    fx = x - fc
    total = 0.0
    wsum = 0.0
    for k in range(4):
        dr = k // 2
        dc = k % 2
        w = (fy if dr == 1 else 1.0 - fy) * (fx if dc == 1 else 1.0 - fx)
        if w > 0.0:
            v = _sample(tiles, tile_index, n, r0 + dr, c0 + dc, t_off)
            if v != VOID:
                total += w * v
                wsum += w
    if wsum > 0.0:
        return total / wsum
    return _void_fill(tiles, tile_index, n, int(math.floor(y + 0.5)), int(math.floor(x + 0.5)), t_off)


@njit(cache=True)
def _locate(tile_index, n, r0, c0):
    """The tile holding the cell whose north-west sample is global (r0, c0), and that
    sample's row and column in it: (tile or -1, r, c), r and c <= n - 2 (a tile holds its
    shared south and east edges, so the cell's four samples are all in it)."""
    m = n - 1
    # tile row / column without a 64-bit integer division, corrected where rounding put the
    # sample on the wrong side of a tile edge
    tr = int(math.floor(r0 * (1.0 / m)))
    tc = int(math.floor(c0 * (1.0 / m)))
    r = r0 - tr * m
    c = c0 - tc * m
    if r >= m:
        tr += 1
        r -= m
    elif r < 0:
        tr -= 1
        r += m
    if c >= m:
        tc += 1
        c -= m
    elif c < 0:
        tc -= 1
        c += m
    t = -1
    if 0 <= tr < tile_index.shape[0] and 0 <= tc < tile_index.shape[1]:
        t = tile_index[tr, tc]
    return t, r, c


@njit(cache=True)
def _bilinear(b, n, r, c, fy, fx):
    """Bilinear elevation from tile b around its sample (r, c) (r, c <= n - 2), or NaN if
    one of the four samples is void."""
    o = r * n + c
    v00 = _decode(b[o])
    v01 = _decode(b[o + 1])
    v10 = _decode(b[o + n])
    v11 = _decode(b[o + n + 1])
    if v00 == VOID or v01 == VOID or v10 == VOID or v11 == VOID:
        return np.nan
    top = v00 + (v01 - v00) * fx
    bottom = v10 + (v11 - v10) * fx
    return top + (bottom - top) * fy


@njit(cache=True)
def _elevation_grid(tiles, tile_index, n, y, x, t_off):
    """Elevation at global grid coordinates (y, x) of the level whose tiles start at
    tiles[t_off] (n samples per side): bilinear, voids filled."""
    fr = math.floor(y)
    fc = math.floor(x)
    t, r, c = _locate(tile_index, n, int(fr), int(fc))
    if t >= 0:
        v = _bilinear(tiles[t + t_off], n, r, c, y - fr, x - fc)
        if v == v:
            return v
    return _elevation_slow(tiles, tile_index, n, y, x, t_off)


@njit(cache=True)
def _elevation(tiles, tile_index, n, lat_top, lon_west, lat_deg, lon_deg):
    """Bilinear elevation (m) at a point, voids filled from neighbours (module docstring)."""
    m = n - 1
    return _elevation_grid(tiles, tile_index, n, (lat_top - lat_deg) * m, (_wrap_lon(lon_deg) - lon_west) * m, 0)


@njit(cache=True)
def _unit_vector(lat_deg, lon_deg):
    p = math.radians(lat_deg)
    lam = math.radians(lon_deg)
    return math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p)


@njit(cache=True)
def _wrap_lon(lon_deg):
    """Longitude in [-180, 180)."""
    if lon_deg >= 180.0 or lon_deg < -180.0:
        return (lon_deg + 180.0) % 360.0 - 180.0
    return lon_deg


@njit(cache=True)
def _profile(tiles, tile_index, n, lat_top, lon_west, lat1_deg, lon1_deg, lat2_deg, lon2_deg, out, t_off):
    """Elevations (m) at out.shape[0] equally spaced points of the great circle from point 1
    to point 2 (both included), into out (module docstring), read from the level whose
    tiles start at tiles[t_off] (n samples per side: the tiles, t_off 0, or an SRTM1 set's
    coarse level)."""
    n_int = out.shape[0] - 1
    m = n - 1
    ax, ay, az = _unit_vector(lat1_deg, lon1_deg)
    bx, by, bz = _unit_vector(lat2_deg, lon2_deg)
    cx = ay * bz - az * by
    cy = az * bx - ax * bz
    cz = ax * by - ay * bx
    omega = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)
    so = math.sin(omega)
    node_points = max(1, int(NODE_SPACING_M * n_int / max(omega * EARTH_RADIUS_M, 1e-9)))
    # global grid column of longitude lon_west + 360: a path crossing the antimeridian wraps
    x_turn = 360.0 * m
    x_hi = (180.0 - lon_west) * m
    # the current tile and its window of north-west samples [row_lo, row_lo + m) x
    # [col_lo, col_lo + m): a point inside it needs neither _locate nor a fetch from the
    # typed List (most points of a path)
    cur_b = tiles[0]
    row_lo = -2 * m
    col_lo = -2 * m
    i0 = 0
    y0 = (lat_top - lat1_deg) * m
    x0 = (_wrap_lon(lon1_deg) - lon_west) * m
    while i0 < n_int:
        i1 = min(i0 + node_points, n_int)
        if i1 == n_int:
            la1 = lat2_deg
            lo1 = lon2_deg
        else:
            t = i1 / n_int
            if so > 1e-15:
                wa = math.sin((1.0 - t) * omega) / so
                wb = math.sin(t * omega) / so
            else:
                wa = 1.0 - t
                wb = t
            px = wa * ax + wb * bx
            py = wa * ay + wb * by
            pz = wa * az + wb * bz
            la1 = math.degrees(math.atan2(pz, math.sqrt(px * px + py * py)))
            lo1 = math.degrees(math.atan2(py, px))
        # grid coordinates are linear in the step between two exact nodes
        y1 = (lat_top - la1) * m
        x1 = x0 + _wrap_lon(_wrap_lon(lo1) - (x0 / m + lon_west)) * m
        inv_span = 1.0 / (i1 - i0)
        dy = (y1 - y0) * inv_span
        dx = (x1 - x0) * inv_span
        for j in range(i1 - i0):
            y = y0 + j * dy
            x = x0 + j * dx
            if x >= x_hi:
                x -= x_turn
            elif x < x_hi - x_turn:
                x += x_turn
            fr = math.floor(y)
            fc = math.floor(x)
            r0 = int(fr)
            c0 = int(fc)
            v = np.nan
            if row_lo <= r0 < row_lo + m and col_lo <= c0 < col_lo + m:
                v = _bilinear(cur_b, n, r0 - row_lo, c0 - col_lo, y - fr, x - fc)
            else:
                t, r, c = _locate(tile_index, n, r0, c0)
                if t >= 0:
                    cur_b = tiles[t + t_off]
                    row_lo = r0 - r
                    col_lo = c0 - c
                    v = _bilinear(cur_b, n, r, c, y - fr, x - fc)
            out[i0 + j] = v if v == v else _elevation_slow(tiles, tile_index, n, y, x, t_off)
        i0 = i1
        y0 = y1
        x0 = x1
        if x0 >= x_hi:
            x0 -= x_turn
        elif x0 < x_hi - x_turn:
            x0 += x_turn
    out[n_int] = _elevation_grid(tiles, tile_index, n, (lat_top - lat2_deg) * m, (_wrap_lon(lon2_deg) - lon_west) * m,
                                 t_off)


@njit(cache=True)
def _link_profile(tiles, tile_index, n, lat_top, lon_west, step_m, lat1_deg, lon1_deg, lat2_deg, lon2_deg,
                  n_intervals):
    """The profile of a link with n_intervals intervals (ground distance / n_intervals
    apart), as the generator reads it: from the tiles, or, for an SRTM1 set (n = 3601)
    when the spacing is at least LEVEL_STRIDE tile spacings (step_m), from its coarse level
    with both end points (the ground under the antennas) from the tiles."""
    prof = np.empty(n_intervals + 1)
    ground = _haversine_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg)
    if n == SRTM1_SIDE and max(ground, MIN_DISTANCE_M) / n_intervals >= LEVEL_STRIDE * step_m:
        _profile(tiles, tile_index, (n - 1) // LEVEL_STRIDE + 1, lat_top, lon_west, lat1_deg, lon1_deg, lat2_deg,
                 lon2_deg, prof, len(tiles) // 2)
        prof[0] = _elevation(tiles, tile_index, n, lat_top, lon_west, lat1_deg, lon1_deg)
        prof[n_intervals] = _elevation(tiles, tile_index, n, lat_top, lon_west, lat2_deg, lon2_deg)
    else:
        _profile(tiles, tile_index, n, lat_top, lon_west, lat1_deg, lon1_deg, lat2_deg, lon2_deg, prof, 0)
    return prof


@njit(cache=True)
def _profile_intervals(ground_m, step_m):
    """Number of profile intervals for a path: the tile spacing (step_m), at least 2 and at
    most MAX_PROFILE_INTERVALS (longer paths: spacing ground_m / MAX_PROFILE_INTERVALS)."""
    return max(2, min(int(math.ceil(ground_m / step_m)), MAX_PROFILE_INTERVALS))


@njit(cache=True)
def _terrain_link(i, tiles, tile_index, n, lat_top, lon_west, step_m, rx_on_ground, model, freq_mhz,
                  tx_lat, tx_lon, tx_height_agl_m, x0, y0, z0, rx_lat, rx_lon, rx_alt_m, rx_height_agl_m,
                  surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                  polarization, z, shadowing_sigma_db,
                  ground_m, slant_m, median_db, loss_db, los, horizon_m):
    """Link i of _terrain_links (the transmitter's antenna at ECEF x0, y0, z0)."""
    ground_m[i] = _haversine_m(tx_lat, tx_lon, rx_lat[i], rx_lon[i])
    if rx_on_ground:
        rx_alt_m[i] = _elevation(tiles, tile_index, n, lat_top, lon_west, rx_lat[i], rx_lon[i]) + rx_height_agl_m[i]
    x1, y1, z1 = _ecef_m(rx_lat[i], rx_lon[i], rx_alt_m[i])
    slant_m[i] = max(math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2 + (z1 - z0) ** 2), MIN_DISTANCE_M)
    d = max(ground_m[i], MIN_DISTANCE_M)
    n_int = _profile_intervals(d, step_m)
    prof = _link_profile(tiles, tile_index, n, lat_top, lon_west, step_m, tx_lat, tx_lon, rx_lat[i], rx_lon[i], n_int)
    spacing = d / n_int
    if model == MODEL_ITM:
        r = _itm_p2p_detail(prof, spacing, freq_mhz, tx_height_agl_m, rx_height_agl_m[i],
                            surface_refractivity_n, ground_permittivity, ground_conductivity_s_m, polarization)
        los[i] = r[15]         # = _itm_profile_line_of_sight (the same horizon search, done once)
        fs, aref, dist, dh, he0, he1 = r[0], r[1], r[4], r[5], r[6], r[7]
        median_db[i] = fs + _itm_variability_db(aref, dist, freq_mhz, he0, he1, dh, climate,
                                                MDVAR_BROADCAST, 0.0, 0.0, 0.0)
        loss_db[i] = fs + _itm_variability_db(aref, dist, freq_mhz, he0, he1, dh, climate,
                                              MDVAR_BROADCAST, 0.0, -z[i], 0.0)
        horizon_m[i] = r[12]
    else:
        los[i] = _itm_profile_line_of_sight(prof, spacing, tx_height_agl_m, rx_height_agl_m[i],
                                            surface_refractivity_n)
        median_db[i] = _itm_free_space_loss_db(slant_m[i], freq_mhz)
        loss_db[i] = median_db[i] + shadowing_sigma_db * z[i]
        horizon_m[i] = np.nan


@njit(cache=True)
def _terrain_links(tiles, tile_index, n, lat_top, lon_west, step_m, rx_on_ground, model, freq_mhz,
                   tx_lat, tx_lon, tx_height_agl_m, rx_lat, rx_lon, rx_alt_m, rx_height_agl_m,
                   surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                   polarization, z, shadowing_sigma_db,
                   ground_m, slant_m, median_db, loss_db, los, horizon_m):
    """Geometry and losses of the links from one transmitter over a DEM (outputs last).
    The transmitter's antenna is at DEM + tx_height_agl_m (returned: tx_alt_m); with
    rx_on_ground, rx_alt_m[i] is set to DEM + rx_height_agl_m[i], else it is the receivers'
    given altitude. Per link: ground distance (sphere), WGS 84 slant range (>= 1 m), the
    profile at step_m, LOS where it clears the ray, and the median / varied loss: ITM
    point-to-point (N_0 = surface_refractivity_n, reduced to the profile's mean elevation
    as ITM's driver does; delta h and effective heights from the profile) or free space
    at the slant range + shadowing_sigma_db * z. horizon_m: ITM's smooth-earth d_Ls (ITM)
    or NaN."""
    tx_alt = _elevation(tiles, tile_index, n, lat_top, lon_west, tx_lat, tx_lon) + tx_height_agl_m
    x0, y0, z0 = _ecef_m(tx_lat, tx_lon, tx_alt)
    for i in range(rx_lat.shape[0]):
        _terrain_link(i, tiles, tile_index, n, lat_top, lon_west, step_m, rx_on_ground, model, freq_mhz,
                      tx_lat, tx_lon, tx_height_agl_m, x0, y0, z0, rx_lat, rx_lon, rx_alt_m, rx_height_agl_m,
                      surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                      polarization, z, shadowing_sigma_db, ground_m, slant_m, median_db, loss_db, los, horizon_m)
    return tx_alt


@njit(cache=True)
def _attempt_links_terrain(tiles, tile_index, n, lat_top, lon_west, step_m, rx_on_ground, model, freq_mhz,
                           tx_lat, tx_lon, tx_height_agl_m, rx_lat, rx_lon, rx_alt_m, rx_height_agl_m,
                           surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                           polarization, nlos_excess_delay_mean_s, shadowing_sigma_db, rician_k_db, tx_power_dbm,
                           tx_gain_dbi, body_loss_db, facing_rad, tilt_rad, tilt_azimuth_rad, xpd_los_db,
                           xpd_nlos_db, rx_gain_dbi, rx_directional, rx_azimuth_deg, rx_beamwidth_deg,
                           rx_front_to_back_db, z, phase_u, n_re, n_im, excess_unit, noise_floor_dbm, min_snr_db,
                           min_links_ok,
                           ground_m, slant_m, median_db, loss_db, los, horizon_m, excess_s, rx_power_dbm, toa_s,
                           tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db):
    """propagation._attempt_links over a DEM: each link by _terrain_link, then its budget
    (propagation._attempt_budget: excess delay, fading, antennas, power, TOA), link by link
    from the shortest. Early rejection: once more than R - min_links_ok links have an SNR
    (power - noise_floor_dbm[i], the link's receiver's floor) below min_snr_db, the attempt
    cannot be accepted and the
    remaining links are left NaN (LOS False); min_links_ok 0 computes every link. Every
    computed link is what the full computation gives. Returns (transmitter antenna altitude
    = DEM + tx_height_agl_m, all links computed)."""
    r_n = rx_lat.shape[0]
    tx_alt = _elevation(tiles, tile_index, n, lat_top, lon_west, tx_lat, tx_lon) + tx_height_agl_m
    x0, y0, z0 = _ecef_m(tx_lat, tx_lon, tx_alt)
    for i in range(r_n):
        ground_m[i] = _haversine_m(tx_lat, tx_lon, rx_lat[i], rx_lon[i])
    # longest links first: they fail most often, and with the profile cap a long link costs
    # no more than a medium one, so a hopeless attempt stops after the fewest links
    order = np.argsort(-ground_m)
    failed = 0
    for k in range(r_n):
        i = order[k]
        _terrain_link(i, tiles, tile_index, n, lat_top, lon_west, step_m, rx_on_ground, model, freq_mhz,
                      tx_lat, tx_lon, tx_height_agl_m, x0, y0, z0, rx_lat, rx_lon, rx_alt_m, rx_height_agl_m,
                      surface_refractivity_n, climate, ground_permittivity, ground_conductivity_s_m,
                      polarization, z, shadowing_sigma_db, ground_m, slant_m, median_db, loss_db, los, horizon_m)
        j = i + 1
        _attempt_budget(tx_lat, tx_lon, rx_lat[i:j], rx_lon[i:j], polarization, nlos_excess_delay_mean_s,
                        rician_k_db, tx_power_dbm, tx_gain_dbi, body_loss_db, facing_rad, tilt_rad,
                        tilt_azimuth_rad, xpd_los_db, xpd_nlos_db, rx_gain_dbi[i:j], rx_directional[i:j],
                        rx_azimuth_deg[i:j], rx_beamwidth_deg[i:j], rx_front_to_back_db[i:j], phase_u[i:j],
                        n_re[i:j], n_im[i:j], excess_unit[i:j], slant_m[i:j], loss_db[i:j], los[i:j],
                        excess_s[i:j], rx_power_dbm[i:j], toa_s[i:j], tx_antenna_gain_db[i:j],
                        rx_antenna_gain_db[i:j], polarization_loss_db[i:j])
        if not rx_power_dbm[i] - noise_floor_dbm[i] >= min_snr_db:
            failed += 1
            if failed > r_n - min_links_ok:
                for kk in range(k + 1, r_n):
                    u = order[kk]
                    for a in (slant_m, median_db, loss_db, horizon_m, excess_s, rx_power_dbm, toa_s,
                              tx_antenna_gain_db, rx_antenna_gain_db, polarization_loss_db):
                        a[u] = np.nan
                    los[u] = False
                    if rx_on_ground:
                        rx_alt_m[u] = np.nan
                return tx_alt, False
    return tx_alt, True


@njit(cache=True)
def _elevations(tiles, tile_index, n, lat_top, lon_west, lat_deg, lon_deg, out):
    for i in range(out.shape[0]):
        out[i] = _elevation(tiles, tile_index, n, lat_top, lon_west, lat_deg[i], _wrap_lon(lon_deg[i]))


# --------------------------------------------------------------------------- wrappers


def _coords(name: str, lat_deg, lon_deg) -> tuple[np.ndarray, np.ndarray]:
    lat = np.ascontiguousarray(np.atleast_1d(np.asarray(lat_deg, dtype=np.float64)))
    lon = np.ascontiguousarray(np.atleast_1d(np.asarray(lon_deg, dtype=np.float64)))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"{name}: latitudes and longitudes must be 1-D of one length, got {lat.shape} and {lon.shape}")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))) or np.any(np.abs(lat) > 90.0):
        raise ValueError(f"{name}: coordinates must be finite with |lat| <= 90")
    return lat, lon


def _dem(dem) -> Dem:
    if not isinstance(dem, Dem):
        raise ValueError(f"dem must be a worker.rf.terrain.Dem, got {type(dem).__name__}")
    return dem


def elevation_m(dem: Dem, lat_deg, lon_deg) -> np.ndarray:
    """Elevation (m, float64) of the DEM at each point (bilinear, voids filled)."""
    d = _dem(dem)
    lat, lon = _coords("elevation_m", lat_deg, lon_deg)
    out = np.empty(lat.shape[0])
    _elevations(d.tiles, d.tile_index, d.samples_per_side, float(d.lat_top), float(d.lon_west), lat, lon, out)
    return out


def profile_m(dem: Dem, lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float,
              n_intervals: int | None = None) -> tuple[np.ndarray, float]:
    """(elevations_m, spacing_m): the great-circle profile from point 1 to point 2 as the
    generator builds it (``n_intervals`` default: the tile spacing, at least 2)."""
    d = _dem(dem)
    lat, lon = _coords("profile_m", [lat1_deg, lat2_deg], [lon1_deg, lon2_deg])
    ground = max(float(_haversine_m(lat[0], lon[0], lat[1], lon[1])), MIN_DISTANCE_M)
    k = _profile_intervals(ground, d.spacing_m) if n_intervals is None else int(n_intervals)
    if k < 2:
        raise ValueError(f"n_intervals must be >= 2, got {n_intervals!r}")
    out = _link_profile(d.tiles, d.tile_index, d.samples_per_side, float(d.lat_top), float(d.lon_west), d.spacing_m,
                        lat[0], lon[0], lat[1], lon[1], k)
    return out, ground / k


@dataclass
class TerrainLinks:
    """Per-link results over a DEM (float64 / bool arrays, shape (R,))."""

    tx_alt_m: float
    rx_alt_m: np.ndarray
    ground_m: np.ndarray
    slant_m: np.ndarray
    median_db: np.ndarray
    loss_db: np.ndarray
    los: np.ndarray
    horizon_m: np.ndarray


def terrain_link_losses(dem: Dem, params: PropagationParams, freq_mhz: float, tx_lat_deg: float, tx_lon_deg: float,
                        tx_height_agl_m: float, rx_lat_deg, rx_lon_deg, rx_height_agl_m, *, rx_alt_m=None, z=None,
                        shadowing_sigma_db: float = 0.0) -> TerrainLinks:
    """The links from a transmitter standing on the DEM to receivers, as the generator
    computes them (``_terrain_links``): receivers on the ground (``rx_alt_m`` None) or at
    the given antenna altitudes; ``z`` the links' location deviates (default 0: the loss
    is the median)."""
    d = _dem(dem)
    lat, lon = _coords("receivers", rx_lat_deg, rx_lon_deg)
    r = lat.shape[0]
    tx = _coords("transmitter", tx_lat_deg, tx_lon_deg)
    h = np.ascontiguousarray(np.broadcast_to(np.asarray(rx_height_agl_m, dtype=np.float64), (r,)))
    for name, v in (("tx_height_agl_m", np.asarray([tx_height_agl_m], dtype=np.float64)), ("rx_height_agl_m", h)):
        if not np.all((v >= HEIGHT_MIN_M) & (v <= HEIGHT_MAX_M)):
            raise ValueError(f"{name} must be in [{HEIGHT_MIN_M}, {HEIGHT_MAX_M}]")
    if not FREQ_MIN_MHZ <= float(freq_mhz) <= FREQ_MAX_MHZ:
        raise ValueError(f"freq_mhz must be in [{FREQ_MIN_MHZ}, {FREQ_MAX_MHZ}], got {freq_mhz!r}")
    zz = np.zeros(r) if z is None else np.ascontiguousarray(np.asarray(z, dtype=np.float64))
    if zz.shape != (r,) or not np.all(np.isfinite(zz)):
        raise ValueError(f"z must be {r} finite deviates")
    alt = np.zeros(r) if rx_alt_m is None else np.array(np.broadcast_to(np.asarray(rx_alt_m, dtype=np.float64), (r,)))
    if not np.all(np.isfinite(alt)):
        raise ValueError("rx_alt_m must be finite")
    out = [np.empty(r) for _ in range(5)]
    los = np.empty(r, dtype=np.bool_)
    tx_alt = _terrain_links(d.tiles, d.tile_index, d.samples_per_side, float(d.lat_top), float(d.lon_west),
                            d.spacing_m, rx_alt_m is None, params.model, float(freq_mhz), float(tx[0][0]),
                            float(tx[1][0]), float(tx_height_agl_m), lat, lon, alt, h,
                            params.surface_refractivity_n, params.climate, params.ground_permittivity,
                            params.ground_conductivity_s_m, params.polarization, zz, float(shadowing_sigma_db),
                            out[0], out[1], out[2], out[3], los, out[4])
    return TerrainLinks(tx_alt_m=float(tx_alt), rx_alt_m=alt, ground_m=out[0], slant_m=out[1], median_db=out[2],
                        loss_db=out[3], los=los, horizon_m=out[4])


def station_ground_errors(dem: Dem, ids, lat_deg, lon_deg, alt_m, height_agl_m,
                          tolerance_m: float = STATION_GROUND_TOLERANCE_M) -> list[str]:
    """One message per fixed station whose ground (alt_m - height_agl_m: the configured
    antenna altitude minus its height above ground) differs from the DEM by more than
    ``tolerance_m``; empty if all agree."""
    lat, lon = _coords("stations", lat_deg, lon_deg)
    ground = np.asarray(alt_m, dtype=np.float64) - np.asarray(height_agl_m, dtype=np.float64)
    dem_m = elevation_m(dem, lat, lon)
    out = []
    for sid, la, lo, g, e in zip(ids, lat, lon, ground, dem_m, strict=True):
        if not abs(g - e) <= tolerance_m:
            out.append(f"station {sid!r} at ({la:.5f}, {lo:.5f}): alt_m - height_agl_m = {g:.1f} m, but terrain "
                       f"set {dem.name!r} has the ground at {e:.1f} m (difference {g - e:+.1f} m, more than "
                       f"{tolerance_m:g} m): set alt_m to the antenna's altitude, {e:.0f} m + height_agl_m")
    return out
