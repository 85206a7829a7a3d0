"""A synthetic terrain set for the benchmarks (no elevation data can be downloaded here):
rolling hills and mountains over the default network's transmitter placement area
(cells N44-N45 x E006-E009), written as real .hgt files and memory-mapped as a worker does.

The terrain is a sum of plane waves of 4-60 km wavelength, 150-1900 m above the sea (the
default network spans the Po plain and the Alpine foothills), continuous across tiles.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from worker.rf.geometry import M_PER_DEG
from worker.rf.terrain import Dem, elevation_m
from worker.terrain import parse_tile_name, sha256_file, tile_name

CELLS = [(lat, lon) for lat in (44, 45) for lon in (6, 7, 8, 9)]
SIDES = {1: 3601, 3: 1201}


def elevation(lat: np.ndarray, lon: np.ndarray, seed: int = 11) -> np.ndarray:
    g = np.random.default_rng(seed)
    y = (lat - 45.0) * M_PER_DEG
    x = (lon - 8.0) * M_PER_DEG * math.cos(math.radians(45.0))
    z = np.full(np.shape(lat), 800.0)
    for k in range(8):
        wavelength = 60e3 / (1.6 ** k)
        amplitude = 420.0 / (1.35 ** k)
        ang, ph = g.uniform(0, math.pi), g.uniform(0, 2 * math.pi)
        z += amplitude * np.sin(2 * math.pi * (x * math.cos(ang) + y * math.sin(ang)) / wavelength + ph)
    return np.clip(z, 150.0, 1900.0)


def write_tiles(directory: Path, resolution_arcsec: int) -> Path:
    """Write the set's tiles (once: existing files are kept)."""
    n = SIDES[resolution_arcsec]
    directory.mkdir(parents=True, exist_ok=True)
    for lat0, lon0 in CELLS:
        path = directory / f"{tile_name(lat0, lon0)}.hgt"
        if path.exists() and path.stat().st_size == 2 * n * n:
            continue
        rows = []
        for r0 in range(0, n, 400):          # in row blocks: bounded memory for SRTM1
            lat = lat0 + 1.0 - np.arange(r0, min(r0 + 400, n)) / (n - 1)
            lon = lon0 + np.arange(n) / (n - 1)
            la, lo = np.meshgrid(lat, lon, indexing="ij")
            rows.append(np.rint(elevation(la, lo)).astype(">i2"))
        np.concatenate(rows).astype(">i2").tofile(path)   # concatenate returns native order
    return directory


def load(directory: Path, name: str) -> Dem:
    """The Dem of a directory of tiles, memory-mapped, with the digest
    heimdall.register_terrain_set would give it."""
    tiles, lines = {}, []
    for path in sorted(Path(directory).glob("*.hgt")):
        n = int(math.isqrt(path.stat().st_size // 2))
        tiles[parse_tile_name(path.stem)] = np.memmap(path, dtype=">i2", mode="r", shape=(n, n))
        lines.append(f"{path.stem} {sha256_file(path)}")
    digest = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    return Dem.from_tiles(name, digest, tiles)


def terrain_config(base: dict, dem: Dem) -> dict:
    """The default config with the terrain set: ITM point-to-point mode; the stations'
    antenna altitudes (alt_m) set to the synthetic ground + height_agl_m."""
    stations = [dict(s) for s in base["receivers"]["stations"]]
    ground = elevation_m(dem, [s["lat"] for s in stations], [s["lon"] for s in stations])
    for s, g in zip(stations, ground, strict=True):
        s["alt_m"] = round(float(g) + float(s["height_agl_m"]), 1)
    return {**base, "propagation": {**base["propagation"], "terrain": dem.name, "terrain_sha256": dem.sha256},
            "receivers": {**base["receivers"], "stations": stations}}
