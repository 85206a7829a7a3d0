"""Admin work: request status, retry, pause/resume/abandon, gc (object-store garbage).

Plain functions of a connection and plain values; the CLI (``heimdall_synth.cli``) parses
arguments and prints what they return.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker import db
from worker.errors import NotFound
from worker.settings import Number
from worker.storage import ObjectStore, iq_object_key, parse_iq_key

from .reader import find_dataset

# --grace / $HEIMDALL_GC_GRACE_S: 0 .. 10 years, default one hour
GC_GRACE_S = Number("HEIMDALL_GC_GRACE_S", float, 0, 10 * 365 * 86400, 3600.0, "seconds")
REQUEST_ACTIONS = ("pause", "resume", "abandon")


def request_rows(conn: psycopg.Connection, dataset: str | None = None,
                 request: str | None = None) -> list[dict[str, Any]]:
    """Progress rows: of one request, of every request of a dataset, or of the open ones."""
    if request:
        row = db.one(conn, "request_progress", request_id=request)
        if row is None:
            raise NotFound(f"request {request} does not exist")
        return [row]
    if dataset:
        return db.run(conn, "requests_of_dataset", dataset_id=find_dataset(conn, dataset)["id"])
    return db.run(conn, "open_requests")


def retry_failed(conn: psycopg.Connection, dataset: str) -> dict[str, Any]:
    """Re-enqueue the failed chunks of a dataset."""
    ds = find_dataset(conn, dataset)
    n = db.one(conn, "retry_failed_chunks", dataset_id=ds["id"])["retried"]
    return {"dataset": ds["name"], "chunks_retried": n}


def request_action(conn: psycopg.Connection, action: str, request_id: str) -> list[dict[str, Any]]:
    """pause / resume / abandon a request; the rows the SQL function returns."""
    if action not in REQUEST_ACTIONS:
        raise ValueError(f"unknown request action {action!r}")
    return db.run(conn, f"{action}_request", request_id=request_id)


# ------------------------------------------------------------------------------- gc
def collect_garbage(conn: psycopg.Connection, store: ObjectStore, grace_s: float,
                    dry_run: bool = False) -> dict[str, Any]:
    """Remove objects of deleted datasets and objects no row or open chunk refers to, once
    they are older than ``grace_s``. One LIST of ``datasets/``; the database is read after
    the listing, so a chunk committed meanwhile counts as referenced."""
    listing = list(store.list("datasets/"))
    now = db.one(conn, "db_now")["now"]
    deleted = {str(r["dataset_id"]): r for r in db.run(conn, "gc_deleted_datasets", grace_s=grace_s)}
    live = {r["dataset_id"] for r in db.run(conn, "gc_live_datasets")}
    referenced = {r["object_key"] for r in db.run(conn, "referenced_keys")}
    open_keys = {iq_object_key(r["dataset_id"], r["first_idx"], r["last_idx"])
                 for r in db.run(conn, "open_chunk_ranges")}
    grace = timedelta(seconds=grace_s)
    doomed: list[str] = []
    kept_young = 0
    seen_deleted: set[str] = set()    # deleted datasets with an object kept this run
    for obj in listing:
        ds = obj.key.split("/")[1] if obj.key.count("/") >= 2 else ""
        old_enough = obj.last_modified is None or now - obj.last_modified >= grace
        if ds in deleted:
            if deleted[ds]["expired"] and old_enough:
                doomed.append(obj.key)
            else:
                seen_deleted.add(ds)       # something of it stays: not done yet
                kept_young += 1
            continue
        if obj.key in referenced or obj.key in open_keys:
            continue
        if ds in live and parse_iq_key(obj.key) is None and not old_enough:
            kept_young += 1
            continue
        if old_enough:
            doomed.append(obj.key)
        else:
            kept_young += 1
    removed = 0
    if not dry_run:
        if doomed:
            # audited first: a role that may not record it deletes nothing
            db.run(conn, "record_object_deletion", dataset_id=None, action="gc", keys=doomed,
                   detail=Jsonb({"grace_s": grace_s}))
            removed = store.remove(doomed)
        for ds, row in deleted.items():
            if row["expired"] and ds not in seen_deleted:
                db.run(conn, "gc_mark_done", dataset_id=ds)
    return {"listed": len(listing), "removed": removed, "would_remove": len(doomed),
            "kept_in_grace": kept_young, "dry_run": dry_run, "keys": doomed}
