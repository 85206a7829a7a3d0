"""Export, training loader and plots (issue "The product a person uses"): against real
Postgres, a real S3 server and datasets made by real worker processes.

What is checked is the data itself: exported features equal the Postgres rows, exported IQ
equals the object store's bytes, the manifest's checksums match the files, the loader's
items equal the stored bytes and never hide missing IQ, and bad input fails with one line.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from heimdall_synth import FEATURE_NAMES, HeimdallDataset, IQIntegrityError
from heimdall_synth.export import features_schema
from tests.acceptance.checks import iq_by_index
from tests.acceptance.conftest import finish, worker_env
from worker.rows import FEATURE_COLUMNS

# complex64 storage (ci16_le, the default since revision 0004: tests/acceptance/test_iq_ci16.py)
SMALL = {"chunk_size": 40, "duration_ms": 40, "iq_dtype": "complex64"}      # 7 receivers x 2,000 IQ per sample
RANDOM_RX = {**SMALL, "receivers": {"mode": "random", "count_min": 3, "count_max": 6,
                                    "area": {"lat_min": 44.5, "lat_max": 45.5, "lon_min": 7.0, "lon_max": 8.5},
                                    "alt_m": 150}}
N = 90
PG_TYPES = dict(FEATURE_COLUMNS)


def create(conn, name, n=N, dataset_type="iq_raw", config=None, seed=7):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, dataset_type, Jsonb(config or SMALL), seed, n)).fetchone()[0]


@pytest.fixture
def cli(db_url, s3_server, bucket):
    """Run ``python -m heimdall_synth ...`` like a person would; returns CompletedProcess."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                              env=worker_env(db_url, s3_server, bucket), timeout=300)
    return run


@pytest.fixture
def iq_ds(conn, store, spawn_worker):
    """An iq_raw dataset of N samples in 3 objects (40 + 40 + 10)."""
    ds = create(conn, "field test/1")        # a '/' in the name: the export dir must cope
    finish(spawn_worker("--until-idle"))
    return ds


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def fails(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, one 'error: ...' line on stderr containing every needle, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def pg_features(conn, ds, first=0, stop=10**9):
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM heimdall.measurement_features WHERE dataset_id = %s AND sample_idx >= %s "
                    "AND sample_idx < %s ORDER BY sample_idx", (ds, first, stop))
        return cur.fetchall()


def same_value(pg, exported, pgtype: str) -> bool:
    """Equal as stored: float4 compared as float32 (the column's precision), NaN == NaN."""
    if pgtype == "jsonb":
        return json.loads(exported) == pg
    if pg is None or exported is None:
        return pg is None and exported is None
    if pgtype.startswith("float"):
        dt = np.float32 if pgtype.startswith("float4") else np.float64
        a, b = np.asarray(pg, dtype=dt), np.asarray(exported, dtype=dt)
        return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return list(pg) == list(exported) if isinstance(pg, list) else pg == exported


def assert_features_equal_postgres(path: Path, conn, ds, first: int, stop: int) -> None:
    table = pq.read_table(path)
    assert table.schema.equals(features_schema())
    exported = table.to_pylist()
    rows = pg_features(conn, ds, first, stop)
    assert [r["sample_idx"] for r in exported] == list(range(first, stop)) == [r["sample_idx"] for r in rows]
    for pg_row, ex_row in zip(rows, exported, strict=True):
        for col in table.schema.names:
            assert same_value(pg_row[col], ex_row[col], PG_TYPES[col]), (pg_row["sample_idx"], col)


