"""Admin commands: status, retry, pause/resume/abandon, gc (object-store garbage)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import queries
from .cli import connect, emit, env_default, number_type, resolve_dataset
from .errors import HeimdallError
from .storage import ObjectStore, StorageError, iq_object_key, parse_iq_key

GRACE_MAX_S = 10 * 365 * 86400      # --grace / $HEIMDALL_GC_GRACE_S: 0 .. 10 years


def cmd_status(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        if args.request:
            if args.wait:
                from .progress import wait_for_request

                return wait_for_request(conn, args.request, json_mode=args.json)
            rows = [queries.one(conn, "request_progress", request_id=args.request)]
            if rows[0] is None:
                raise HeimdallError(f"request {args.request} does not exist")
        elif args.dataset:
            ds = resolve_dataset(conn, args.dataset)
            if args.wait:
                from .progress import wait_for_dataset

                return wait_for_dataset(conn, ds["id"], json_mode=args.json)
            rows = queries.run(conn, "requests_of_dataset", dataset_id=ds["id"])
        else:
            rows = queries.run(conn, "open_requests")
    emit(args, rows, columns=["request_id", "dataset_name", "kind", "first_idx", "last_idx", "state",
                              "chunks_done", "chunks_total", "chunks_failed", "samples_per_s", "eta"])
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = resolve_dataset(conn, args.dataset)
        n = queries.one(conn, "retry_failed_chunks", dataset_id=ds["id"])["retried"]
    emit(args, {"dataset": ds["name"], "chunks_retried": n})
    return 0


def _request_action(name: str, column: str):
    def cmd(args: argparse.Namespace) -> int:
        with connect(args) as conn:
            rows = queries.run(conn, name, request_id=args.request)
        emit(args, rows[0] if column else rows)
        return 0
    return cmd


# ------------------------------------------------------------------------------- gc
def collect_garbage(conn: psycopg.Connection, store: ObjectStore, grace_s: float,
                    dry_run: bool = False) -> dict[str, Any]:
    """Remove objects of deleted datasets and objects no row or open chunk refers to, once
    they are older than ``grace_s``. One LIST of ``datasets/``; the database is read after
    the listing, so a chunk committed meanwhile counts as referenced."""
    listing = list(store.list("datasets/"))
    now = queries.one(conn, "db_now")["now"]
    deleted = {str(r["dataset_id"]): r for r in queries.run(conn, "gc_deleted_datasets", grace_s=grace_s)}
    live = {r["dataset_id"] for r in queries.run(conn, "gc_live_datasets")}
    referenced = {r["object_key"] for r in queries.run(conn, "referenced_keys")}
    open_keys = {iq_object_key(r["dataset_id"], r["first_idx"], r["last_idx"])
                 for r in queries.run(conn, "open_chunk_ranges")}
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
            queries.run(conn, "record_object_deletion", dataset_id=None, action="gc", keys=doomed,
                        detail=Jsonb({"grace_s": grace_s}))
            removed = store.remove(doomed)
        for ds, row in deleted.items():
            if row["expired"] and ds not in seen_deleted:
                queries.run(conn, "gc_mark_done", dataset_id=ds)
    return {"listed": len(listing), "removed": removed, "would_remove": len(doomed),
            "kept_in_grace": kept_young, "dry_run": dry_run, "keys": doomed}


def store_from_args(args: argparse.Namespace) -> ObjectStore:
    try:
        return ObjectStore.from_env(endpoint=args.s3_endpoint, access_key=args.s3_access_key,
                                    secret_key=args.s3_secret_key, bucket=args.s3_bucket)
    except StorageError as exc:
        raise HeimdallError(str(exc)) from exc


def cmd_gc(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    with connect(args) as conn:
        try:
            result = collect_garbage(conn, store, args.grace, dry_run=args.dry_run)
        except StorageError as exc:
            raise HeimdallError(str(exc)) from exc
    if not args.json:
        result = {k: v for k, v in result.items() if k != "keys"}
    emit(args, result)
    return 0


def add_s3_arguments(x: argparse.ArgumentParser) -> None:
    x.add_argument("--s3-endpoint", help="host:port (default $HEIMDALL_S3_ENDPOINT)")
    x.add_argument("--s3-access-key", help="default $HEIMDALL_S3_ACCESS_KEY")
    x.add_argument("--s3-secret-key", help="default $HEIMDALL_S3_SECRET_KEY")
    x.add_argument("--s3-bucket", help="default $HEIMDALL_S3_BUCKET or heimdall-iq")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    x = sub.add_parser("status", help="requests and their progress", parents=[common])
    x.add_argument("dataset", nargs="?", help="only this dataset (id or name)")
    x.add_argument("--request", help="one request id")
    x.add_argument("--wait", action="store_true", help="wait with a progress bar until finished")
    x.set_defaults(func=cmd_status)

    x = sub.add_parser("retry", help="re-enqueue the failed chunks of a dataset", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.set_defaults(func=cmd_retry)

    for name, helptext in (("pause", "pause a request (running chunks finish)"),
                           ("resume", "resume a paused request"),
                           ("abandon", "give back the unfinished tail of a request")):
        x = sub.add_parser(name, help=helptext, parents=[common])
        x.add_argument("request", help="request id")
        x.set_defaults(func=_request_action(f"{name}_request", "" if name == "abandon" else name))

    x = sub.add_parser("gc", help="remove objects of deleted datasets and unreferenced objects",
                       parents=[common])
    add_s3_arguments(x)
    x.add_argument("--grace", type=number_type(float, 0, GRACE_MAX_S, "seconds"),
                   default=env_default("HEIMDALL_GC_GRACE_S", "3600"),
                   help="only remove objects older than this many seconds "
                        "(default $HEIMDALL_GC_GRACE_S or 3600)")
    x.add_argument("--dry-run", action="store_true", help="list what would be removed")
    x.set_defaults(func=cmd_gc)
