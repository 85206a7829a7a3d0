"""Validate and repair datasets: both directions, object store included, nothing lost.

``validate``: the SQL checks (``heimdall.validate_dataset``) plus what only the object store
shows: every IQ row's object exists and is long enough (one LIST of the dataset prefix),
with ``deep`` every sample's bytes hash to its sha256 and the object's .npy header matches,
and objects no row or open chunk refers to (orphans, with age). The database is read
first (one snapshot), then the store is listed, so a chunk committed during validation is
never reported missing and an upload in flight is never an orphan.

``repair``: re-validates first (never works from a stale report), then: num_samples
recomputed from the feature rows; missing/corrupt IQ, IQ without features, gaps ->
repair chunks that regenerate the indices bit-identically (workers do it); stuck chunks
released; failed chunks retried; orphans removed only after the grace period.
"""

from __future__ import annotations

import ast
import hashlib
import warnings
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import psycopg
from minio.error import S3Error
from psycopg.types.json import Jsonb

from worker import db
from worker.iqformat import BYTES_PER_IQ_SAMPLE, NUMPY_DTYPES, array_shape, stored_dtype
from worker.storage import (
    ObjectStore,
    StorageError,
    dataset_prefix,
    iq_object_key,
    parse_iq_key,
)

from .reader import find_dataset

# distinct from errors (1) and usage (2); see heimdall_synth.cli EXIT_* and the README
EXIT_BY_STATUS = {"healthy": 0, "warning": 3, "critical": 4}
REGENERATE_KINDS = ("features_missing_iq", "iq_without_features", "gap", "missing_object",
                    "object_too_short", "corrupt_sample", "corrupt_object")


