"""Terrain sets on the worker side: tile names, object keys, the local tile cache, loading a
set for the kernels (issue 11 item 3; the kernels are in :mod:`worker.rf.terrain`).

A terrain set is registered in the database (``heimdall.register_terrain_set``: name, tiles
with their sha256 and object key, resolution, coverage; immutable) after its tiles were
uploaded to the object store (``heimdall_synth.terrain.import_terrain_set``). A config that
names it (``propagation.terrain``) carries the set's digest (``propagation.terrain_sha256``,
added by ``normalize_config``), so the set's content is part of the dataset's identity.

Workers load a set on first use (:class:`TerrainLoader`): its manifest from the database
(``heimdall.terrain_set``, granted to ``heimdall_worker``), every tile from the object store
into the local cache (:func:`cache_dir`) unless it is there already, each tile's sha256
checked against the manifest (a cached file once per process, a download before it is
kept), then memory-mapped read-only as big-endian int16 and handed to the kernels as a
:class:`worker.rf.terrain.Dem`. The cache is content-addressed (``<sha256>.hgt``): a file
name says what it holds, any set may share it, and a stale file cannot exist.

One home for the layouts: :func:`tile_object_key` (object store) and :func:`cache_dir`
(local disk, ``$HEIMDALL_TERRAIN_CACHE``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import queries
from .errors import NotFound
from .rf.terrain import SAMPLES_PER_SIDE, TILE_BYTES, Dem, TerrainError
from .storage import ObjectStore

CACHE_ENV = "HEIMDALL_TERRAIN_CACHE"
# Terrain set names: they are part of object keys and file names.
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TILE = re.compile(r"^([NS])(\d{2})([EW])(\d{3})$")


def parse_tile_name(tile: str) -> tuple[int, int]:
    """The south-west corner (lat, lon) of an SRTM tile name: ``N45E007`` -> (45, 7),
    ``S01W072`` -> (-1, -72). ValueError unless the name is [NS]dd[EW]ddd (upper case) of a
    real cell: N00 .. N89, S01 .. S90, E000 .. E179, W001 .. W180 (the rule of
    heimdall.register_terrain_set)."""
    m = _TILE.match(tile)
    if m is None:
        raise ValueError(f"tile name {tile!r} is not an SRTM tile name like N45E007 or S01W072")
    lat = int(m.group(2)) * (1 if m.group(1) == "N" else -1)
    lon = int(m.group(4)) * (1 if m.group(3) == "E" else -1)
    if not (-90 <= lat <= 89 and -180 <= lon <= 179) or tile.startswith("S00") or tile.endswith("W000"):
        raise ValueError(f"tile name {tile!r}: no such cell (lat -90 .. 89, lon -180 .. 179)")
    return lat, lon


def tile_name(lat: int, lon: int) -> str:
    """The SRTM name of the cell whose south-west corner is (lat, lon)."""
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def tile_object_key(set_name: str, tile: str, sha256: str) -> str:
    """Where a tile of a set lives in the object store. The content's sha256 is in the key,
    so an object is never overwritten with other bytes (two imports racing for one name
    cannot mix their tiles; the database registers only one of them)."""
    if not SET_NAME.match(set_name):
        raise ValueError(f"terrain set name {set_name!r}: 1 to 100 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    parse_tile_name(tile)
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
    return f"terrain/{set_name}/{tile}.{sha256}.hgt"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The local tile cache: ``path``, else ``$HEIMDALL_TERRAIN_CACHE``, else
    ``$XDG_CACHE_HOME/heimdall-synth/terrain`` (``~/.cache/...``). Created if missing."""
    p = path or os.environ.get(CACHE_ENV)
    if not p:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        p = os.path.join(base, "heimdall-synth", "terrain")
    out = Path(p)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TerrainError(f"terrain cache {str(out)!r} ({CACHE_ENV}) cannot be created: {exc}") from exc
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def terrain_manifest(conn, name: str) -> dict[str, Any]:
    """``heimdall.terrain_set(name)``: the set with its tiles (TerrainError if unknown)."""
    try:
        row = queries.one(conn, "terrain_set", name=name)
    except NotFound as exc:
        raise TerrainError(f"terrain set {name!r} is not registered in this database: {exc}") from exc
    return row["terrain_set"]


class TerrainLoader:
    """Loads terrain sets for one process: tiles cached on disk, each set memory-mapped once."""

    def __init__(self, store: ObjectStore, cache: str | os.PathLike | None = None) -> None:
        self.store = store
        self.cache = cache_dir(cache)
        self._sets: dict[tuple[str, str], Dem] = {}
        self._verified: set[str] = set()
        self._lock = threading.Lock()

    def for_config(self, conn, cfg) -> Dem | None:
        """The Dem of a config's terrain set (None without one), checked against the digest
        the config carries (``propagation.terrain_sha256``)."""
        p = cfg.propagation
        if p is None or p.terrain is None:
            return None
        key = (p.terrain, p.terrain_sha256)
        if key not in self._sets:
            manifest = terrain_manifest(conn, p.terrain)
            if manifest["sha256"] != p.terrain_sha256:
                raise TerrainError(f"terrain set {p.terrain!r} has sha256 {manifest['sha256']} in this database, "
                                   f"the dataset's config was made with {p.terrain_sha256}")
            self.load(manifest)
        return self._sets[key]

    def load(self, manifest: dict[str, Any]) -> Dem:
        """The Dem of a manifest (``heimdall.terrain_set``'s value): every tile fetched into
        the cache if missing, verified, memory-mapped."""
        key = (manifest["name"], manifest["sha256"])
        with self._lock:
            if key not in self._sets:
                n = int(manifest["samples_per_side"])
                if n not in SAMPLES_PER_SIDE:
                    raise TerrainError(f"terrain set {manifest['name']!r}: {n} samples per side is not SRTM")
                tiles = {}
                for t in manifest["tiles"]:
                    path = self.tile_path(t)
                    tiles[(int(t["lat"]), int(t["lon"]))] = np.memmap(path, dtype=">i2", mode="r", shape=(n, n))
                self._sets[key] = Dem.from_tiles(manifest["name"], manifest["sha256"], tiles)
            return self._sets[key]

    def tile_path(self, tile: dict[str, Any]) -> Path:
        """The cached file of a tile (``{"tile", "sha256", "bytes", "object_key"}``),
        downloaded and verified if needed. TerrainError if the stored bytes are not the
        registered ones; StorageError if the store cannot deliver them."""
        sha, size = tile["sha256"], int(tile["bytes"])
        if size not in TILE_BYTES:
            raise TerrainError(f"tile {tile['tile']}: {size} bytes is not an SRTM tile")
        path = self.cache / f"{sha}.hgt"
        if sha in self._verified:
            return path
        if path.exists():
            if path.stat().st_size == size and sha256_file(path) == sha:
                self._verified.add(sha)
                return path
            path.unlink(missing_ok=True)          # damaged or foreign: fetch again
        data = self.store.get(tile["object_key"])
        got = hashlib.sha256(data).hexdigest()
        if got != sha or len(data) != size:
            raise TerrainError(f"tile {tile['tile']} at {tile['object_key']!r} has sha256 {got} ({len(data)} bytes), "
                               f"the terrain set registered {sha} ({size} bytes): the object store copy is damaged")
        fd, tmp = tempfile.mkstemp(prefix=f".{sha}.", suffix=".part", dir=self.cache)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)                 # atomic: concurrent workers agree
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._verified.add(sha)
        return path
