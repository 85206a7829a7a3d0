"""Reading committed samples for training: :class:`HeimdallDataset` and shared reader helpers.

``HeimdallDataset`` is a PyTorch-style *map* dataset (``__len__`` + ``__getitem__``) that
needs no torch: items are dicts of numpy arrays, which ``torch.utils.data.DataLoader``'s
default collate turns into tensors. It reads the feature rows of the committed range once
(at construction, in one snapshot), keeps them as compact numpy arrays, and reads each
sample's IQ with one ranged GET, verified against the sha256 the database recorded.

The helpers here (:func:`committed_range`, :func:`reader_snapshot`, :func:`iter_iq_runs`)
are shared with ``worker.export`` and ``worker.plots``, so every reader agrees on what
"committed" means and on how IQ bytes are checked.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg

from . import db, queries
from .errors import HeimdallError, InvalidInput, NotFound, translate
from .storage import ObjectStore, StorageError, decode_sample

# Per-receiver features of ``HeimdallDataset`` items, in column order of ``features``.
# All are estimated from the IQ (what a real receiver network could measure), never the
# ground truth columns (true_*, distance_m, los, ...), so a model cannot peek at the answer.
# Units: dBm, dB, dBm, Hz, Hz, s, 0/1, Hz, Hz, sqrt(mW), sqrt(mW), dB, s.
FEATURE_NAMES: tuple[str, ...] = (
    "rssi_dbm", "snr_db", "noise_floor_dbm", "freq_offset_hz", "bandwidth_hz", "tdoa_s",
    "signal_present", "spectral_centroid_hz", "spectral_rolloff_hz", "envelope_mean",
    "envelope_std", "papr_db", "delay_spread_s",
)

# Rows fetched per round trip when loading feature rows (bounds client memory: a page of
# Python objects is converted to numpy before the next one is fetched).
PAGE_ROWS = 5000
# Most bytes one ranged GET of several samples may fetch (readers hold one run in memory).
MAX_RUN_BYTES = 64 << 20


class IQIntegrityError(HeimdallError):
    """A sample's IQ is missing from the object store, short, or does not hash to its sha256."""


# --------------------------------------------------------------------------- shared helpers
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
        queries.run(conn, "reader_snapshot")
        yield


