"""The training loader: :class:`HeimdallDataset` over the committed samples of a dataset.

``HeimdallDataset`` is a PyTorch-style *map* dataset (``__len__`` + ``__getitem__``) that
needs no torch: items are dicts of numpy arrays, which ``torch.utils.data.DataLoader``'s
default collate turns into tensors (``pip install 'heimdall-synth[train]'`` for torch). It
reads the feature rows of the committed range once (at construction, in one snapshot),
keeps them as compact numpy arrays, and reads each sample's IQ with one ranged GET,
verified against the sha256 the database recorded (``heimdall_synth.reader``, shared with
export and plots)::

    from heimdall_synth import HeimdallDataset
    train = HeimdallDataset("my-dataset", split="train")   # stable: survives expansion
    val = HeimdallDataset("my-dataset", split="val")
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import psycopg

from worker import db
from worker.errors import HeimdallError
from worker.iqformat import NUMPY_DTYPES, stored_dtype
from worker.rows import ESTIMATED_PER_RECEIVER
from worker.storage import ObjectStore, decode_sample

from .reader import (
    IQIntegrityError,
    committed_range,
    find_dataset,
    read_range,
    reader_snapshot,
    split_indices,
    split_params,
    store_settings,
    verify_sample,
)
from .splits import check_split

# Per-receiver features of ``HeimdallDataset`` items, in column order of ``features``:
# the estimated columns of the one column registry (worker.rows), never the truth.
FEATURE_NAMES: tuple[str, ...] = ESTIMATED_PER_RECEIVER

# Rows fetched per round trip when loading feature rows (bounds client memory: a page of
# Python objects is converted to numpy before the next one is fetched).
PAGE_ROWS = 5000


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
    split:
        ``"train"``, ``"val"`` or ``"test"``: only the samples of ``index_range`` in that
        stable split (``heimdall.split_of``: fixed per sample by the dataset's seed and the
        fractions of its config key ``splits``, so it never changes when the dataset grows);
        None (default) every sample.
    cache_size:
        Samples whose verified IQ bytes are kept per process (LRU); 0 disables the cache.
    max_receivers:
        Receiver slots ``R_max`` of every item. Default: the most any sample (or its IQ)
        has. A value smaller than that is an error: receivers are never dropped.
    conn:
        An open psycopg connection to use instead of ``database_url`` (not kept).

    Items (``__getitem__(i)``, sample index ``sample_indices[i]``: ``first + i`` without a
    split), all numpy:

    - ``iq``: float32 (R_max, 2, L), channel 0 real, 1 imaginary, in sqrt(mW) (mean of
      re^2 + im^2 = power in mW); iq_raw datasets only. Rows >= num_receivers are zero.
      Whatever the stored dtype: ci16_le codes (datasets of revision 0004's default) are
      multiplied by sqrt of their receiver's ``scale_mw``, giving exactly the values the
      features were estimated from.
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
                 max_receivers: int | None = None, conn: psycopg.Connection | None = None,
                 split: str | None = None) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        check_split(split)
        own = conn is None
        if own:
            conn = db.Database(database_url).connect()
        try:
            with reader_snapshot(conn):
                ds = find_dataset(conn, dataset)
                first, stop = committed_range(conn, ds, index_range)
                wanted = (np.arange(first, stop, dtype=np.int64) if split is None
                          else np.array(split_indices(conn, ds, first, stop, split), np.int64))
                self._load(conn, ds, first, stop, wanted, split)
        finally:
            if own:
                conn.close()
        self.dataset_id = str(ds["id"])
        self.dataset_name: str = ds["name"]
        self.dataset_type: str = ds["dataset_type"]
        self.first, self.stop = first, stop
        self.split = split
        self.cache_size = cache_size
        self._settings = store_settings(store)
        # The given store is usable as is only in this process (see reader.store_settings).
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
    def _load(self, conn: psycopg.Connection, ds: Mapping[str, Any], first: int, stop: int, wanted: np.ndarray,
              split: str | None) -> None:
        """Fetch the samples ``wanted`` of [first, stop) (all, or one split's) page by page into
        compact numpy arrays.

        Numpy arrays (not lists of dicts) so that DataLoader workers forked from this
        process share the memory copy-on-write (touching Python objects would copy pages)
        and a pickled dataset (spawn) is small and fast.
        """
        n = len(wanted)
        f = len(FEATURE_NAMES)
        self.sample_indices = wanted                    # item i is sample sample_indices[i]
        self._target = np.empty((n, 3), np.float32)
        self._num_rx = np.empty(n, np.int32)
        self._iq_key = np.full(n, -1, np.int32)         # index into self._keys, -1: no IQ
        self._iq_offset = np.zeros(n, np.int64)
        self._iq_length = np.zeros(n, np.int64)
        self._iq_sha = np.zeros((n, 32), np.uint8)
        self._iq_shape = np.zeros((n, 2), np.int32)
        self._iq_ci16 = np.zeros(n, np.bool_)          # stored dtype ci16_le (else complex64)
        scales: dict[int, np.ndarray] = {}              # ci16_le: mW per code^2 per receiver slot
        self._keys: list[str] = []
        key_ids: dict[str, int] = {}
        rx_rows: list[np.ndarray] = []                  # per sample (nr, 3) float64
        feat_rows: list[np.ndarray] = []                # per sample (nr, F) float32
        self.sample_rate_hz: int | None = None
        pos = 0
        for page_first in range(first, stop, PAGE_ROWS):
            rows = db.run(conn, "training_rows_page", dataset_id=ds["id"], first=page_first,
                          stop=min(stop, page_first + PAGE_ROWS), **split_params(ds, split))
            for r in rows:
                if pos >= n or int(r["sample_idx"]) != wanted[pos]:
                    missing = int(wanted[pos]) if pos < n else int(r["sample_idx"])
                    raise HeimdallError(f"sample {missing} vanished while loading (dataset deleted "
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
                    dtype = stored_dtype(r.get("dtype"))
                    if dtype not in NUMPY_DTYPES:
                        raise HeimdallError(f"sample {int(r['sample_idx'])}: unknown IQ dtype {dtype!r}")
                    if dtype == "ci16_le":
                        self._iq_ci16[pos] = True
                        scales[pos] = _vec(r.get("scale_mw"), int(r["shape"][0])).astype(np.float32)
                pos += 1
        if pos != n:
            raise HeimdallError(f"expected {n} samples in {first}:{stop}"
                                + (f" (split {split!r})" if split else "") + f", read {pos}")
        self._rx_list, self._feat_list = rx_rows, feat_rows
        # scale_mw of ci16_le samples as one array (n, stored receiver slots), NaN elsewhere
        self._iq_scale = np.full((n, max((len(v) for v in scales.values()), default=0)), np.nan, np.float32)
        for k, v in scales.items():
            self._iq_scale[k, :len(v)] = v
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
        return len(self.sample_indices)

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
            "sample_idx": np.asarray(self.sample_indices[i], dtype=np.int64),
        }
        if self.dataset_type == "iq_raw":
            item["iq"] = self._iq(i)
        return item

    def _iq(self, i: int) -> np.ndarray:
        """(R_max, 2, L) float32 from the verified bytes of item i (sample sample_indices[i])."""
        raw = self._raw(i)
        rows, length = (int(v) for v in self._iq_shape[i])
        nr = int(self._num_rx[i])
        if nr > rows:
            raise IQIntegrityError(f"sample {int(self.sample_indices[i])} has {nr} receivers but IQ for only {rows}")
        if self._iq_ci16[i]:
            scale = self._iq_scale[i, :rows]
            if scale.shape != (rows,) or not (np.isfinite(scale[:nr]) & (scale[:nr] > 0)).all():
                raise IQIntegrityError(f"sample {int(self.sample_indices[i])} is ci16_le without a usable "
                                       f"scale_mw for its {nr} receivers: {scale[:nr].tolist()}")
            c = decode_sample(raw, (rows, length), "ci16_le", scale)
        else:
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
        idx = int(self.sample_indices[i])
        k = int(self._iq_key[i])
        if k < 0:   # committed_range checked pairing; this means the rows changed since
            raise IQIntegrityError(f"sample {idx} has no IQ row")
        key, off, length = self._keys[k], int(self._iq_offset[i]), int(self._iq_length[i])
        raw = read_range(self._object_store(), key, off, length, f"sample {idx}")
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
        split = "" if self.split is None else f", split {self.split!r} ({len(self)})"
        return (f"HeimdallDataset({self.dataset_name!r}, {self.dataset_type}, samples {self.first}:"
                f"{self.stop}{split}, r_max={self.r_max}, iq_length={self.iq_length})")


def _vec(values: Sequence[Any] | None, n: int) -> np.ndarray:
    """A per-receiver array column as float64 (n,): NULL column or NULL elements -> NaN."""
    if values is None:
        return np.full(n, np.nan)
    out = np.array(values, dtype=np.float64)   # None elements become NaN, bools 0/1
    if out.shape != (n,):
        raise HeimdallError(f"per-receiver array of length {out.shape} where {n} receivers")
    return out


__all__ = ["FEATURE_NAMES", "HeimdallDataset", "IQIntegrityError"]
