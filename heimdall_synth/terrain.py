"""Terrain sets for users: ``heimdall-synth terrain import NAME DIR`` and
``heimdall-synth terrain list`` (issue 11 item 3). Plain-argument functions; the CLI wires
them (argparse lives there).

* :func:`import_terrain_set` - validates the SRTM tiles of a directory (names, sizes, one
  resolution), refuses other tiles under an existing name *before* uploading anything,
  uploads each tile to the object store (key: :func:`worker.terrain.tile_object_key`, the
  content's sha256 in it, so an upload never overwrites other bytes; a tile already there
  is not sent again) and registers the set (``heimdall.register_terrain_set``: immutable,
  idempotent for the same tiles).
* :func:`list_terrain_sets` - ``heimdall.list_terrain_sets()``.
* :func:`check_stations` - the workers' check of fixed stations' ``alt_m`` against the DEM,
  run before a dataset is created (optional pre-flight; the workers run it anyway and fail
  the chunk for good with the same message).

Real SRTM tiles: SRTM1 (1 arcsec, 3601 x 3601 samples, 25,934,402 bytes) or SRTM3
(3 arcsec, 1201 x 1201, 2,884,802 bytes) ``.hgt`` files named like ``N45E007.hgt``
(unzipped), e.g. from NASA Earthdata (SRTMGL1 / SRTMGL3) or USGS EarthExplorer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from worker import queries
from worker.config import GenerationConfig
from worker.errors import AlreadyExists, InvalidInput, NotFound
from worker.rf.terrain import TILE_BYTES, TerrainError
from worker.rf.terrain import station_ground_errors as _station_ground_errors
from worker.storage import ObjectStore
from worker.terrain import (
    SET_NAME,
    TerrainLoader,
    parse_tile_name,
    terrain_manifest,
    tile_object_key,
)


@dataclass(frozen=True)
class TileFile:
    """One validated .hgt file of a directory."""

    tile: str          # N45E007
    lat: int           # south-west corner
    lon: int
    path: Path
    bytes: int
    sha256: str


def scan_tiles(directory: str | os.PathLike) -> list[TileFile]:
    """The SRTM tiles of a directory (``*.hgt``, any case; other files are ignored),
    sorted by tile, each hashed. InvalidInput naming the file for a name that is not an
    SRTM cell, a size that is neither SRTM1 nor SRTM3, two files of one cell, mixed
    resolutions, or no tile at all."""
    d = Path(directory)
    if not d.is_dir():
        raise InvalidInput(f"{str(d)!r} is not a directory")
    found: dict[str, TileFile] = {}
    sizes: dict[int, str] = {}
    for path in sorted(d.iterdir()):
        if not path.is_file() or path.suffix.lower() != ".hgt":
            continue
        tile = path.stem.upper()
        try:
            lat, lon = parse_tile_name(tile)
        except ValueError as exc:
            raise InvalidInput(f"{path.name}: {exc}") from exc
        size = path.stat().st_size
        if size not in TILE_BYTES:
            raise InvalidInput(f"{path.name}: {size} bytes is neither SRTM1 (3601 x 3601 samples, 25934402 bytes) "
                               f"nor SRTM3 (1201 x 1201, 2884802 bytes) big-endian int16")
        if tile in found:
            raise InvalidInput(f"{path.name} and {found[tile].path.name} are the same tile {tile}")
        sizes.setdefault(size, path.name)
        if len(sizes) > 1:
            raise InvalidInput(f"a terrain set has one resolution: {', '.join(sorted(sizes.values()))} mix SRTM1 and SRTM3")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
        found[tile] = TileFile(tile, lat, lon, path, size, h.hexdigest())
    if not found:
        raise InvalidInput(f"no .hgt tiles in {str(d)!r} (SRTM tiles like N45E007.hgt; unzip .hgt.zip downloads first)")
    return [found[k] for k in sorted(found)]


def import_terrain_set(conn, store: ObjectStore, name: str, directory: str | os.PathLike,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``heimdall-synth terrain import NAME DIR``: validate, upload, register.

    Returns the registered set (``register_terrain_set``'s JSON: name, sha256,
    resolution_arcsec, num_tiles, lat/lon bounds, bytes, created) plus ``uploaded`` and
    ``already_stored`` (tiles sent / found in the store). Importing the same tiles again
    uploads nothing and returns ``created`` false. Raises InvalidInput (bad name or tiles),
    AlreadyExists (the name holds other tiles: nothing is uploaded), StorageError (the
    object store) or the database's errors. ``conn`` needs heimdall_admin."""
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise InvalidInput(f"terrain set name must be 1 to 100 characters of A-Z a-z 0-9 . _ -, starting with a "
                           f"letter or a digit, got {name!r}")
    say = progress or (lambda _msg: None)
    tiles = scan_tiles(directory)
    mine = {t.tile: t.sha256 for t in tiles}
    try:
        existing = terrain_manifest(conn, name)
    except TerrainError:
        existing = None
    if existing is not None:
        theirs = {t["tile"]: t["sha256"] for t in existing["tiles"]}
        if theirs != mine:
            differ = sorted(k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k))
            raise AlreadyExists(f"terrain set {name!r} exists with other tiles ({len(differ)} differ, e.g. "
                                f"{', '.join(differ[:5])}): a terrain set is immutable; nothing was uploaded",
                                hint="import these tiles under a new name")
    store.ensure_bucket()
    stored = {o.key: o.size for o in store.list(f"terrain/{name}/")}
    uploaded = already = 0
    entries = []
    for t in tiles:
        key = tile_object_key(name, t.tile, t.sha256)
        entries.append({"tile": t.tile, "sha256": t.sha256, "bytes": t.bytes, "object_key": key})
        if stored.get(key) == t.bytes:       # the key names the content: it is these bytes
            already += 1
            continue
        data = t.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != t.sha256:
            raise InvalidInput(f"{t.path.name} changed while it was imported")
        store.put(key, data)
        uploaded += 1
        say(f"uploaded {t.tile} ({uploaded + already}/{len(tiles)})")
    row = queries.one(conn, "register_terrain_set", name=name, tiles=Jsonb(entries))
    return {**row["terrain_set"], "uploaded": uploaded, "already_stored": already}


def list_terrain_sets(conn) -> list[dict[str, Any]]:
    """``heimdall-synth terrain list``: one dict per registered set (name,
    resolution_arcsec, num_tiles, lat_min, lat_max, lon_min, lon_max, bytes, sha256,
    datasets, created_by, created_at), by name."""
    return queries.run(conn, "list_terrain_sets")


def check_stations(conn, store: ObjectStore, config: dict[str, Any], cache: str | os.PathLike | None = None) -> list[str]:
    """For a *normalized* config with a terrain set and fixed stations: one message per
    station whose ``alt_m - height_agl_m`` is more than the workers' tolerance
    (worker.rf.terrain.STATION_GROUND_TOLERANCE_M) from the DEM; empty if all agree or the
    config has no terrain set. Loads the set into the local tile cache (as a worker does)."""
    cfg = GenerationConfig.from_normalized(config)
    if cfg.propagation is None or cfg.propagation.terrain is None or cfg.receivers.mode != "fixed":
        return []
    try:
        dem = TerrainLoader(store, cache).for_config(conn, cfg)
    except TerrainError as exc:
        raise NotFound(str(exc)) from exc
    st = cfg.receivers.stations
    return _station_ground_errors(dem, [s.id for s in st], [s.lat for s in st], [s.lon for s in st],
                                  [s.alt_m for s in st], [s.height_agl_m for s in st])
