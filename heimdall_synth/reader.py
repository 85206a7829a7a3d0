"""Reading committed samples, shared by every reader (export, plots, the training loader).

One home for what "committed" means (:func:`committed_range`: the contiguous committed
prefix, or a range every index of which has its rows), how a dataset is named
(:func:`find_dataset`: a reference that reads as a uuid is an id, anything else an exact
name), one snapshot around several reads (:func:`reader_snapshot`) and how IQ bytes are
read and checked against the sha256 the database recorded (:func:`iter_iq_runs`,
:func:`verify_sample`) and turned into complex64 in sqrt(mW) whatever the stored dtype
(:func:`decode_iq`: complex64 as stored; ci16_le codes times sqrt of the row's
``scale_mw``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker import db
from worker.errors import HeimdallError, InvalidInput, NotFound
from worker.iqformat import stored_dtype
from worker.storage import ObjectStore, StorageError, decode_sample

from .splits import check_split, fractions_of

# Most bytes one ranged GET of several samples may fetch (readers hold one run in memory).
MAX_RUN_BYTES = 64 << 20


class IQIntegrityError(HeimdallError):
    """A sample's IQ is missing from the object store, short, or does not hash to its sha256."""


@contextmanager
def reader_snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One REPEATABLE READ transaction around several reads, so paged reads agree.

    If the caller already has a transaction open, its snapshot is used as is (SET
    TRANSACTION must be the first statement of a transaction).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        yield
        return
    with conn.transaction():
        db.run(conn, "reader_snapshot")
        yield