def assert_manifest_matches_files(root: Path) -> dict:
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {e["path"] for e in manifest["files"]}
    on_disk = {p.name for p in root.iterdir() if p.is_file() and p.name != "manifest.json"}
    assert listed == on_disk, (listed, on_disk)
    for e in manifest["files"]:
        data = (root / e["path"]).read_bytes()
        assert e["bytes"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest(), e["path"]
    assert manifest["counts"]["bytes"] == sum(e["bytes"] for e in manifest["files"])
    assert manifest["library_versions"]["numpy"] == np.__version__
    return manifest


# ------------------------------------------------------------------------------ export
def test_export_round_trip_parquet_npz_hdf5(conn, store, iq_ds, cli, tmp_path):
    stored = iq_by_index(conn, store, iq_ds)          # sha-checked bytes straight from S3
    seed, cfg = conn.execute("SELECT seed, config FROM heimdall.synthetic_datasets WHERE id = %s",
                             (iq_ds,)).fetchone()

    # parquet: features only
    out = ok(cli("export", "field test/1", "--format", "parquet", "--out", str(tmp_path / "pq")))
    root = tmp_path / "pq" / "field_test_1"
    assert str(root) in out and "features.parquet" in out and f"({N})" in out
    manifest = assert_manifest_matches_files(root)
    assert [e["path"] for e in manifest["files"]] == ["features.parquet", "DATASET_CARD.md"]
    assert_features_equal_postgres(root / "features.parquet", conn, iq_ds, 0, N)
    assert manifest["dataset"] == {**manifest["dataset"], "id": str(iq_ds), "name": "field test/1",
                                   "type": "iq_raw", "seed": seed, "config": cfg}
    assert manifest["dataset"]["generator_version"]
    assert manifest["range"] == {"first_idx": 0, "stop_idx": N, "last_idx": N - 1}
    assert manifest["counts"]["samples"] == N and manifest["iq"] is None
    from worker import __version__
    assert manifest["code_version"] == __version__

    # npz: shards of 25 cross the 40-sample object boundaries; --json prints the manifest
    out = ok(cli("export", str(iq_ds), "--format", "npz", "--out", str(tmp_path / "npz"),
                 "--shard-size", "25", "--json"))
    root = tmp_path / "npz" / "field_test_1"
    printed = json.loads(out)
    manifest = assert_manifest_matches_files(root)
    assert printed == manifest
    shards = [e for e in manifest["files"] if e["kind"] == "iq"]
    assert [(e["first_idx"], e["last_idx"]) for e in shards] == [(0, 24), (25, 49), (50, 74), (75, 89)]
    assert shards[0]["path"] == "iq_0000000000-0000000024.npz"
    assert manifest["iq"]["receivers"] == 7 and manifest["iq"]["length"] == 2000
    assert manifest["iq"]["dtype"] == "complex64" and manifest["iq"]["sample_rate_hz"] == 50000
    assert_features_equal_postgres(root / "features.parquet", conn, iq_ds, 0, N)
    nrx = dict(conn.execute("SELECT sample_idx, num_receivers FROM heimdall.measurement_features "
                            "WHERE dataset_id = %s", (iq_ds,)).fetchall())
    seen = []
    for e in shards:
        with np.load(root / e["path"], allow_pickle=False) as z:
            iq, idx = z["iq"], z["sample_idx"]
            assert iq.dtype == np.complex64 and iq.shape == (e["samples"], 7, 2000)
            assert idx.tolist() == list(range(e["first_idx"], e["last_idx"] + 1))
            assert z["num_receivers"].tolist() == [nrx[i] for i in idx.tolist()]
            for k, i in enumerate(idx.tolist()):
                assert iq[k].tobytes() == stored[i], f"npz IQ of sample {i} differs from S3"
                seen.append(i)
    assert seen == list(range(N))

    # hdf5: one file, chunked per sample
    ok(cli("export", "field test/1", "--format", "hdf5", "--out", str(tmp_path / "h5")))
    root = tmp_path / "h5" / "field_test_1"
    manifest = assert_manifest_matches_files(root)
    assert sorted(e["path"] for e in manifest["files"]) == ["DATASET_CARD.md", "features.parquet", "iq.h5"]
    with h5py.File(root / "iq.h5", "r") as h5:
        iq = h5["iq"]
        assert iq.dtype == np.complex64 and iq.shape == (N, 7, 2000) and iq.chunks == (1, 7, 2000)
        assert h5["sample_idx"][:].tolist() == list(range(N))
        assert h5.attrs["dataset_id"] == str(iq_ds) and h5.attrs["sample_rate_hz"] == 50000
        data = iq[:]
    for i in range(N):
        assert data[i].tobytes() == stored[i], f"hdf5 IQ of sample {i} differs from S3"


def test_export_range_overwrite_and_prefix(conn, store, iq_ds, cli, tmp_path):
    stored = iq_by_index(conn, store, iq_ds)
    out = tmp_path / "x"
    ok(cli("export", "field test/1", "--format", "npz", "--range", "30:75", "--out", str(out)))
    root = out / "field_test_1"
    manifest = assert_manifest_matches_files(root)
    assert manifest["range"] == {"first_idx": 30, "stop_idx": 75, "last_idx": 74}
    assert_features_equal_postgres(root / "features.parquet", conn, iq_ds, 30, 75)
    with np.load(root / "iq_0000000030-0000000074.npz") as z:
        assert z["sample_idx"].tolist() == list(range(30, 75))
        assert [z["iq"][k].tobytes() for k in range(45)] == [stored[i] for i in range(30, 75)]

    # an existing export is not silently mixed with a new one
    fails(cli("export", "field test/1", "--format", "npz", "--out", str(out)), "--overwrite")
    # --overwrite with other shards: the old ones the new manifest does not list are gone
    ok(cli("export", "field test/1", "--format", "npz", "--range", "60:", "--shard-size", "20",
           "--out", str(out), "--overwrite"))
    manifest = assert_manifest_matches_files(root)
    assert [e["path"] for e in manifest["files"]] == [
        "features.parquet", "iq_0000000060-0000000079.npz", "iq_0000000080-0000000089.npz", "DATASET_CARD.md"]

    # a hole at 50..59: the default export stops at the committed prefix, a range across
    # the hole is refused, a range after it is fine
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")     # bypass the triggers
        conn.execute("DELETE FROM heimdall.measurement_features WHERE dataset_id = %s "
                     "AND sample_idx BETWEEN 50 AND 59", (iq_ds,))
        conn.execute("DELETE FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s "
                     "AND sample_idx BETWEEN 50 AND 59", (iq_ds,))
    printed = json.loads(ok(cli("export", "field test/1", "--out", str(tmp_path / "gap"), "--json")))
    assert printed["range"] == {"first_idx": 0, "stop_idx": 50, "last_idx": 49}
    assert pq.read_table(tmp_path / "gap" / "field_test_1" / "features.parquet").num_rows == 50
    fails(cli("export", "field test/1", "--range", "40:70", "--out", str(tmp_path / "gap2")),
          "40:70", "not fully committed", "20 of 30", "0:50")
    printed = json.loads(ok(cli("export", "field test/1", "--range", "60:90", "--format", "hdf5",
                                "--out", str(tmp_path / "gap3"), "--json")))
    assert printed["counts"]["samples"] == 30


def test_export_bad_input_is_one_line_exit_1(conn, store, iq_ds, spawn_worker, cli, tmp_path):
    out = str(tmp_path / "bad")
    fails(cli("export", "no-such-dataset", "--out", out), "no-such-dataset", "does not exist")
    fails(cli("export", "field test/1", "--range", "banana", "--out", out), "--range", "A:B")
    fails(cli("export", "field test/1", "--range", "20:10", "--out", out), "empty")
    fails(cli("export", "field test/1", "--range", "80:200", "--out", out),
          "80:200", "not fully committed", "10 of 120")
    create(conn, "empty", n=0)
    fails(cli("export", "empty", "--out", out), "no committed samples")
    create(conn, "flat", n=20, dataset_type="feature_based")
    finish(spawn_worker("--until-idle"))
    fails(cli("export", "flat", "--format", "npz", "--out", out), "feature_based", "--format parquet")
    ok(cli("export", "flat", "--out", out))                                  # parquet is fine
    assert not any(p.name.endswith(".tmp") for p in Path(out).rglob("*"))
    # argparse usage errors stay exit 2
    assert cli("export", "field test/1", "--format", "csv").returncode == 2


def test_export_refuses_corrupt_or_missing_iq(conn, store, iq_ds, cli, tmp_path):
    key, off = conn.execute("SELECT object_key, byte_offset FROM heimdall.synthetic_iq_samples "
                            "WHERE dataset_id = %s AND sample_idx = 45", (iq_ds,)).fetchone()
    blob = bytearray(store.get(key))
    blob[off + 100] ^= 0xFF                                   # one flipped byte in sample 45
    store.put(key, bytes(blob))
    out = tmp_path / "c"
    fails(cli("export", "field test/1", "--format", "npz", "--out", str(out)), "sample 45", "corrupt")
    # nothing half-written stays behind, in particular no manifest vouching for it
    assert [p.name for p in (out / "field_test_1").iterdir()] == []
    # parquet does not touch IQ
    ok(cli("export", "field test/1", "--format", "parquet", "--out", str(out)))

    store.remove([key])
    fails(cli("export", "field test/1", "--format", "hdf5", "--range", "0:60", "--out", str(tmp_path / "m")),
          "samples 40-59", key)


# ------------------------------------------------------------------------------ training
def test_heimdall_dataset_items_equal_stored_data(conn, db_url, store, spawn_worker):
    ds = create(conn, "random-rx", n=60, config=RANDOM_RX, seed=3)
    finish(spawn_worker("--until-idle"))
    stored = iq_by_index(conn, store, ds)
    rows = {r["sample_idx"]: r for r in pg_features(conn, ds)}
    assert len({r["num_receivers"] for r in rows.values()}) > 1      # receivers really vary

    data = HeimdallDataset("random-rx", db_url, store, cache_size=8)
    assert len(data) == 60 and data.r_max == 6 and data.iq_length == 2000
    for i in (0, 17, 59, -1):
        item = data[i]
        idx = i % 60
        r = rows[idx]
        nr = r["num_receivers"]
        assert int(item["sample_idx"]) == idx
        assert {k: (v.dtype, v.shape) for k, v in item.items()} == {
            "iq": (np.float32, (6, 2, 2000)), "rx_positions": (np.float32, (6, 3)),
            "mask": (np.bool_, (6,)), "features": (np.float32, (6, len(FEATURE_NAMES))),
            "target": (np.float32, (3,)), "sample_idx": (np.int64, ())}
        assert item["mask"].tolist() == [k < nr for k in range(6)]
        c = np.frombuffer(stored[idx], dtype=np.complex64).reshape(6, 2000)
        assert np.array_equal(item["iq"][:nr, 0], c[:nr].real) and np.array_equal(item["iq"][:nr, 1], c[:nr].imag)
        assert not item["iq"][nr:].any() and not item["features"][nr:].any()
        assert np.array_equal(item["rx_positions"][:nr],
                              np.array([r["rx_lat"], r["rx_lon"], r["rx_alt_m"]], np.float32).T)
        assert np.array_equal(item["target"], np.array([r["tx_lat"], r["tx_lon"], r["tx_alt_m"]], np.float32))
        for f, name in enumerate(FEATURE_NAMES):
            want = np.array(r[name], dtype=np.float64).astype(np.float32)
            assert same_value(want, item["features"][:nr, f], "float4"), name
    with pytest.raises(IndexError):
        data[60]
    with pytest.raises(ValueError, match="drop receivers"):
        HeimdallDataset("random-rx", db_url, store, max_receivers=5)
    assert HeimdallDataset("random-rx", db_url, store, max_receivers=8)[0]["iq"].shape == (8, 2, 2000)

    # a range; picklable (spawned DataLoader workers) and usable after fork (forked ones)
    part = HeimdallDataset(str(ds), db_url, store, index_range=(10, 30))
    assert len(part) == 20 and int(part[0]["sample_idx"]) == 10
    clone = pickle.loads(pickle.dumps(part))
    assert np.array_equal(clone[5]["iq"], part[5]["iq"])
    want = [float(part[i]["iq"].astype(np.float64).sum()) for i in range(4)]   # parent's client in use
    assert part._pid == os.getpid() and part._store is store
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:                        # arguments are pickled: the spawn path
        assert pool.map(_iq_sum, [(part, i) for i in range(4)]) == want
    global _INHERITED
    _INHERITED = part
    try:
        with ctx.Pool(2) as pool:                    # inherited through fork, never pickled
            assert pool.map(_inherited_iq_sum, range(4)) == want
    finally:
        _INHERITED = None
    with pytest.raises(Exception, match="not fully committed"):
        HeimdallDataset(str(ds), db_url, store, index_range=(50, 70))


_INHERITED: HeimdallDataset | None = None
_PARENT_PID = os.getpid()


def _iq_sum(arg):
    data, i = arg
    return float(data[i]["iq"].astype(np.float64).sum())


def _inherited_iq_sum(i):
    assert _INHERITED is not None and os.getpid() != _PARENT_PID
    value = float(_INHERITED[i]["iq"].astype(np.float64).sum())
    assert _INHERITED._pid == os.getpid()             # noticed the fork: its own client and cache
    return value


def test_heimdall_dataset_never_turns_missing_iq_into_zeros(conn, db_url, store, iq_ds):
    data = HeimdallDataset(str(iq_ds), db_url, store, cache_size=0)
    assert len(data) == N
    key = conn.execute("SELECT object_key FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s "
                       "AND sample_idx = 45", (iq_ds,)).fetchone()[0]
    before = data[45]["iq"]
    assert np.abs(before).sum() > 0
    blob = bytearray(store.get(key))
    blob[-1] ^= 0x01                                  # last byte of the object: sample 79
    store.put(key, bytes(blob))
    with pytest.raises(IQIntegrityError, match="sample 79 is corrupt"):
        data[79]
    store.remove([key])
    with pytest.raises(IQIntegrityError, match=f"sample 45.*{key}"):
        data[45]
    assert data[10]["iq"].shape == (7, 2, 2000)               # other objects still read


def test_heimdall_dataset_feature_based_and_empty(conn, db_url, store, spawn_worker):
    create(conn, "flat", n=30, dataset_type="feature_based")
    create(conn, "nothing", n=0)
    finish(spawn_worker("--until-idle"))
    data = HeimdallDataset("flat", db_url)           # no store needed without IQ
    assert len(data) == 30 and "iq" not in data[3] and data[3]["features"].shape == (7, len(FEATURE_NAMES))
    assert data[3]["mask"].all()
    with pytest.raises(Exception, match="no committed samples"):
        HeimdallDataset("nothing", db_url)
    with pytest.raises(Exception, match="does not exist"):
        HeimdallDataset("missing", db_url)


def test_heimdall_dataset_with_torch_dataloader(db_url, store, iq_ds):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    data = HeimdallDataset(str(iq_ds), db_url, store)
    batches = list(DataLoader(data, batch_size=16, num_workers=2, shuffle=False))
    assert sum(len(b["sample_idx"]) for b in batches) == N
    first = batches[0]
    assert first["iq"].dtype == torch.float32 and tuple(first["iq"].shape) == (16, 7, 2, 2000)
    assert torch.equal(first["iq"][3], torch.from_numpy(data[3]["iq"]))


# ------------------------------------------------------------------------------ plots
def test_plot_writes_nontrivial_pngs(conn, iq_ds, cli, tmp_path):
    import matplotlib.image as mpimg

    out = ok(cli("plot", "field test/1", "--out", str(tmp_path), "--sample", "12"))
    paths = [Path(p) for p in out.split()]
    names = sorted(p.name for p in paths)
    assert names == ["gdop.png", "map.png", "receivers_detected.png", "sample_000012_constellation.png",
                     "sample_000012_spectrogram.png", "snr_by_receiver.png"]
    for p in paths:
        assert p.parent == tmp_path / "field_test_1" / "plots"
        assert p.stat().st_size > 15_000, (p.name, p.stat().st_size)
        img = mpimg.imread(p)
        assert img.shape[0] >= 400 and img.shape[1] >= 600, (p.name, img.shape)
        # not a blank canvas: a real plot has many distinct colors
        assert len(np.unique(img.reshape(-1, img.shape[-1])[::7], axis=0)) > 50, p.name
    fails(cli("plot", "field test/1", "--out", str(tmp_path), "--sample", "500"), "500:501")
    fails(cli("plot", "nope", "--out", str(tmp_path)), "does not exist")


def test_plot_feature_based_dataset_has_no_sample_plots(conn, spawn_worker, cli, tmp_path):
    create(conn, "flat", n=40, dataset_type="feature_based")
    finish(spawn_worker("--until-idle"))
    out = ok(cli("plot", "flat", "--out", str(tmp_path)))
    assert sorted(Path(p).name for p in out.split()) == ["gdop.png", "map.png", "receivers_detected.png",
                                                         "snr_by_receiver.png"]
    fails(cli("plot", "flat", "--out", str(tmp_path), "--sample", "0"), "feature_based")