def find_dataset(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """The dataset row (``find_dataset`` query) for an id or exact name; NotFound otherwise."""
    row = queries.one(conn, "find_dataset", ref=str(ref))
    if row is None:
        raise NotFound(f"dataset {str(ref)!r} does not exist (give its id or exact name)")
    return row


def committed_range(conn: psycopg.Connection, dataset: Mapping[str, Any],
                    requested: tuple[int | None, int | None] | None = None) -> tuple[int, int]:
    """Half-open index range ``[first, stop)`` to read, checked to be fully committed.

    ``requested`` None: the contiguous committed prefix ``[0, ready_prefix)``. Otherwise
    ``(first, stop)`` with None meaning 0 / ready_prefix; every index in it must have a
    feature row and (iq_raw) an IQ row, else InvalidInput naming what is missing. An empty
    dataset is an error too: there is nothing to read.
    """
    name = dataset["name"]
    prefix_row = queries.one(conn, "committed_prefix", dataset_id=dataset["id"])
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
    got = queries.one(conn, "committed_in_range", dataset_id=dataset["id"], first=first, stop=stop)
    if int(got["features"]) != n:
        raise InvalidInput(f"range {first}:{stop} of dataset {name!r} is not fully committed: "
                           f"{got['features']} of {n} samples exist (committed prefix is 0:{prefix})")
    if dataset["dataset_type"] == "iq_raw" and int(got["with_iq"]) != n:
        raise InvalidInput(f"{n - int(got['with_iq'])} samples of {first}:{stop} in dataset {name!r} have "
                           "no IQ row; run `heimdall-synth validate` and repair first")
    return first, stop


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


def _get(store: ObjectStore, key: str, offset: int, length: int, what: str) -> bytes:
    try:
        return store.get(key, offset, length)
    except StorageError as exc:
        # NoSuchKey and friends: say which samples are affected, keep the store's reason.
        raise IQIntegrityError(f"cannot read IQ of {what} from object {key}: {exc}") from exc


def iter_iq_runs(store: ObjectStore, rows: Sequence[Mapping[str, Any]],
                 max_run_bytes: int = MAX_RUN_BYTES) -> Iterator[tuple[Mapping[str, Any], bytes]]:
    """Yield ``(row, verified bytes)`` per IQ pointer row, in the order given.

    Consecutive rows pointing into the same object are read with ONE ranged GET covering
    them (a chunk's samples are adjacent byte ranges), so exporting N samples costs about
    N / chunk_size requests; a run is cut at ``max_run_bytes`` so memory stays bounded with
    big chunks. Every sample's bytes are checked against its sha256.
    """
    i = 0
    while i < len(rows):
        j = i
        key = rows[i]["object_key"]
        size = int(rows[i]["byte_length"])
        while (j + 1 < len(rows) and rows[j + 1]["object_key"] == key
               and size + int(rows[j + 1]["byte_length"]) <= max_run_bytes):
            j += 1
            size += int(rows[j]["byte_length"])
        run = rows[i:j + 1]
        lo = min(int(r["byte_offset"]) for r in run)
        hi = max(int(r["byte_offset"]) + int(r["byte_length"]) for r in run)
        blob = _get(store, key, lo, hi - lo,
                    f"samples {run[0]['sample_idx']}-{run[-1]['sample_idx']}")
        for r in run:
            off, length = int(r["byte_offset"]), int(r["byte_length"])
            raw = blob[off - lo: off - lo + length]
            yield r, verify_sample(raw, r["sha256"], int(r["sample_idx"]), key, off, length)
        i = j + 1


def _store_settings(store: ObjectStore | Mapping[str, Any] | None) -> dict[str, Any] | None:
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


# ------------------------------------------------------------------------------ the dataset
class HeimdallDataset:
    """Map-style dataset over the committed samples of one heimdall dataset.

    Parameters
    ----------
    dataset:
        Dataset id or exact name.
    database_url:
        libpq URL (default ``$HEIMDALL_DATABASE_URL``). Used only in the constructor.
    store:
        ``ObjectStore``, or a dict ``{endpoint, access_key, secret_key, bucket[, secure]}``,
        or None for ``$HEIMDALL_S3_*``. Each process (DataLoader worker) opens its own
        client lazily on first ``__getitem__``; unused for feature_based datasets.
    index_range:
        ``(first, stop)`` half-open sample indices; default the contiguous committed prefix
        ``[0, ready_prefix)``. Every index must be committed.
    cache_size:
        Samples whose verified IQ bytes are kept per process (LRU); 0 disables the cache.
    max_receivers:
        Receiver slots ``R_max`` of every item. Default: the most any sample (or its IQ)
        has. A value smaller than that is an error: receivers are never dropped.
    conn:
        An open psycopg connection to use instead of ``database_url`` (not kept).

    Items (``__getitem__(i)``, sample index ``first + i``), all numpy:

    - ``iq``: float32 (R_max, 2, L), channel 0 real, 1 imaginary, in sqrt(mW) (mean of
      re^2 + im^2 = power in mW); iq_raw datasets only. Rows >= num_receivers are zero.
    - ``rx_positions``: float32 (R_max, 3): latitude, longitude (degrees), altitude (m).
    - ``mask``: bool (R_max,), True for the sample's real receivers (the first num_receivers).
    - ``features``: float32 (R_max, F) in :data:`FEATURE_NAMES` order, physical units (not
      normalized). NaN where the estimator had no value (e.g. an undetected receiver) or the
      column is NULL; padded rows are 0.
    - ``target``: float32 (3,): transmitter latitude, longitude (degrees), altitude (m).
      float32 keeps degrees to about 4e-6 (~0.4 m).
    - ``sample_idx``: int64 scalar array.

    A missing IQ object, a short read or a sha256 mismatch raises :class:`IQIntegrityError`;
    IQ is never replaced by zeros.
    """

    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __init__(self, dataset: str, database_url: str | None = None,
                 store: ObjectStore | Mapping[str, Any] | None = None, *,
                 index_range: tuple[int | None, int | None] | None = None, cache_size: int = 128,
                 max_receivers: int | None = None, conn: psycopg.Connection | None = None) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        own = conn is None
        if own:
            try:
                conn = psycopg.connect(db.database_url(database_url), autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise translate(exc) from exc
        try:
            with reader_snapshot(conn):
                ds = find_dataset(conn, dataset)
                first, stop = committed_range(conn, ds, index_range)
                self._load(conn, ds["id"], first, stop)
        finally:
            if own:
                conn.close()
        self.dataset_id = str(ds["id"])
        self.dataset_name: str = ds["name"]
        self.dataset_type: str = ds["dataset_type"]
        self.first, self.stop = first, stop
        self.cache_size = cache_size
        self._settings = _store_settings(store)
        # The given store is usable as is only in this process (see _store_settings).
        self._store: ObjectStore | None = store if isinstance(store, ObjectStore) else None
        self._pid = os.getpid()
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        needed = int(max(self._num_rx.max(initial=0), self._iq_shape[:, 0].max(initial=0)))
        if max_receivers is not None and max_receivers < needed:
            raise ValueError(f"max_receivers={max_receivers} would drop receivers: samples of "
                             f"{self.dataset_name!r} have up to {needed}")
        self.r_max = int(max_receivers if max_receivers is not None else needed)
        self._expand_to(self.r_max)

    # ------------------------------------------------------------------ loading (once)
    def _load(self, conn: psycopg.Connection, dataset_id: Any, first: int, stop: int) -> None:
        """Fetch [first, stop) page by page into compact numpy arrays.

        Numpy arrays (not lists of dicts) so that DataLoader workers forked from this
        process share the memory copy-on-write (touching Python objects would copy pages)
        and a pickled dataset (spawn) is small and fast.
        """
        n = stop - first
        f = len(FEATURE_NAMES)
        self._target = np.empty((n, 3), np.float32)
        self._num_rx = np.empty(n, np.int32)
        self._iq_key = np.full(n, -1, np.int32)         # index into self._keys, -1: no IQ
        self._iq_offset = np.zeros(n, np.int64)
        self._iq_length = np.zeros(n, np.int64)
        self._iq_sha = np.zeros((n, 32), np.uint8)
        self._iq_shape = np.zeros((n, 2), np.int32)
        self._keys: list[str] = []
        key_ids: dict[str, int] = {}
        rx_rows: list[np.ndarray] = []                  # per sample (nr, 3) float64
        feat_rows: list[np.ndarray] = []                # per sample (nr, F) float32
        self.sample_rate_hz: int | None = None
        pos = 0
        for page_first in range(first, stop, PAGE_ROWS):
            rows = queries.run(conn, "training_rows_page", dataset_id=dataset_id, first=page_first,
                               stop=min(stop, page_first + PAGE_ROWS))
            for r in rows:
                if int(r["sample_idx"]) != first + pos:
                    raise HeimdallError(f"sample {first + pos} vanished while loading (dataset deleted "
                                        "or damaged meanwhile?)")
                nr = int(r["num_receivers"])
                self._target[pos] = (r["tx_lat"], r["tx_lon"], r["tx_alt_m"])
                self._num_rx[pos] = nr
                rx_rows.append(np.column_stack([_vec(r["rx_lat"], nr), _vec(r["rx_lon"], nr),
                                                _vec(r["rx_alt_m"], nr)]))
                feat = np.empty((nr, f), np.float32)
                for c, name in enumerate(FEATURE_NAMES):
                    feat[:, c] = _vec(r[name], nr)
                feat_rows.append(feat)
                if r["object_key"] is not None:
                    key = r["object_key"]
                    if key not in key_ids:
                        key_ids[key] = len(self._keys)
                        self._keys.append(key)
                    self._iq_key[pos] = key_ids[key]
                    self._iq_offset[pos] = r["byte_offset"]
                    self._iq_length[pos] = r["byte_length"]
                    self._iq_sha[pos] = np.frombuffer(bytes.fromhex(r["sha256"]), np.uint8)
                    self._iq_shape[pos] = r["shape"]
                    self.sample_rate_hz = int(r["sample_rate_hz"])
                pos += 1
        if pos != n:
            raise HeimdallError(f"expected {n} samples in {first}:{stop}, read {pos}")
        self._rx_list, self._feat_list = rx_rows, feat_rows
        has_iq = self._iq_key >= 0
        lengths = set(self._iq_shape[has_iq, 1].tolist())
        if len(lengths) > 1:
            raise HeimdallError(f"samples {first}:{stop} have IQ of different lengths {sorted(lengths)}; "
                                "give an index_range with one length")
        self.iq_length: int | None = lengths.pop() if lengths else None

    def _expand_to(self, r_max: int) -> None:
        """Pad the per-sample receiver arrays to (n, r_max, ...) once; mask marks real rows."""
        n = len(self._num_rx)
        self._rx = np.zeros((n, r_max, 3), np.float32)
        self._features = np.zeros((n, r_max, len(FEATURE_NAMES)), np.float32)
        for k in range(n):
            nr = self._num_rx[k]
            self._rx[k, :nr] = self._rx_list[k]
            self._features[k, :nr] = self._feat_list[k]
        self._mask = np.arange(r_max)[None, :] < self._num_rx[:, None]
        del self._rx_list, self._feat_list

    # ------------------------------------------------------------------ map dataset protocol
    def __len__(self) -> int:
        return self.stop - self.first

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} samples")
        item = {
            "rx_positions": self._rx[i].copy(),
            "mask": self._mask[i].copy(),
            "features": self._features[i].copy(),
            "target": self._target[i].copy(),
            "sample_idx": np.asarray(self.first + i, dtype=np.int64),
        }
        if self.dataset_type == "iq_raw":
            item["iq"] = self._iq(i)
        return item

    def _iq(self, i: int) -> np.ndarray:
        """(R_max, 2, L) float32 from the verified bytes of sample first + i."""
        raw = self._raw(i)
        rows, length = (int(v) for v in self._iq_shape[i])
        nr = int(self._num_rx[i])
        if nr > rows:
            raise IQIntegrityError(f"sample {self.first + i} has {nr} receivers but IQ for only {rows}")
        c = decode_sample(raw, (rows, length))
        out = np.zeros((self.r_max, 2, length), np.float32)
        # Only the real receivers' rows: the stored array's padding slots stay zero here.
        out[:nr, 0] = c[:nr].real
        out[:nr, 1] = c[:nr].imag
        return out

    def _raw(self, i: int) -> bytes:
        self._after_fork()
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        idx = self.first + i
        k = int(self._iq_key[i])
        if k < 0:   # committed_range checked pairing; this means the rows changed since
            raise IQIntegrityError(f"sample {idx} has no IQ row")
        key, off, length = self._keys[k], int(self._iq_offset[i]), int(self._iq_length[i])
        raw = _get(self._object_store(), key, off, length, f"sample {idx}")
        verify_sample(raw, self._iq_sha[i].tobytes().hex(), idx, key, off, length)
        if self.cache_size:
            self._cache[i] = raw
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return raw

    # ------------------------------------------------------------------ per-process state
    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._store, self._cache, self._pid = None, OrderedDict(), os.getpid()

    def _object_store(self) -> ObjectStore:
        if self._store is None:
            self._store = ObjectStore.from_env(**(self._settings or {}))
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        # Client and cache stay behind: the receiving process opens its own on first use.
        state = dict(self.__dict__)
        state["_store"], state["_cache"], state["_pid"] = None, OrderedDict(), -1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return (f"HeimdallDataset({self.dataset_name!r}, {self.dataset_type}, samples {self.first}:"
                f"{self.stop}, r_max={self.r_max}, iq_length={self.iq_length})")


def _vec(values: Sequence[Any] | None, n: int) -> np.ndarray:
    """A per-receiver array column as float64 (n,): NULL column or NULL elements -> NaN."""
    if values is None:
        return np.full(n, np.nan)
    out = np.array(values, dtype=np.float64)   # None elements become NaN, bools 0/1
    if out.shape != (n,):
        raise HeimdallError(f"per-receiver array of length {out.shape} where {n} receivers")
    return out


__all__ = ["FEATURE_NAMES", "HeimdallDataset", "IQIntegrityError", "committed_range",
           "find_dataset", "iter_iq_runs", "reader_snapshot", "verify_sample"]