def find_dataset(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """The dataset row (``find_dataset`` query) for an id or exact name; NotFound otherwise."""
    row = db.one(conn, "find_dataset", ref=str(ref))
    if row is None:
        raise NotFound(f"dataset {str(ref)!r} does not exist (give its id or exact name)")
    return row


def safe_dirname(name: str) -> str:
    """A dataset name as one path component (names may hold '/', spaces, anything): the
    directory export and plots write a dataset's files into."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "dataset"


def committed_range(conn: psycopg.Connection, dataset: Mapping[str, Any],
                    requested: tuple[int | None, int | None] | None = None) -> tuple[int, int]:
    """Half-open index range ``[first, stop)`` to read, checked to be fully committed.

    ``requested`` None: the contiguous committed prefix ``[0, ready_prefix)``. Otherwise
    ``(first, stop)`` with None meaning 0 / ready_prefix; every index in it must have a
    feature row and (iq_raw) an IQ row, else InvalidInput naming what is missing. An empty
    dataset is an error too: there is nothing to read.
    """
    name = dataset["name"]
    prefix_row = db.one(conn, "committed_prefix", dataset_id=dataset["id"])
    prefix = int(prefix_row["ready_prefix"]) if prefix_row else 0
    committed = int(prefix_row["feature_rows"]) if prefix_row else 0
    if requested is None:
        if prefix == 0:
            raise InvalidInput(f"dataset {name!r} has no committed samples yet"
                               + (f" (sample 0 is missing; {committed} samples are committed "
                                  "further on: give --range)" if committed else ""))
        first, stop = 0, prefix
    else:
        first = 0 if requested[0] is None else int(requested[0])
        stop = prefix if requested[1] is None else int(requested[1])
        if requested[1] is None and first >= prefix:
            raise InvalidInput(f"range {first}: starts at or after the end of the committed prefix "
                               f"0:{prefix} of {name!r}; give both ends (A:B)")
        if first < 0 or stop <= first:
            raise InvalidInput(f"range {first}:{stop} is empty or negative "
                               f"(want A:B with 0 <= A < B; committed prefix of {name!r} is 0:{prefix})")
    n = stop - first
    got = db.one(conn, "committed_in_range", dataset_id=dataset["id"], first=first, stop=stop)
    if int(got["features"]) != n:
        raise InvalidInput(f"range {first}:{stop} of dataset {name!r} is not fully committed: "
                           f"{got['features']} of {n} samples exist (committed prefix is 0:{prefix})")
    if dataset["dataset_type"] == "iq_raw" and int(got["with_iq"]) != n:
        raise InvalidInput(f"{n - int(got['with_iq'])} samples of {first}:{stop} in dataset {name!r} have "
                           "no IQ row; run `heimdall-synth validate` and repair first")
    return first, stop


def split_params(dataset: Mapping[str, Any], split: str | None) -> dict[str, Any]:
    """Parameters ``split``, ``seed``, ``splits`` of the queries that read one split only
    (``export_features_page``, ``training_rows_page``; split None: every sample)."""
    check_split(split)
    fractions = dataset["config"].get("splits")     # None: stored before revision 0003
    return {"split": split, "seed": int(dataset["seed"]),
            "splits": None if fractions is None else Jsonb(fractions)}


def split_indices(conn: psycopg.Connection, dataset: Mapping[str, Any], first: int, stop: int,
                  split: str) -> list[int]:
    """Committed indices of ``[first, stop)`` in ``split`` (heimdall.split_of), ascending;
    InvalidInput when there are none."""
    check_split(split)
    got = [int(r["sample_idx"]) for r in db.run(conn, "split_indices", dataset_id=dataset["id"], first=first,
                                                 stop=stop, split=split)]
    if not got:
        raise InvalidInput(f"no sample of samples {first}:{stop} of dataset {dataset['name']!r} is in split "
                           f"{split!r} (fractions {fractions_of(dataset['config'])})")
    return got


def verify_sample(raw: bytes, sha256_hex: str, sample_idx: int, key: str, offset: int,
                  length: int) -> bytes:
    """Return ``raw`` if it is ``length`` bytes hashing to ``sha256_hex``; else IQIntegrityError."""
    if len(raw) != length:
        raise IQIntegrityError(f"IQ of sample {sample_idx} is truncated: object {key} gave {len(raw)} of "
                               f"{length} bytes at offset {offset}; run `heimdall-synth validate --deep`")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256_hex:
        raise IQIntegrityError(f"IQ of sample {sample_idx} is corrupt: bytes {offset}+{length} of {key} "
                               f"hash to {digest[:12]}.. but the database recorded {sha256_hex[:12]}..; "
                               "run `heimdall-synth validate --deep` and repair")
    return raw


def read_range(store: ObjectStore, key: str, offset: int, length: int, what: str) -> bytes:
    try:
        return store.get(key, offset, length)
    except StorageError as exc:
        # NoSuchKey and friends: say which samples are affected, keep the store's reason.
        raise IQIntegrityError(f"cannot read IQ of {what} from object {key}: {exc}") from exc


def iter_iq_runs(store: ObjectStore, rows: Sequence[Mapping[str, Any]],
                 max_run_bytes: int = MAX_RUN_BYTES) -> Iterator[tuple[Mapping[str, Any], bytes]]:
    """Yield ``(row, verified bytes)`` per IQ pointer row, in the order given.

    Consecutive rows pointing at adjacent byte ranges of the same object are read with ONE
    ranged GET covering them (a chunk's samples are adjacent byte ranges), so exporting N
    samples costs about N / chunk_size requests; a run is cut at ``max_run_bytes`` so memory
    stays bounded with big chunks, and at a gap (rows of one split, say), so no unwanted
    bytes are fetched. Every sample's bytes are checked against its sha256.
    """
    i = 0
    while i < len(rows):
        j = i
        key = rows[i]["object_key"]
        size = int(rows[i]["byte_length"])
        while (j + 1 < len(rows) and rows[j + 1]["object_key"] == key
               and int(rows[j + 1]["byte_offset"]) == int(rows[j]["byte_offset"]) + int(rows[j]["byte_length"])
               and size + int(rows[j + 1]["byte_length"]) <= max_run_bytes):
            j += 1
            size += int(rows[j]["byte_length"])
        run = rows[i:j + 1]
        lo = min(int(r["byte_offset"]) for r in run)
        hi = max(int(r["byte_offset"]) + int(r["byte_length"]) for r in run)
        blob = read_range(store, key, lo, hi - lo,
                    f"samples {run[0]['sample_idx']}-{run[-1]['sample_idx']}")
        for r in run:
            off, length = int(r["byte_offset"]), int(r["byte_length"])
            raw = blob[off - lo: off - lo + length]
            yield r, verify_sample(raw, r["sha256"], int(r["sample_idx"]), key, off, length)
        i = j + 1


def decode_iq(row: Mapping[str, Any], raw: bytes) -> Any:
    """One sample's verified bytes -> complex64 (receivers, L) in sqrt(mW) (mean |x|^2 =
    power in mW), from its IQ row's ``shape``, ``dtype`` (complex64 when absent) and, for
    ci16_le, ``scale_mw`` (one per receiver slot)."""
    dtype = stored_dtype(row.get("dtype"))
    shape = tuple(int(v) for v in row["shape"])
    try:
        return decode_sample(raw, shape, dtype, row.get("scale_mw"))
    except ValueError as exc:
        raise IQIntegrityError(f"IQ of sample {row.get('sample_idx')} cannot be decoded: {exc}") from exc


def store_settings(store: ObjectStore | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """S3 settings to rebuild an ObjectStore in another process (None: from the environment).

    A Minio client cannot be pickled (it holds locks) and must not be shared across fork
    (the children would share its pooled sockets), so each process builds its own.
    """
    if store is None:
        return None
    if isinstance(store, Mapping):
        return {k: store[k] for k in ("endpoint", "access_key", "secret_key", "bucket", "secure")
                if k in store}
    return dict(store.settings())


__all__ = ["MAX_RUN_BYTES", "IQIntegrityError", "committed_range", "decode_iq", "find_dataset", "iter_iq_runs",
           "read_range", "reader_snapshot", "safe_dirname", "split_indices", "split_params", "store_settings",
           "verify_sample"]
