"""heimdall_synth.terrain's validation of a directory of SRTM tiles (no services needed),
and the worker-side names and keys of tiles (worker.terrain)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from heimdall_synth.terrain import scan_tiles
from worker.errors import InvalidInput
from worker.terrain import parse_tile_name, tile_name, tile_object_key


def hgt(path, n=1201, value=5):
    np.full((n, n), value, dtype=">i2").tofile(path)
    return path


def test_scan_validates_and_hashes(tmp_path):
    hgt(tmp_path / "N45E007.hgt")
    hgt(tmp_path / "n45e008.HGT", value=7)          # case does not matter
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "N44E007.hgt.zip").write_bytes(b"ignored: not unzipped")
    tiles = scan_tiles(tmp_path)
    assert [(t.tile, t.lat, t.lon, t.bytes) for t in tiles] == [("N45E007", 45, 7, 2884802), ("N45E008", 45, 8, 2884802)]
    assert tiles[0].sha256 == hashlib.sha256((tmp_path / "N45E007.hgt").read_bytes()).hexdigest()


@pytest.mark.parametrize("files, words", [
    ({"N45E7.hgt": 1201}, "not an SRTM tile name"),
    ({"S00E007.hgt": 1201}, "no such cell"),
    ({"N45E007.hgt": 1000}, "neither SRTM1"),
    ({"N45E007.hgt": 1201, "n45e007.hgt": 1201}, "same tile N45E007"),
    ({"N45E007.hgt": 1201, "N45E008.hgt": 3601}, "one resolution"),
    ({}, "no .hgt tiles"),
])
def test_scan_refuses_what_is_not_a_terrain_set(tmp_path, files, words):
    for name, n in files.items():
        if n == 1000:
            (tmp_path / name).write_bytes(b"\0" * 1000)
        else:
            hgt(tmp_path / name, n)
    if len({k.lower() for k in files}) < len(files) and len(list(tmp_path.iterdir())) < len(files):
        pytest.skip("case-insensitive file system")
    with pytest.raises(InvalidInput, match=words):
        scan_tiles(tmp_path)
    with pytest.raises(InvalidInput, match="not a directory"):
        scan_tiles(tmp_path / "missing")


def test_tile_names_and_keys():
    for lat, lon in ((45, 7), (-1, -72), (-90, -180), (89, 179), (0, 0)):
        assert parse_tile_name(tile_name(lat, lon)) == (lat, lon)
    assert tile_name(-1, -72) == "S01W072"
    key = tile_object_key("alps.v1", "N45E007", "a" * 64)
    assert key == "terrain/alps.v1/N45E007." + "a" * 64 + ".hgt"
    for bad in (("a/b", "N45E007", "a" * 64), ("ok", "N45E7", "a" * 64), ("ok", "N45E007", "A" * 64)):
        with pytest.raises(ValueError):
            tile_object_key(*bad)
