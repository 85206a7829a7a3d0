"""`heimdall-synth terrain import NAME DIR` / `terrain list`, and `dataset create`'s check of
fixed stations against a terrain set: the CLI as a person runs it, against the real
PostgreSQL and S3 servers (issue 11 item 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

from tests import terrain_tiles as tt
from tests.acceptance.conftest import worker_env
from tests.acceptance.test_terrain import config, write_tiles
from worker.terrain import TerrainLoader

SRTM3_BYTES = 2 * 1201 * 1201


@pytest.fixture
def cli(db_url, s3_server, bucket, tmp_path):
    cache = tmp_path / "cli-terrain-cache"          # never the user's ~/.cache

    def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                              env=worker_env(db_url, s3_server, bucket, HEIMDALL_TERRAIN_CACHE=str(cache), **env),
                              timeout=180)
    return _run


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def err(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, one `error: ...` line on stderr holding every needle, no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    line = r.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, line
    return line


def test_terrain_import_and_list(cli, store, tmp_path):
    tiles = write_tiles(tmp_path / "srtm")
    r = cli("terrain", "import", "cli-hills", str(tiles))
    line = ok(r).strip()
    assert "\n" not in line
    assert line.startswith(f"imported terrain set 'cli-hills': 2 SRTM3 tiles (3 arcsec), 45N..46N 7E..9E, "
                           f"{2 * SRTM3_BYTES:,} bytes, sha256 "), line
    assert line.endswith("; uploaded 2, already stored 0"), line
    assert "uploaded N45E007 (1/2)" in r.stderr and "uploaded N45E008 (2/2)" in r.stderr
    keys = sorted(o.key for o in store.list("terrain/cli-hills/"))
    assert [k.split("/")[-1].split(".")[0] for k in keys] == ["N45E007", "N45E008"]

    # the same tiles again: nothing uploaded, nothing changed (also as JSON)
    again = json.loads(ok(cli("terrain", "import", "cli-hills", str(tiles), "--json")))
    assert (again["name"], again["created"], again["uploaded"], again["already_stored"], again["num_tiles"],
            again["resolution_arcsec"], again["bytes"]) == ("cli-hills", False, 0, 2, 2, 3, 2 * SRTM3_BYTES)
    assert (again["lat_min"], again["lat_max"], again["lon_min"], again["lon_max"]) == (45, 46, 7, 9)
    assert line.split("sha256 ")[1].split(";")[0] == again["sha256"]
    assert "is already registered with these tiles (nothing changed)" in ok(cli("terrain", "import", "cli-hills",
                                                                              str(tiles)))

    listing = json.loads(ok(cli("terrain", "list", "--json")))
    assert [(s["name"], s["num_tiles"], s["resolution_arcsec"], s["datasets"], s["sha256"]) for s in listing] == [
        ("cli-hills", 2, 3, 0, again["sha256"])]
    created = listing[0]["created_at"]
    assert "T" in created and datetime.fromisoformat(created).tzinfo is not None     # ISO 8601
    table = ok(cli("terrain", "list")).splitlines()
    assert table[0].split()[:4] == ["name", "resolution_arcsec", "num_tiles", "lat_min"]
    assert table[1].split()[:3] == ["cli-hills", "3", "2"] and again["sha256"] in table[1]


def test_terrain_import_refuses_with_one_line(cli, store, tmp_path):
    tiles = write_tiles(tmp_path / "srtm")
    ok(cli("terrain", "import", "cli-hills", str(tiles)))
    before = sorted(o.key for o in store.list("terrain/"))
    other = tmp_path / "other"
    other.mkdir()
    tt.write_tile(other, 45, 7, tt.tile_array(45, 7, tt.flat(100.0)))
    err(cli("terrain", "import", "cli-hills", str(other)), "terrain set 'cli-hills' exists with other tiles",
        "nothing was uploaded")
    assert sorted(o.key for o in store.list("terrain/")) == before
    err(cli("terrain", "import", "x", str(tmp_path / "missing")), "is not a directory")
    (tmp_path / "empty").mkdir()
    err(cli("terrain", "import", "x", str(tmp_path / "empty")), "no .hgt tiles")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "N45E007.hgt").write_bytes(b"\0" * 1000)
    err(cli("terrain", "import", "x", str(tmp_path / "odd")), "N45E007.hgt: 1000 bytes is neither SRTM1")
    err(cli("terrain", "import", "a/b", str(tiles)), "terrain set name must be")
    r = cli("terrain", "import", "cli-hills", str(other), "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert out["exit_code"] == 1 and out["sqlstate"] is None and "exists with other tiles" in out["error"]
    assert [s["name"] for s in json.loads(ok(cli("terrain", "list", "--json")))] == ["cli-hills"]


def test_dataset_create_checks_the_stations_against_the_terrain_set(cli, conn, store, tmp_path):
    ok(cli("terrain", "import", "cli-hills", str(write_tiles(tmp_path / "srtm"))))
    dem = TerrainLoader(store, tmp_path / "c").load(conn.execute("SELECT heimdall.terrain_set('cli-hills')").fetchone()[0])
    wrong = json.dumps(config(dem, "cli-hills", alt_offset_m=-200.0))
    line = err(cli("dataset", "create", "wrong", "--type", "feature_based", "--config", wrong, "-n", "10"),
               "terrain set 'cli-hills': station 's0'", "-200.0 m", "nothing was created")
    assert "station 's3'" in line
    assert conn.execute("SELECT count(*) FROM heimdall.synthetic_datasets").fetchone()[0] == 0
    # without an object store the check cannot run: a note, and the workers check it
    r = cli("dataset", "create", "unchecked", "--type", "feature_based", "--config", wrong, HEIMDALL_S3_ENDPOINT="")
    assert r.returncode == 0 and "was not checked against terrain set 'cli-hills'" in r.stderr, r.stderr
    ok(cli("dataset", "create", "skipped", "--type", "feature_based", "--config", wrong, "--no-terrain-check"))
    created = json.loads(ok(cli("dataset", "create", "right", "--type", "feature_based", "--config",
                                json.dumps(config(dem, "cli-hills")), "--json")))
    assert created["name"] == "right"
    assert json.loads(ok(cli("terrain", "list", "--json")))[0]["datasets"] == 3


@pytest.mark.parametrize("args", [("terrain",), ("terrain", "import"), ("terrain", "list")])
def test_terrain_help(cli, args):
    r = cli(*args, "--help")
    assert r.returncode == 0 and "usage: heimdall-synth terrain" in r.stdout
