"""``heimdall-synth demo``: the whole life of a dataset on this machine, in one command.

Starts a throwaway PostgreSQL (as the ``postgres`` user when run as root) and a local S3
server (SeaweedFS, random credentials) on free loopback ports, migrates, creates an ``iq_raw`` dataset, runs worker
processes, expands it twice, validates, exports, plots, prints a summary and stops what
it started (also on Ctrl-C or error). ``--keep`` leaves the services running.

Needs the ``local`` (SeaweedFS), ``export`` and ``plots`` extras. The summary names what was
started (``services``: ports and data directories), so a caller can check that nothing is
left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from worker import db

from .localservices import GRPC_OFFSET, LocalPostgres, LocalS3, find_weed


def _step(msg: str) -> None:
    # progress goes to stderr so that --json keeps stdout machine-readable
    print(f"==> {msg}", file=sys.stderr, flush=True)


def _cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "heimdall_synth", *args], env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"`heimdall-synth {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _run_workers(env: dict[str, str], n: int, log_dir: Path) -> float:
    t0 = time.monotonic()
    procs = []
    for k in range(n):
        log = open(log_dir / f"worker-{k}.log", "a")
        # the worker container's entry point: settings from the environment only
        procs.append((subprocess.Popen([sys.executable, "-m", "worker"],
                                       env={**env, "HEIMDALL_WORKER_UNTIL_IDLE": "1",
                                            "HEIMDALL_WORKER_POLL_S": "0.1"},
                                       stdout=log, stderr=subprocess.STDOUT), log))
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


def require_demo_libraries() -> None:
    """What the demo needs beyond the core install: SeaweedFS (``local``), pyarrow
    (``export``) and matplotlib (``plots``); MissingExtra / ServiceError naming it."""
    from .export import require_export_libraries
    from .plots import require_plot_libraries

    find_weed()
    require_export_libraries("npz")
    require_plot_libraries()


def run_demo(out: str | Path, samples: list[int], workers: int = 2, chunk_size: int = 50,
             duration_ms: float | None = None, seed: int = 2026, keep: bool = False) -> dict[str, Any]:
    """The whole life of a dataset on throwaway local services (module docstring); returns
    the summary. Raises ValueError for counts that are not positive."""
    if not samples or any(n <= 0 for n in samples):
        raise ValueError("--samples needs positive counts")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pg = s3 = None
    summary: dict[str, Any] = {"out": str(out)}
    try:
        _step("starting PostgreSQL and a local S3 server on loopback")
        pg = LocalPostgres()
        summary["services"] = {"postgres": {"port": pg.port, "data_dir": str(pg.base)}}
        pg.start()
        s3 = LocalS3()
        s3.start()
        summary["services"]["s3"] = {"ports": dict(s3.ports), "grpc_offset": GRPC_OFFSET,
                                     "data_dir": str(s3.base)}
        url = pg.url
        env = {**os.environ, "HEIMDALL_DATABASE_URL": url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
               "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
               "HEIMDALL_S3_BUCKET": "heimdall-demo", "PYTHONUNBUFFERED": "1"}
        _step("migrating (alembic upgrade head)")
        db.upgrade(url)
        config = {"chunk_size": chunk_size}
        if duration_ms is not None:
            config["duration_ms"] = duration_ms
        sizes = samples
        timings = []
        with db.Database(url).connect() as conn:
            _step(f"creating iq_raw dataset 'demo' with {sizes[0]} samples")
            ds = db.one(conn, "create_dataset", name="demo", dataset_type="iq_raw", config=Jsonb(config),
                        seed=seed, num_samples=sizes[0])["id"]
            for k, n in enumerate(sizes):
                if k > 0:
                    _step(f"expanding by {n} samples")
                    db.one(conn, "expand_dataset", dataset_id=ds, n=n)
                _step(f"running {workers} workers until idle")
                secs = _run_workers(env, workers, out)
                timings.append((n, secs))
                _step(f"    {n} samples in {secs:.1f} s ({n / secs:.1f} samples/s incl. worker start-up)")
            h = db.one(conn, "dataset_health", dataset_id=ds)
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
        if keep:
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
        if not keep:
            if s3 is not None:
                s3.stop()
            if pg is not None:
                pg.stop()
