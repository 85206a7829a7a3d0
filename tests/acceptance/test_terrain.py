"""A terrain set imported with the user tooling (heimdall_synth.terrain) and used by real
workers against the real PostgreSQL and S3 servers (issue 11 item 3)."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.terrain import check_stations, import_terrain_set, list_terrain_sets
from tests import terrain_tiles as tt
from tests.acceptance.checks import assert_consistent, iq_by_index
from tests.acceptance.conftest import finish
from worker.config import GenerationConfig
from worker.errors import AlreadyExists
from worker.rf import generate_samples
from worker.rf import terrain as T
from worker.terrain import TerrainLoader, tile_object_key

TERRAIN = tt.hills(base_m=350.0, amplitude_m=300.0, seed=7)
CELLS = [(45, 7), (45, 8)]
STATIONS = [(45.40, 7.60), (45.60, 7.80), (45.45, 8.20), (45.55, 8.40)]


def write_tiles(directory):
    directory.mkdir()
    for lat, lon in CELLS:
        tt.write_tile(directory, lat, lon, tt.tile_array(lat, lon, TERRAIN))
    (directory / "README.txt").write_text("not a tile: ignored")
    return directory


def config(dem: T.Dem, name: str, alt_offset_m: float = 0.0) -> dict:
    ground = T.elevation_m(dem, [s[0] for s in STATIONS], [s[1] for s in STATIONS])
    stations = [{"id": f"s{i}", "lat": la, "lon": lo, "alt_m": round(float(g), 1) + 10 + alt_offset_m}
                for i, ((la, lo), g) in enumerate(zip(STATIONS, ground, strict=True))]
    return {"propagation": {"terrain": name}, "receivers": {"mode": "fixed", "stations": stations},
            "chunk_size": 20, "duration_ms": 40}


def create(conn, name, cfg, n):
    return conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, 3, %s)", (name, Jsonb(cfg), n)).fetchone()[0]


def test_imported_terrain_set_used_by_real_workers(conn, store, spawn_worker, tmp_path):
    tiles = write_tiles(tmp_path / "srtm")
    out = import_terrain_set(conn, store, "acc-hills", tiles)
    assert (out["created"], out["num_tiles"], out["resolution_arcsec"], out["uploaded"]) == (True, 2, 3, 2)
    keys = sorted(o.key for o in store.list("terrain/acc-hills/"))
    assert len(keys) == 2 and keys[0].startswith("terrain/acc-hills/N45E007.")
    # the same tiles again: nothing to upload, nothing changes
    again = import_terrain_set(conn, store, "acc-hills", tiles)
    assert (again["created"], again["uploaded"], again["already_stored"], again["sha256"]) == (False, 0, 2, out["sha256"])
    assert [r["name"] for r in list_terrain_sets(conn)] == ["acc-hills"]
    # other tiles under the same name: refused before anything is uploaded
    other = tmp_path / "other"
    other.mkdir()
    tt.write_tile(other, 45, 7, tt.tile_array(45, 7, tt.flat(100.0)))
    with pytest.raises(AlreadyExists, match="exists with other tiles"):
        import_terrain_set(conn, store, "acc-hills", other)
    assert sorted(o.key for o in store.list("terrain/")) == keys

    loader = TerrainLoader(store, tmp_path / "my-cache")
    manifest = conn.execute("SELECT heimdall.terrain_set('acc-hills')").fetchone()[0]
    dem = loader.load(manifest)
    assert dem.sha256 == out["sha256"]
    cfg = config(dem, "acc-hills")
    ds = create(conn, "terrain-ds", cfg, 40)
    stored = conn.execute("SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert stored["propagation"]["terrain_sha256"] == out["sha256"]
    assert check_stations(conn, store, stored, tmp_path / "my-cache") == []

    cache = tmp_path / "worker-cache"
    log = finish(spawn_worker("--until-idle", HEIMDALL_TERRAIN_CACHE=str(cache)))
    assert log.count('"event": "chunk_done"') == 2
    # fetched on first use into the cache, by content
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{t['sha256']}.hgt" for t in manifest["tiles"])
    assert_consistent(conn, store, ds, 40, compare_rf=False)
    # the workers' bytes are the RF core's with the terrain set
    batch = generate_samples(GenerationConfig.from_normalized(stored), 3, 0, 40, want_iq=True, terrain=dem)
    data = iq_by_index(conn, store, ds)
    for i in range(40):
        assert data[i] == np.ascontiguousarray(batch.iq[i]).tobytes(), f"IQ bytes of sample {i} differ"
    rows = conn.execute("SELECT tx_lat, tx_lon, tx_alt_m, tx_height_agl_m, path_loss_median_db, los "
                        "FROM heimdall.measurement_features WHERE dataset_id = %s ORDER BY sample_idx", (ds,)).fetchall()
    for k, (lat, lon, alt, h, median, los) in enumerate(rows):
        # the transmitter stands on the ground of the terrain set
        assert alt == pytest.approx(T.elevation_m(dem, [lat], [lon])[0] + h, abs=0.01)
        np.testing.assert_allclose(median, batch.path_loss_median_db[k], rtol=1e-6)
        assert los == list(batch.los[k])


def test_workers_refuse_what_contradicts_the_terrain_set(conn, store, spawn_worker, tmp_path):
    tiles = write_tiles(tmp_path / "srtm")
    import_terrain_set(conn, store, "acc-hills", tiles)
    dem = TerrainLoader(store, tmp_path / "c").load(conn.execute("SELECT heimdall.terrain_set('acc-hills')").fetchone()[0])
    # a station 200 m below the DEM: refused for good, the message names the station
    wrong = create(conn, "wrong-alt", config(dem, "acc-hills", alt_offset_m=-200.0), 20)
    assert check_stations(conn, store, conn.execute(
        "SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (wrong,)).fetchone()[0], tmp_path / "c")
    finish(spawn_worker("--until-idle", HEIMDALL_TERRAIN_CACHE=str(tmp_path / "w1")))
    state, error = conn.execute("SELECT state, last_error FROM heimdall.generation_chunks WHERE dataset_id = %s",
                                (wrong,)).fetchone()
    assert state == "failed" and error.startswith("terrain: station 's0'") and "-200.0 m" in error
    # a tile whose stored bytes were damaged: refused for good by a worker without a cached copy
    manifest = conn.execute("SELECT heimdall.terrain_set('acc-hills')").fetchone()[0]
    t = manifest["tiles"][0]
    assert t["object_key"] == tile_object_key("acc-hills", t["tile"], t["sha256"])
    store.put(t["object_key"], b"\0" * t["bytes"])
    ds = create(conn, "damaged", config(dem, "acc-hills"), 20)
    finish(spawn_worker("--until-idle", HEIMDALL_TERRAIN_CACHE=str(tmp_path / "w2")))
    state, error = conn.execute("SELECT state, last_error FROM heimdall.generation_chunks WHERE dataset_id = %s",
                                (ds,)).fetchone()
    assert state == "failed" and "damaged" in error
