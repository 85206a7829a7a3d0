"""Synthetic SRTM tiles for the terrain tests (no elevation data can be downloaded here).

A terrain is a function elevation_m(lat_deg, lon_deg) -> array, evaluated on the samples of
each tile (rows north to south, columns west to east; neighbouring tiles share their edge
samples, as real SRTM tiles do) and rounded to int16. SRTM3 (1201 x 1201) keeps the tests
fast; the kernels treat SRTM1 alike (tests/unit/test_terrain.py checks both sizes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from worker.rf.geometry import M_PER_DEG
from worker.rf.terrain import VOID, Dem
from worker.terrain import tile_name

Terrain = Callable[[np.ndarray, np.ndarray], np.ndarray]
SRTM3 = 1201
SRTM1 = 3601


def tile_array(lat0: int, lon0: int, terrain: Terrain, n: int = SRTM3) -> np.ndarray:
    """The int16 elevations of the tile whose south-west corner is (lat0, lon0)."""
    lat = lat0 + 1.0 - np.arange(n) / (n - 1)
    lon = lon0 + np.arange(n) / (n - 1)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return np.clip(np.rint(terrain(la, lo)), -32767, 32767).astype(np.int16)


def write_tile(directory: Path, lat0: int, lon0: int, arr: np.ndarray) -> Path:
    """Write a tile as an .hgt file (big-endian int16) named after its cell."""
    path = Path(directory) / f"{tile_name(lat0, lon0)}.hgt"
    np.ascontiguousarray(arr).astype(">i2").tofile(path)
    return path


def make_dem(terrain: Terrain, cells, n: int = SRTM3, name: str = "test", sha256: str = "0" * 64,
             voids: Callable[[int, int, np.ndarray], None] | None = None) -> Dem:
    """A Dem (in memory) of ``terrain`` over the given (lat, lon) cells; ``voids(lat, lon,
    arr)`` may punch voids (VOID) into a tile's array."""
    tiles = {}
    for lat0, lon0 in cells:
        a = tile_array(lat0, lon0, terrain, n)
        if voids is not None:
            voids(lat0, lon0, a)
        tiles[(lat0, lon0)] = a
    return Dem.from_tiles(name, sha256, tiles)


def flat(height_m: float = 0.0) -> Terrain:
    return lambda la, lo: np.full(np.shape(la), float(height_m))


def _east_m(lat_deg: np.ndarray, lon_deg: np.ndarray, lon_axis_deg: float) -> np.ndarray:
    """Distance (m) east of the meridian lon_axis_deg, at each point's latitude."""
    return (lon_deg - lon_axis_deg) * M_PER_DEG * np.cos(np.radians(lat_deg))


def ridge(base_m: float, height_m: float, lon_deg: float, half_width_m: float = 800.0) -> Terrain:
    """A north-south ridge (Gaussian cross-section) on a plain at base_m."""
    return lambda la, lo: base_m + height_m * np.exp(-(_east_m(la, lo, lon_deg) / half_width_m) ** 2)


def valley(rim_m: float, depth_m: float, lon_deg: float, half_width_m: float = 4000.0) -> Terrain:
    """A north-south valley (Gaussian cross-section) in a plateau at rim_m."""
    return lambda la, lo: rim_m - depth_m * np.exp(-(_east_m(la, lo, lon_deg) / half_width_m) ** 2)


def hills(base_m: float = 300.0, amplitude_m: float = 250.0, seed: int = 1) -> Terrain:
    """Smooth rolling terrain: a few plane waves of 5-40 km wavelength (continuous across
    tiles, slopes below ~0.3)."""
    rng = np.random.default_rng(seed)
    waves = [(rng.uniform(5e3, 40e3), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)) for _ in range(6)]

    def f(la, lo):
        y = (la - 45.0) * M_PER_DEG
        x = (lo - 7.0) * M_PER_DEG * math.cos(math.radians(45.0))
        z = np.full(np.shape(la), base_m)
        for wl, ang, ph in waves:
            z = z + amplitude_m / len(waves) * 2 * np.sin(2 * math.pi * (x * math.cos(ang) + y * math.sin(ang)) / wl + ph)
        return z

    return f


def void_block(lat0: int, lon0: int, row: int, col: int, size: int) -> Callable[[int, int, np.ndarray], None]:
    """Punch a size x size block of voids at (row, col) into tile (lat0, lon0)."""
    def punch(la, lo, arr):
        if (la, lo) == (lat0, lon0):
            arr[row:row + size, col:col + size] = VOID
    return punch


def rough_tile(n: int = SRTM1, seed: int = 3, hurst: float = 0.7, std_m: float = 350.0,
               base_m: float = 700.0) -> np.ndarray:
    """A rough tile (int16, n x n): fractal (power-law spectrum, Hurst exponent ``hurst``)
    relief of ``std_m`` about ``base_m``, with detail down to the sample spacing, as real
    mountain terrain has (unlike the smooth waves above). Not continuous across tiles."""
    g = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    k[0, 0] = 1.0
    amp = k ** -(1.0 + hurst)
    amp[0, 0] = 0.0
    z = np.fft.irfft2(amp * (g.standard_normal(k.shape) + 1j * g.standard_normal(k.shape)), s=(n, n))
    return np.clip(np.rint((z - z.mean()) / z.std() * std_m + base_m), 0, 8000).astype(np.int16)
