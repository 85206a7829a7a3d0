"""Commit-path benchmark: a worker's commit transaction in revision 0001 (COPY straight
into the sample tables) against head (COPY into the session's staging tables, then
complete_chunk checks every row lies in the claimed chunk and moves them), same server,
same rows, same run.

    .venv/bin/python bench/bench_commit.py [--chunks 40] [--chunk-size 100]

Rows are real RF-core feature rows (generated once, re-indexed per chunk) plus IQ pointer
rows; only the commit transaction is timed. Prints medians per chunk and their ratio
(the hardening issue asks for head <= 1.2 x 0001).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from heimdall_synth.localservices import LocalPostgres  # noqa: E402
from worker import db  # noqa: E402
from worker.config import GenerationConfig  # noqa: E402
from worker.rf import generate_samples  # noqa: E402
from worker.rows import (  # noqa: E402
    FEATURE_COLUMNS,
    IQ_COLUMNS,
    STAGE_FEATURES,
    STAGE_IQ,
    feature_rows,
    iq_rows,
)
from worker.storage import encode_chunk  # noqa: E402


def copy_into(conn, table: str, columns, rows) -> None:
    """0001's COPY: straight into heimdall.<table>."""
    stmt = sql.SQL("COPY heimdall.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types([t for _, t in columns])
        for row in rows:
            copy.write_row(row)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--chunk-size", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".venv/numba-cache").resolve()))
    n = args.chunk_size
    with LocalPostgres() as pg:
        base = pg.url.rsplit("/", 1)[0]
        with db.Database(pg.url).connect() as admin:
            admin.execute("CREATE DATABASE rev0001")
            admin.execute("CREATE DATABASE revhead")
        urls = {"0001": f"{base}/rev0001", "head": f"{base}/revhead"}
        db.upgrade(urls["0001"], "0001")
        db.upgrade(urls["head"], "head")
        conns = {k: db.Database(u).connect() for k, u in urls.items()}
        cfg_json = conns["head"].execute("SELECT heimdall.normalize_config(%s)",
                                         (Jsonb({"chunk_size": n}),)).fetchone()[0]
        batch = generate_samples(GenerationConfig.from_normalized(cfg_json), 1, 0, n, want_iq=True)
        enc = encode_chunk(batch.iq)
        batch.iq = None
        ds = {k: c.execute("SELECT heimdall.create_dataset('bench', 'iq_raw', %s, 1, %s)",
                           (Jsonb({"chunk_size": n}), n * args.chunks)).fetchone()[0] for k, c in conns.items()}
        times: dict[str, list[float]] = {"0001": [], "head": []}
        for _ in range(args.chunks):
            for rev in ("0001", "head"):          # interleaved: both see the same machine noise
                c = conns[rev]
                if rev == "0001":
                    job = c.execute("SELECT chunk_id, msg_id, first_idx FROM heimdall.claim_chunk('b', 60, 5)").fetchone()
                else:
                    job = c.execute("SELECT chunk_id, claim_token, first_idx "
                                    "FROM heimdall.claim_chunk('b', 60, 5, 'bench')").fetchone()
                b = dataclasses.replace(batch, sample_idx=np.arange(job[2], job[2] + n))
                t0 = time.perf_counter()
                with c.transaction():
                    if rev == "0001":
                        c.execute("SELECT heimdall.begin_chunk_commit(%s)", (job[0],))
                        copy_into(c, "measurement_features", FEATURE_COLUMNS, feature_rows(ds[rev], b))
                        copy_into(c, "synthetic_iq_samples", IQ_COLUMNS, iq_rows(ds[rev], b, "k", enc, 50000))
                    else:
                        c.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (job[0], job[1]))
                        db.copy_rows(c, STAGE_FEATURES, FEATURE_COLUMNS, feature_rows(ds[rev], b))
                        db.copy_rows(c, STAGE_IQ, IQ_COLUMNS, iq_rows(ds[rev], b, "k", enc, 50000))
                    assert c.execute("SELECT heimdall.complete_chunk(%s, %s, 'bench')", (job[0], job[1])).fetchone()[0]
                times[rev].append(time.perf_counter() - t0)
        for c in conns.values():
            c.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"commit of one chunk of {n} iq_raw samples (features + IQ pointers), median of {args.chunks}:")
    print(f"  0001 (COPY into the tables)                       {med['0001']:7.2f} ms")
    print(f"  head (COPY into staging, checked move in complete) {med['head']:7.2f} ms")
    print(f"  ratio head / 0001                                  {med['head'] / med['0001']:7.2f}")


if __name__ == "__main__":
    main()
