"""Waiting for requests with a progress bar (tqdm) fed by heimdall.request_progress."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import psycopg
from tqdm import tqdm

from . import queries

FINAL_STATES = ("done", "abandoned", "failed", "paused")


def wait_for_request(conn: psycopg.Connection, request_id: Any, json_mode: bool = False,
                     poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    """Block until the request is done (0) or failed/paused/abandoned (1)."""
    return wait_for_requests(conn, [request_id], json_mode, poll_s, timeout_s)


def wait_for_dataset(conn: psycopg.Connection, dataset_id: Any, json_mode: bool = False,
                     poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    reqs = [r["request_id"] for r in queries.run(conn, "requests_of_dataset", dataset_id=dataset_id)
            if r["state"] not in ("done", "abandoned")]
    return wait_for_requests(conn, reqs, json_mode, poll_s, timeout_s)


def wait_for_requests(conn: psycopg.Connection, request_ids: list[Any], json_mode: bool = False,
                      poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    start = time.monotonic()
    rows = [queries.one(conn, "request_progress", request_id=r) for r in request_ids]
    total = sum(r["num_samples"] for r in rows)
    bar = None if json_mode else tqdm(total=total, unit="samples", file=sys.stderr,
                                      dynamic_ncols=True, desc="generating")
    try:
        while True:
            rows = [queries.one(conn, "request_progress", request_id=r) for r in request_ids]
            done = sum(r["samples_done"] for r in rows)
            if bar is not None:
                bar.update(done - bar.n)
                failed = sum(r["chunks_failed"] for r in rows)
                bar.set_postfix(failed=failed) if failed else None
            if all(r["state"] in FINAL_STATES for r in rows):
                break
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                if bar is not None:
                    bar.close()
                print(f"error: timed out after {timeout_s} s; {done}/{total} samples done", file=sys.stderr)
                return 1
            time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.close()
    if json_mode:
        print(json.dumps(rows, default=str, indent=2))
    bad = [r for r in rows if r["state"] != "done"]
    for r in bad:
        print(f"request {r['request_id']} ended {r['state']}: {r['chunks_failed']} failed, "
              f"{r['chunks_paused']} paused chunks (see `heimdall-synth retry`)", file=sys.stderr)
    return 1 if bad else 0