def _ranges(indices: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _issue(kind: str, severity: str, indices: list[int] | None = None, detail: str = "",
           key: str | None = None, **extra: Any) -> list[dict[str, Any]]:
    if not indices:
        return [{"kind": kind, "severity": severity, "key": key, "count": extra.pop("count", 1),
                 "detail": detail, **extra}]
    return [{"kind": kind, "severity": severity, "first_idx": lo, "last_idx": hi, "count": hi - lo + 1,
             "key": key, "detail": detail, **extra} for lo, hi in _ranges(indices)]


NPY_MAGIC = b"\x93NUMPY"
NPY_MAX_HEADER = 64 * 1024        # ours are 128 bytes; numpy itself refuses > 10,000 by default
NPY_MAX_DIMS = 64                 # numpy's NPY_MAXDIMS


class NpyHeader(NamedTuple):
    """A valid .npy header: the array's shape, dtype descr, order, and where its data start."""

    shape: tuple[int, ...]
    descr: str
    fortran_order: bool
    data_offset: int


def _npy_header(blob: bytes) -> NpyHeader | None:
    """The header of a .npy file, or None if ``blob`` does not start with a valid one.

    Total: any bytes give one of the two, never an exception (the object's content is
    untrusted). Valid means: magic, version 1.0 / 2.0 / 3.0, a header length inside the
    blob and at most NPY_MAX_HEADER bytes (bounds the work ``ast.literal_eval`` can be made
    to do: deep nesting, huge literals), a dict literal with exactly the keys descr,
    fortran_order, shape; shape a tuple of at most 64 non-negative ints; fortran_order a
    bool; descr a string naming a numpy dtype."""
    try:
        if len(blob) < 10 or blob[:6] != NPY_MAGIC:
            return None
        major, minor = blob[6], blob[7]
        if minor != 0 or major not in (1, 2, 3):
            return None
        if major == 1:
            start, hlen = 10, int.from_bytes(blob[8:10], "little")
        else:
            start, hlen = 12, int.from_bytes(blob[8:12], "little")
        if hlen > NPY_MAX_HEADER or start + hlen > len(blob):
            return None
        text = bytes(blob[start:start + hlen]).decode("utf-8" if major == 3 else "latin1")
        with warnings.catch_warnings():          # e.g. "invalid escape sequence" in a string
            warnings.simplefilter("ignore")
            header = ast.literal_eval(text)
            if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
                return None
            shape, descr, fortran_order = header["shape"], header["descr"], header["fortran_order"]
            if (not isinstance(shape, tuple) or len(shape) > NPY_MAX_DIMS
                    or not all(type(x) is int and x >= 0 for x in shape)):
                return None
            if type(fortran_order) is not bool or not isinstance(descr, str):
                return None
            np.dtype(descr)                                      # unknown -> TypeError
        return NpyHeader(shape, descr, fortran_order, start + hlen)
    except Exception:        # noqa: BLE001 - SyntaxError, ValueError, TypeError, RecursionError,
        return None          # MemoryError (parser stack), UnicodeDecodeError...: not a .npy


def _object_layout_problem(header: NpyHeader | None, size: int, items: list[dict[str, Any]],
                           first_idx: int | None, last_idx: int | None) -> str | None:
    """Why an object's bytes cannot be the .npy the worker wrote for these rows, or None.

    The rows' stored dtype decides the layout: complex64 '<c8' (n, R, L), ci16_le '<i2'
    (n, R, L, 2) (worker.storage)."""
    if header is None:
        return "not a valid .npy (bad magic, version, header length or header dict)"
    dtypes = {stored_dtype(r.get("dtype")) for r in items}
    if len(dtypes) != 1 or next(iter(dtypes)) not in NUMPY_DTYPES:
        return f"its rows disagree on the dtype or name an unknown one: {sorted(dtypes)[:3]}"
    dtype = next(iter(dtypes))
    descr = NUMPY_DTYPES[dtype][0].str
    if header.descr != descr or header.fortran_order:
        return (f"dtype {header.descr[:40]!r}, fortran_order {header.fortran_order}: expected {descr!r} "
                f"({dtype}), C order")
    shapes = {tuple(r["shape"]) for r in items}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        return f"its rows disagree on the sample shape: {sorted(shapes)[:3]}"
    receivers, length = next(iter(shapes))
    want = array_shape(0, receivers, length, dtype)[1:]
    n = header.shape[0] if len(header.shape) == 1 + len(want) else None
    if n is None or header.shape[1:] != want:
        return f"shape {_short(header.shape)} is not (n, {', '.join(str(v) for v in want)})"
    if first_idx is not None and last_idx is not None and n != last_idx - first_idx + 1:
        return f"shape {_short(header.shape)}: the chunk {first_idx}..{last_idx} has {last_idx - first_idx + 1}"
    per = receivers * length * BYTES_PER_IQ_SAMPLE[dtype]
    expected = header.data_offset + n * per
    if size != expected:
        return f"{size} bytes, a complete .npy of shape {_short(header.shape)} has {expected}"
    for r in items:
        k = (r["sample_idx"] - first_idx) if first_idx is not None else (r["byte_offset"] - header.data_offset) // per
        if not 0 <= k < n or r["byte_offset"] != header.data_offset + k * per or r["byte_length"] != per:
            return (f"sample {r['sample_idx']} at bytes {r['byte_offset']}+{r['byte_length']} is not "
                    f"sample {k} of the array")
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_missing(exc: StorageError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, S3Error) and cause.code in ("NoSuchKey", "NoSuchObject")


def _deep_object_issues(store: ObjectStore, key: str, size: int,
                        items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every sample of one object read and checked: the whole object must be the complete
    .npy the worker wrote for these rows (else corrupt_object covering all its rows, so the
    repair regenerates the whole object bit-identically), then each sample's sha256
    (corrupt_sample). Raises only for a store failure that is not about this object."""
    indices = [r["sample_idx"] for r in items]
    parsed = parse_iq_key(key)
    first_idx, last_idx = (parsed[1], parsed[2]) if parsed else (None, None)
    n = last_idx - first_idx + 1 if parsed else len(items)
    limit = 12 + NPY_MAX_HEADER + max(n, len(items)) * max(r["byte_length"] for r in items)
    if size > limit:                       # not read: it cannot be ours, whatever it holds
        return _issue("corrupt_object", "critical", indices,
                      f"object {key}: {size} bytes, more than any .npy of these samples ({limit})", key=key)
    try:
        blob = store.get(key)
    except StorageError as exc:
        if _is_missing(exc):               # deleted between the LIST and this GET
            return _issue("missing_object", "critical", indices, f"object {key} does not exist", key=key)
        raise
    problem = _object_layout_problem(_npy_header(blob), len(blob), items, first_idx, last_idx)
    if problem is not None:
        return _issue("corrupt_object", "critical", indices, f"object {key}: {problem}", key=key)
    bad = [r["sample_idx"] for r in items
           if hashlib.sha256(blob[r["byte_offset"]:r["byte_offset"] + r["byte_length"]]).hexdigest() != r["sha256"]]
    out = _issue("corrupt_sample", "critical", bad, f"bytes in {key} do not match their sha256",
                 key=key) if bad else []
    # ci16_le: the codes are worthless without their scale (mW per code^2): finite, >= 0
    # (0 only for padding receiver slots) and not all 0
    bad_set = set(bad)
    unscaled = [r["sample_idx"] for r in items if r["sample_idx"] not in bad_set and not _scale_ok(r)]
    if unscaled:
        out += _issue("corrupt_sample", "critical", unscaled,
                      f"ci16_le samples in {key} without a usable scale_mw (mW per code^2)", key=key)
    return out


def _scale_ok(row: dict[str, Any]) -> bool:
    if stored_dtype(row.get("dtype")) != "ci16_le":
        return True
    scale = row.get("scale_mw")
    if not scale or len(scale) != int(row["shape"][0]):
        return False
    vals = [v for v in scale if v is not None]
    return (len(vals) == len(scale) and all(np.isfinite(v) and v >= 0 for v in vals)
            and any(v > 0 for v in vals))


def object_store_issues(conn: psycopg.Connection, store: ObjectStore, dataset_id: Any, deep: bool,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    ds = str(dataset_id)
    with conn.transaction():
        db.run(conn, "reader_snapshot")
        rows = db.run(conn, "iq_rows_of_dataset", dataset_id=dataset_id)
        open_keys = {iq_object_key(ds, r["first_idx"], r["last_idx"])
                     for r in db.run(conn, "open_chunks_of_dataset", dataset_id=dataset_id)}
    listing = {o.key: o for o in store.list(dataset_prefix(ds))}
    now = now or datetime.now(UTC)
    issues: list[dict[str, Any]] = []
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_key[r["object_key"]].append(r)
    for key, items in sorted(by_key.items()):
        obj = listing.get(key)
        if obj is None:
            issues += _issue("missing_object", "critical", [r["sample_idx"] for r in items],
                             f"object {key} does not exist", key=key)
        elif deep:                         # supersedes the size check: the whole object is read
            issues += _deep_object_issues(store, key, obj.size, items)
        else:
            short = [r["sample_idx"] for r in items if r["byte_offset"] + r["byte_length"] > obj.size]
            if short:
                issues += _issue("object_too_short", "critical", short,
                                 f"object {key} has {obj.size} bytes, too few for these samples", key=key)
    referenced = set(by_key)
    for key, obj in sorted(listing.items()):
        if key in referenced or key in open_keys:
            continue
        age_s = (now - obj.last_modified).total_seconds() if obj.last_modified else None
        issues += _issue("orphan_object", "warning", None,
                         f"object {key} ({obj.size} bytes) is referenced by no row and no open chunk",
                         key=key, age_s=round(age_s, 1) if age_s is not None else None)
    return issues


def validate(conn: psycopg.Connection, store: ObjectStore | None, dataset_id: Any, deep: bool = False,
             stuck_after_s: int | None = None) -> dict[str, Any]:
    """Full validation; stores the health on the dataset and returns the report."""
    extra = object_store_issues(conn, store, dataset_id, deep) if store is not None else []
    return db.one(conn, "validate_dataset", dataset_id=dataset_id, extra_issues=Jsonb(extra),
                       stuck_after_s=stuck_after_s)["report"]


def plan_repair(report: dict[str, Any], dataset_type: str) -> list[dict[str, Any]]:
    """Actions that fix the issues of a (fresh) report, in the order they run."""
    actions: list[dict[str, Any]] = []
    kinds = defaultdict(list)
    for issue in report["issues"]:
        kinds[issue["kind"]].append(issue)
    if "num_samples_mismatch" in kinds:
        actions.append({"action": "repair_num_samples", "detail": kinds["num_samples_mismatch"][0]["detail"]})
    indices: list[int] = []
    for kind in REGENERATE_KINDS:
        for issue in kinds.get(kind, []):
            if issue.get("first_idx") is not None:
                indices += range(issue["first_idx"], issue["last_idx"] + 1)
    for lo, hi in _ranges(indices):
        reasons = sorted({i["kind"] for k in REGENERATE_KINDS for i in kinds.get(k, [])
                          if i.get("first_idx") is not None and i["first_idx"] <= hi and i["last_idx"] >= lo})
        actions.append({"action": "regenerate", "first_idx": lo, "last_idx": hi, "count": hi - lo + 1,
                        "reason": ",".join(reasons)})
    if "chunk_without_message" in kinds or "message_without_chunk" in kinds:
        actions.append({"action": "repair_queue",
                        "count": len(kinds.get("chunk_without_message", [])) + len(kinds.get("message_without_chunk", []))})
    if "stuck_chunks" in kinds:
        actions.append({"action": "release_stuck_chunks", "count": len(kinds["stuck_chunks"])})
    if "failed_chunks" in kinds:
        actions.append({"action": "retry_failed_chunks", "count": len(kinds["failed_chunks"])})
    for issue in kinds.get("orphan_object", []):
        actions.append({"action": "delete_orphan", "key": issue["key"], "age_s": issue.get("age_s")})
    if "iq_in_feature_based" in kinds or "out_of_range" in kinds or "duplicate_index" in kinds:
        actions.append({"action": "manual", "detail": "rows that the triggers forbid exist "
                        "(iq_in_feature_based / out_of_range / duplicate_index): inspect before deleting"})
    return actions


def apply_repair(conn: psycopg.Connection, store: ObjectStore | None, dataset_id: Any,
                 actions: list[dict[str, Any]], grace_s: float,
                 stuck_after_s: int | None = None) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    for a in actions:
        kind = a["action"]
        if kind == "repair_num_samples":
            a = {**a, "num_samples": db.one(conn, "repair_num_samples", dataset_id=dataset_id)["num_samples"]}
        elif kind == "regenerate":
            a = {**a, "request_id": str(db.one(conn, "enqueue_repair", dataset_id=dataset_id,
                                                      first_idx=a["first_idx"], last_idx=a["last_idx"],
                                                      reason=a["reason"])["request_id"])}
        elif kind == "release_stuck_chunks":
            a = {**a, "released": db.one(conn, "release_stuck_chunks", dataset_id=dataset_id,
                                              stuck_after_s=stuck_after_s)["released"]}
        elif kind == "retry_failed_chunks":
            a = {**a, "retried": db.one(conn, "retry_failed_chunks", dataset_id=dataset_id)["retried"]}
        elif kind == "delete_orphan":
            if a.get("age_s") is not None and a["age_s"] < grace_s:
                a = {**a, "skipped": f"younger than the grace period ({grace_s} s)"}
            else:
                # audited first: a role that may not record it deletes nothing
                db.run(conn, "record_object_deletion", dataset_id=dataset_id, action="delete_orphan",
                            keys=[a["key"]], detail=Jsonb({"age_s": a.get("age_s")}))
                store.remove([a["key"]])
                a = {**a, "deleted": True}
        elif kind == "repair_queue":
            a = {**a, **db.one(conn, "repair_queue", dataset_id=dataset_id)["result"]}
        done.append(a)
    return done


def needs_store(dataset_type: str, s3_configured: bool) -> bool:
    """iq_raw datasets are checked against the object store; a feature_based one is checked
    there (for stray objects) only when a store is configured."""
    return dataset_type == "iq_raw" or s3_configured


def validate_dataset(conn: psycopg.Connection, ref: str, store_for: Callable[[str], ObjectStore | None],
                     deep: bool = False, stuck_after_s: int | None = None) -> dict[str, Any]:
    """Validate dataset ``ref`` (id or name); ``store_for(dataset_type)`` gives the object
    store to check (or None). Returns the report (also stored on the dataset)."""
    ds = find_dataset(conn, ref)
    return validate(conn, store_for(ds["dataset_type"]), ds["id"], deep=deep, stuck_after_s=stuck_after_s)


def repair_dataset(conn: psycopg.Connection, ref: str, store_for: Callable[[str], ObjectStore | None],
                   apply: bool = False, deep: bool = True, grace_s: float = 3600.0,
                   stuck_after_s: int | None = None) -> dict[str, Any]:
    """Validate dataset ``ref`` now (never from a stale report; ``deep`` so corrupt bytes
    are found), plan the repair and, with ``apply``, carry it out. Returns
    ``{"dataset", "status_before", "applied", "actions"}``."""
    ds = find_dataset(conn, ref)
    store = store_for(ds["dataset_type"])
    report = validate(conn, store, ds["id"], deep=deep, stuck_after_s=stuck_after_s)
    actions = plan_repair(report, ds["dataset_type"])
    if apply:
        actions = apply_repair(conn, store, ds["id"], actions, grace_s, stuck_after_s)
    return {"dataset": ds["name"], "status_before": report["status"], "applied": apply, "actions": actions}
