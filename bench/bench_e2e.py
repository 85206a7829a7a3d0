"""End-to-end benchmark: real worker processes against a local PostgreSQL and moto_server.

Prints samples/s and MB/s for feature_based and iq_raw datasets with 1 and 2 worker
processes, the time split by stage (generate, upload, commit; summed over chunks from the
workers' structured logs), and the time to validate a healthy dataset of --validate-n
samples (SQL checks + one LIST; and --deep, hashing every sample).

    .venv/bin/python bench/bench_e2e.py [--samples 1000] [--repeats 3] [--validate-n 10000]

Figures are medians over --repeats runs, measured in one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker import db  # noqa: E402
from worker.localservices import LocalPostgres, LocalS3  # noqa: E402
from worker.storage import ObjectStore  # noqa: E402
from worker.validate import validate  # noqa: E402


def run_workers(env: dict[str, str], n: int) -> tuple[float, dict[str, float], int]:
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "worker", "--until-idle", "--poll", "0.05"], env=env,
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=100)
    ap.add_argument("--validate-n", type=int, default=10000)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".venv/numba-cache").resolve()))
    with LocalPostgres() as pg, LocalS3() as s3:
        db.upgrade(pg.url)
        env = {**os.environ, "HEIMDALL_DATABASE_URL": pg.url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
               "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
               "HEIMDALL_S3_BUCKET": "bench"}
        store = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "bench")
        store.ensure_bucket()
        with psycopg.connect(pg.url, autocommit=True) as conn:
            # warm the numba cache so compile time is not in the figures
            conn.execute("SELECT heimdall.create_dataset('warmup', 'iq_raw', %s, 1, 20)",
                         (Jsonb({"chunk_size": 20}),))
            run_workers(env, 1)
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


if __name__ == "__main__":
    main()
