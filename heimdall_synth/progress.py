"""Waiting for requests with a progress bar fed by heimdall.request_progress.

The bar is tqdm's when tqdm is installed (the ``export`` extra brings it), else a plain
line on stderr at most every few seconds: waiting never needs an optional library.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

from worker import db

from .extras import available

FINAL_STATES = ("done", "abandoned", "failed", "paused")


class _PlainBar:
    """The part of tqdm's interface used here, as occasional lines on stderr."""

    EVERY_S = 5.0

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._postfix = ""
        self._shown = 0.0

    def update(self, k: int) -> None:
        self.n += k
        now = time.monotonic()
        if now - self._shown >= self.EVERY_S or self.n >= self.total:
            self._shown = now
            print(f"{self.desc}: {self.n}/{self.total} {self.unit}{self._postfix}", file=sys.stderr, flush=True)

    def set_postfix(self, **kv: Any) -> None:
        self._postfix = "".join(f", {k}={v}" for k, v in kv.items())

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, unit: str = "samples") -> Any:
    """A tqdm bar on stderr, or the plain fallback without tqdm."""
    if available("tqdm"):
        from tqdm import tqdm

        return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, desc=desc)
    return _PlainBar(total, desc, unit)


def progress_callback(total: int, enabled: bool, desc: str) -> Callable[[int | None], None]:
    """``step(k)`` advances a bar by k, ``step(None)`` closes it; a no-op when not enabled."""
    if not enabled:
        return lambda _n: None
    bar = progress_bar(total, desc, unit="sample")

    def step(k: int | None) -> None:
        if k is None:
            bar.close()
        else:
            bar.update(k)
    return step


def wait_for_request(conn: psycopg.Connection, request_id: Any, json_mode: bool = False,
                     poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    """Block until the request is done (0) or failed/paused/abandoned (1)."""
    return wait_for_requests(conn, [request_id], json_mode, poll_s, timeout_s)


def wait_for_dataset(conn: psycopg.Connection, dataset_id: Any, json_mode: bool = False,
                     poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    reqs = [r["request_id"] for r in db.run(conn, "requests_of_dataset", dataset_id=dataset_id)
            if r["state"] not in ("done", "abandoned")]
    return wait_for_requests(conn, reqs, json_mode, poll_s, timeout_s)


def wait_for_requests(conn: psycopg.Connection, request_ids: list[Any], json_mode: bool = False,
                      poll_s: float = 0.5, timeout_s: float | None = None) -> int:
    start = time.monotonic()
    rows = [db.one(conn, "request_progress", request_id=r) for r in request_ids]
    total = sum(r["num_samples"] for r in rows)
    bar = None if json_mode else progress_bar(total, "generating")
    try:
        while True:
            rows = [db.one(conn, "request_progress", request_id=r) for r in request_ids]
            done = sum(r["samples_done"] for r in rows)
            if bar is not None:
                bar.update(done - bar.n)
                failed = sum(r["chunks_failed"] for r in rows)
                if failed:
                    bar.set_postfix(failed=failed)
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
