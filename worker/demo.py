"""``heimdall-synth demo``: the whole life of a dataset on this machine, in one command.

Starts a throwaway PostgreSQL (as the ``postgres`` user when run as root) and a local S3
server (SeaweedFS, random credentials) on free loopback ports, migrates, creates an ``iq_raw`` dataset, runs worker
processes, expands it twice, validates, exports, plots, prints a summary and stops what
it started (also on Ctrl-C or error). ``--keep`` leaves the services running.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import db, queries
from .localservices import LocalPostgres, LocalS3


def _step(msg: str) -> None:
    # progress goes to stderr so that --json keeps stdout machine-readable
    print(f"==> {msg}", file=sys.stderr, flush=True)


def _cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"`heimdall-synth {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _run_workers(env: dict[str, str], n: int, log_dir: Path) -> float:
    t0 = time.monotonic()
    procs = []
    for k in range(n):
        log = open(log_dir / f"worker-{k}.log", "a")
        procs.append((subprocess.Popen([sys.executable, "-m", "worker", "--until-idle", "--poll", "0.1"],
                                       env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for p, _ in procs:
            if p.wait() != 0:
                raise RuntimeError(f"a worker exited with {p.returncode}: see {log_dir}")
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
            log.close()
    return time.monotonic() - t0


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pg = s3 = None
    summary: dict[str, Any] = {"out": str(out)}
    try:
        _step("starting PostgreSQL and a local S3 server on loopback")
        pg = LocalPostgres().start()
        s3 = LocalS3().start()
        url = pg.url
        env = {**os.environ, "HEIMDALL_DATABASE_URL": url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
               "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
               "HEIMDALL_S3_BUCKET": "heimdall-demo", "PYTHONUNBUFFERED": "1"}
        _step("migrating (alembic upgrade head)")
        db.upgrade(url)
        config = {"chunk_size": args.chunk_size}
        if args.duration_ms is not None:
            config["duration_ms"] = args.duration_ms
        sizes = args.samples
        timings = []
        with psycopg.connect(url, autocommit=True) as conn:
            _step(f"creating iq_raw dataset 'demo' with {sizes[0]} samples")
            ds = queries.one(conn, "create_dataset", name="demo", dataset_type="iq_raw", config=Jsonb(config),
                             seed=args.seed, num_samples=sizes[0])["id"]
            for k, n in enumerate(sizes):
                if k > 0:
                    _step(f"expanding by {n} samples")
                    queries.one(conn, "expand_dataset", dataset_id=ds, n=n)
                _step(f"running {args.workers} workers until idle")
                secs = _run_workers(env, args.workers, out)
                timings.append((n, secs))
                _step(f"    {n} samples in {secs:.1f} s ({n / secs:.1f} samples/s incl. worker start-up)")
            h = queries.one(conn, "dataset_health", dataset_id=ds)
            health = (h["num_samples"], h["feature_rows"], h["iq_rows"], h["ready_prefix"], h["status"])
        _step("validating (deep: every sample's sha256)")
        v = _cli(env, "validate", "demo", "--deep", "--json", check=False)
        report = json.loads(v.stdout) if v.stdout.strip() else {"status": "error", "issues": v.stderr}
        if report.get("status") != "healthy":
            raise RuntimeError(f"validation is not healthy: {report}")
        _step("exporting (parquet features + npz IQ shards)")
        _cli(env, "export", "demo", "--format", "npz", "--out", str(out), "--overwrite")
        _step("plotting")
        _cli(env, "plot", "demo", "--out", str(out))
        total_n = sum(n for n, _ in timings)
        total_s = sum(s for _, s in timings)
        summary.update({
            "dataset_id": str(ds), "num_samples": health[0], "feature_rows": health[1], "iq_rows": health[2],
            "ready_prefix": health[3], "status": report["status"],
            "samples_per_s": round(total_n / total_s, 1), "export_dir": str(out / "demo"),
            "plots_dir": str(out / "demo" / "plots"), "worker_logs": str(out),
        })
        if args.keep:
            summary["postgres_url"] = url
            summary["psql"] = f"psql {url}"
            summary["s3_endpoint"] = s3.endpoint
            summary["env"] = " ".join(f"{k}={env[k]}" for k in (
                "HEIMDALL_DATABASE_URL", "HEIMDALL_S3_ENDPOINT", "HEIMDALL_S3_ACCESS_KEY",
                "HEIMDALL_S3_SECRET_KEY", "HEIMDALL_S3_BUCKET"))
            # SeaweedFS stops gracefully in ~20 s on SIGTERM; its data is throwaway anyway
            stop_s3 = f"kill -KILL -{s3.proc.pid}; rm -rf {s3.base}"
            pg_ctl = f"{pg.bindir}/pg_ctl -D {pg.datadir} stop"
            summary["stop"] = (f"{stop_s3}; runuser -u postgres -- {pg_ctl}" if os.geteuid() == 0
                               else f"{stop_s3}; {pg_ctl}")
        return summary
    finally:
        if not args.keep:
            if s3 is not None:
                s3.stop()
            if pg is not None:
                pg.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    if len(args.samples) < 1 or any(n <= 0 for n in args.samples):
        raise SystemExit("error: --samples needs positive counts")
    t0 = time.monotonic()
    try:
        summary = run_demo(args)
    except KeyboardInterrupt:
        print("interrupted: services stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: demo failed: {exc}", file=sys.stderr)
        return 1
    summary["elapsed_s"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\nheimdall-synth demo: done")
        for k, v in summary.items():
            print(f"  {k:>14}: {v}")
        if args.keep:
            print("\nservices left running (--keep). Connect with:\n  " + summary["psql"])
            print("and point the CLI at them with:\n  export " + summary["env"])
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    x = sub.add_parser("demo", help="run the whole life of a dataset on local throwaway services",
                       parents=[common])
    x.add_argument("--samples", type=int, nargs="+", default=[50, 100, 200],
                   help="create with the first count, then expand by each of the others (default 50 100 200)")
    x.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    x.add_argument("--chunk-size", type=int, default=50, help="samples per chunk (default 50)")
    x.add_argument("--duration-ms", type=float, default=None, help="IQ length per receiver (default: config default)")
    x.add_argument("--seed", type=int, default=2026)
    x.add_argument("--out", default="heimdall-demo-out", help="where exports, plots and logs go")
    x.add_argument("--keep", action="store_true", help="leave Postgres and S3 running and print how to connect")
    x.set_defaults(func=cmd_demo)
