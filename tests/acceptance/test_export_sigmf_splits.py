"""SigMF export and stable splits (issue 13 items 2 and 3) against real Postgres, a real S3
server and datasets made by real worker processes.

SigMF: every file of ``export --format sigmf`` loads with the sigmf package, its metadata
passes SigMF's schema, the samples equal the dataset's stored IQ bit for bit, and the
metadata says what the database says (receiver positions, emitter truth, estimates).
Splits: ``export --split`` and ``HeimdallDataset(split=...)`` hold exactly the samples the
SQL rule puts in the split, with their stored bytes, and expanding the dataset moves none.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from heimdall_synth import HeimdallDataset
from heimdall_synth.sigmf_export import ESTIMATED, check_collection
from heimdall_synth.splits import SPLITS, fractions_of, indices_in_split, split_of
from tests.acceptance.checks import iq_by_index
from tests.acceptance.conftest import finish, worker_env

sigmf = pytest.importorskip("sigmf")

# complex64 storage (ci16_le, the default since revision 0004: tests/acceptance/test_iq_ci16.py)
SMALL = {"chunk_size": 40, "duration_ms": 20, "iq_dtype": "complex64"}  # 1,000 IQ per receiver
# random layouts: 3 to 6 receivers per sample, so the stored IQ has padding rows
RANDOM_RX = {**SMALL, "receivers": {"mode": "random", "count_min": 3, "count_max": 6,
                                    "area": {"lat_min": 44.5, "lat_max": 45.5, "lon_min": 7.0, "lon_max": 8.5},
                                    "alt_m": 150}}


def create(conn, name, n, config, seed=7, dataset_type="iq_raw"):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, dataset_type, Jsonb(config), seed, n)).fetchone()[0]


@pytest.fixture
def cli(db_url, s3_server, bucket):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                              env=worker_env(db_url, s3_server, bucket), timeout=300)
    return run


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def rows_by_idx(conn, ds) -> dict[int, dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT f.*, q.shape, q.dtype, q.sample_rate_hz FROM heimdall.measurement_features f "
                    "JOIN heimdall.synthetic_iq_samples q USING (dataset_id, sample_idx) "
                    "WHERE f.dataset_id = %s ORDER BY f.sample_idx", (ds,))
        return {r["sample_idx"]: r for r in cur.fetchall()}


def sql_split(conn, ds) -> dict[int, str]:
    return dict(conn.execute("SELECT sample_idx, split FROM heimdall.sample_splits WHERE dataset_id = %s",
                             (ds,)).fetchall())


def same(a, b) -> bool:
    """A JSON value of the export equals a database value (NaN and infinity were written as null)."""
    if b is None or (isinstance(b, float) and not math.isfinite(b)):
        return a is None
    return a == b


# ------------------------------------------------------------------------------ SigMF
def test_sigmf_export_loads_validates_and_equals_the_stored_iq(conn, store, spawn_worker, cli, tmp_path):
    n = 12
    ds = create(conn, "sigmf rx", n, {**RANDOM_RX, "splits": {"train": 0.5, "val": 0.5}})
    finish(spawn_worker("--until-idle"))
    out = json.loads(ok(cli("export", "sigmf rx", "--format", "sigmf", "--out", str(tmp_path), "--json")))
    root = tmp_path / "sigmf_rx"
    iq = iq_by_index(conn, store, ds)
    rows = rows_by_idx(conn, ds)
    splits = sql_split(conn, ds)
    seed, name = 7, "sigmf rx"
    # the manifest vouches for every file it lists, and lists every file there is
    listed = {e["path"]: e for e in out["files"]}
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == on_disk
    assert out["format"] == "sigmf" and out["counts"]["samples"] == n and out["split"]["name"] is None
    padded = 0
    for idx in range(n):
        row = rows[idx]
        nr, (r_stored, length) = row["num_receivers"], row["shape"]
        padded += r_stored > nr
        stored = np.frombuffer(iq[idx], "<c8").reshape(r_stored, length)
        folder = root / "sigmf" / f"{idx:010d}"
        coll = sigmf.fromfile(folder / f"{idx:010d}.sigmf-collection")     # verifies every stream's hash
        assert isinstance(coll, sigmf.SigMFCollection)
        check_collection(coll._metadata)
        names = coll.get_stream_names()
        assert names == [f"{idx:010d}_rx{k:02d}" for k in range(nr)]      # padding rows are not written
        assert len(list(folder.glob("*.sigmf-data"))) == nr
        info = coll.get_collection_info()
        assert info["heimdall:receiver_ids"] == row["receiver_ids"] and info["heimdall:split"] == splits[idx]
        assert same(info["heimdall:sample"]["gdop"], row["gdop"]) and info["heimdall:sample_idx"] == idx
        for k, stream in enumerate(names):
            rec = coll.get_SigMFFile(stream_name=stream)                  # verifies core:sha512
            rec.validate()                                                # SigMF's schema
            g = rec.get_global_info()
            assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == row["sample_rate_hz"]
            assert g["core:geolocation"] == {"type": "Point", "coordinates": [row["rx_lon"][k], row["rx_lat"][k],
                                                                              row["rx_alt_m"][k]]}
            assert g["heimdall:receiver_id"] == row["receiver_ids"][k] and g["heimdall:dataset_name"] == name
            assert g["heimdall:seed"] == seed and g["heimdall:split"] == splits[idx]
            cap = rec.get_captures()
            assert len(cap) == 1 and cap[0]["core:frequency"] == row["frequency_hz"]
            assert cap[0]["core:datetime"].endswith("Z")
            truth, est = rec.get_annotations()
            emitter = truth["signal:emitter"]
            assert emitter["seid"] == idx and emitter["power_tx"] == row["tx_power_dbm"]
            assert emitter["geolocation"] == {"type": "Point",
                                              "coordinates": [row["tx_lon"], row["tx_lat"], row["tx_alt_m"]]}
            assert truth["core:label"] == row["signal_kind"] and truth["core:sample_count"] == length
            assert same(truth["heimdall:truth"]["true_tdoa_s"], row["true_tdoa_s"][k])
            for c in ESTIMATED:
                want = None if row[c] is None else row[c][k]
                assert same(est["heimdall:estimated"][c], want), (idx, k, c)
            samples = rec.read_samples()
            assert samples.dtype == np.complex64 and samples.tobytes() == stored[k].tobytes()   # bit for bit
            assert (folder / f"{stream}.sigmf-data").read_bytes() == stored[k].tobytes()
    assert padded > 0            # the layout did produce padding rows, and they were left out

    # --sigmf-archive: the same recordings, one .sigmf archive each, read by sigmf directly
    arc = json.loads(ok(cli("export", "sigmf rx", "--format", "sigmf", "--sigmf-archive", "--out",
                            str(tmp_path / "arc"), "--json")))
    assert {e["kind"] for e in arc["files"]} >= {"sigmf-archive", "sigmf-collection"}
    assert "sigmf-data" not in {e["kind"] for e in arc["files"]}
    for idx in (0, n - 1):
        folder = tmp_path / "arc" / "sigmf_rx" / "sigmf" / f"{idx:010d}"
        coll = sigmf.fromfile(folder / f"{idx:010d}.sigmf-collection")
        stored = np.frombuffer(iq[idx], "<c8").reshape(rows[idx]["shape"])
        for k, stream in enumerate(coll.get_stream_names()):
            rec = sigmf.fromfile(folder / f"{stream}.sigmf")                  # verifies core:sha512
            rec.validate()
            assert rec.read_samples().tobytes() == stored[k].tobytes()
    r = cli("export", "sigmf rx", "--format", "npz", "--sigmf-archive", "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "--sigmf-archive goes with --format sigmf" in r.stderr, r.stderr


def test_a_feature_based_dataset_has_no_sigmf(conn, spawn_worker, cli, tmp_path):
    create(conn, "features only", 5, SMALL, dataset_type="feature_based")
    finish(spawn_worker("--until-idle"))
    r = cli("export", "features only", "--format", "sigmf", "--out", str(tmp_path))
    assert r.returncode == 1 and "as sigmf; use --format parquet" in r.stderr, r.stderr
    assert not list(tmp_path.rglob("*.sigmf-meta"))


# ------------------------------------------------------------------------------ splits
def test_split_exports_and_loader_survive_expansion(conn, db_url, store, spawn_worker, cli, tmp_path):
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    ds = create(conn, "grows", 60, {**SMALL, "splits": fractions}, seed=31)
    finish(spawn_worker("--until-idle"))
    before = sql_split(conn, ds)
    assert before == {i: split_of(31, i, fractions) for i in range(60)}

    # export --split val: exactly the val samples, IQ bit for bit (npz and hdf5)
    val = [i for i, s in sorted(before.items()) if s == "val"]
    assert val == list(indices_in_split(31, 0, 60, "val", fractions))
    man = json.loads(ok(cli("export", "grows", "--format", "npz", "--split", "val", "--shard-size", "5",
                            "--out", str(tmp_path / "a"), "--json")))
    assert man["split"] == {"name": "val", "fractions": fractions, "rule": "heimdall.split_of"}
    assert man["counts"]["samples"] == len(val)
    root = tmp_path / "a" / "grows"
    assert pq.read_table(root / "features.parquet").column("sample_idx").to_pylist() == val
    iq = iq_by_index(conn, store, ds)
    got_idx, got_iq = [], []
    for shard in sorted(root.glob("iq_*.npz")):
        with np.load(shard) as z:
            got_idx += z["sample_idx"].tolist()
            got_iq += [z["iq"][k].tobytes() for k in range(len(z["sample_idx"]))]
    assert got_idx == val and got_iq == [iq[i] for i in val]
    ok(cli("export", "grows", "--format", "hdf5", "--split", "val", "--out", str(tmp_path / "h")))
    import h5py
    with h5py.File(tmp_path / "h" / "grows" / "iq.h5") as h5:
        assert h5["sample_idx"][:].tolist() == val
        assert [h5["iq"][k].tobytes() for k in range(len(val))] == [iq[i] for i in val]
        assert h5.attrs["split"] == "val"

    # the loader: the three splits partition the dataset, each item is its stored sample
    loaders = {s: HeimdallDataset("grows", db_url, store, split=s) for s in SPLITS}
    assert sorted(i for d in loaders.values() for i in d.sample_indices.tolist()) == list(range(60))
    for s, d in loaders.items():
        assert d.sample_indices.tolist() == [i for i, x in sorted(before.items()) if x == s]
        assert len(d) == len(d.sample_indices)
        for k in range(len(d)):
            item = d[k]
            idx = int(item["sample_idx"])
            assert before[idx] == s
            c = np.frombuffer(iq[idx], "<c8").reshape(-1, 1000)
            assert np.array_equal(item["iq"][:c.shape[0], 0], c.real) and np.array_equal(item["iq"][:c.shape[0], 1],
                                                                                         c.imag)

    # expand: no earlier sample changes split; the new ones follow the same rule
    conn.execute("SELECT heimdall.expand_dataset(%s, 40)", (ds,))
    finish(spawn_worker("--until-idle"))
    after = sql_split(conn, ds)
    assert len(after) == 100 and {i: after[i] for i in before} == before
    cfg = conn.execute("SELECT config FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert after == {i: split_of(31, i, fractions_of(cfg)) for i in range(100)}
    man2 = json.loads(ok(cli("export", "grows", "--split", "val", "--out", str(tmp_path / "b"), "--json")))
    val2 = pq.read_table(tmp_path / "b" / "grows" / "features.parquet").column("sample_idx").to_pylist()
    assert val2[:len(val)] == val and set(val2) - set(val) == {i for i in range(60, 100) if after[i] == "val"}
    assert man2["counts"]["samples"] == len(val2)
    grown = HeimdallDataset("grows", db_url, store, split="val")
    assert grown.sample_indices.tolist() == val2


def test_split_errors_are_one_line(conn, spawn_worker, cli, tmp_path):
    create(conn, "all train", 10, {**SMALL, "splits": {"train": 1}}, dataset_type="feature_based")
    finish(spawn_worker("--until-idle"))
    r = cli("export", "all train", "--split", "test", "--out", str(tmp_path))
    assert r.returncode == 1 and "no sample" in r.stderr and "'test'" in r.stderr, r.stderr
    assert "\n" not in r.stderr.strip()
    r = cli("export", "all train", "--split", "holdout", "--out", str(tmp_path))
    assert r.returncode == 2 and "--split" in r.stderr
    with pytest.raises(ValueError):
        HeimdallDataset("all train", conn=conn, split="validation")
    assert len(HeimdallDataset("all train", conn=conn, split="train")) == 10
    assert not (Path(tmp_path) / "all_train" / "manifest.json").exists()
