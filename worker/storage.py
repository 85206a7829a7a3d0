"""Object store access (S3 API via the ``minio`` client) and the IQ chunk layout.

One object per chunk: a standard ``.npy`` file holding the chunk's IQ in its stored dtype
(:mod:`worker.iqformat`): complex64 of shape (n_samples, receivers, L) (8 bytes per IQ
sample), or for ``ci16_le`` int16 of shape (n_samples, receivers, L, 2) (I, Q interleaved,
4 bytes per IQ sample: half the bytes; the scale to mW is in the database rows). Sample k
of the chunk is the byte range ``[header_len + k * B, header_len + (k + 1) * B)`` with
``B = receivers * L * bytes per IQ sample``, so a training loader reads one sample with one
ranged GET, and ``np.load`` reads the whole chunk.
Keys are deterministic in the chunk's range, so a redelivered chunk rewrites the same
object with the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from .errors import HeimdallError
from .iqformat import (
    BYTES_PER_IQ_SAMPLE,
    COMPLEX64,
    NUMPY_DTYPES,
    array_shape,
    check_dtype,
    ci16_to_complex64,
)
from .iqformat import dtype_of_array as _dtype_of_array

IQ_DTYPE = np.dtype("<c8")          # the complex64 layout (numpy dtype); ci16_le: see NUMPY_DTYPES


class StorageError(HeimdallError):
    """The object store refused or could not be reached (message names the setting)."""


def iq_object_key(dataset_id: str, first_idx: int, last_idx: int) -> str:
    """Deterministic key of the IQ object of chunk [first_idx, last_idx] of a dataset."""
    return f"datasets/{dataset_id}/iq/{first_idx:010d}-{last_idx:010d}.npy"


def dataset_prefix(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/"


def parse_iq_key(key: str) -> tuple[str, int, int] | None:
    """(dataset_id, first_idx, last_idx) of an IQ object key, or None if not one."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "datasets" or parts[2] != "iq" or not parts[3].endswith(".npy"):
        return None
    try:
        first, last = parts[3][:-4].split("-")
        return parts[1], int(first), int(last)
    except ValueError:
        return None


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk's IQ as .npy bytes plus each sample's byte range and sha256."""

    data: bytes
    header_len: int
    sample_nbytes: int
    sha256: list[str]
    shape: tuple[int, int]          # per sample: (receivers, L)
    dtype: str = COMPLEX64          # stored dtype (worker.iqformat): complex64 | ci16_le

    def offset(self, k: int) -> int:
        return self.header_len + k * self.sample_nbytes


def _as_stored(iq: np.ndarray) -> tuple[np.ndarray, str]:
    """``iq`` as the contiguous little-endian array that is stored, and its stored dtype:
    complex (n, R, L) -> complex64; int16 (n, R, L, 2) -> ci16_le."""
    iq = np.asarray(iq)
    dtype = _dtype_of_array(iq)
    np_dtype, tail = NUMPY_DTYPES[dtype]
    if iq.ndim != 3 + len(tail) or iq.shape[3:] != tail:
        raise ValueError(f"{dtype} IQ must have shape (n, receivers, L{', 2' if tail else ''}), got {iq.shape}")
    return np.ascontiguousarray(iq, dtype=np_dtype), dtype


def encode_chunk(iq: np.ndarray) -> EncodedChunk:
    """Serialize a chunk's IQ as .npy and hash every sample's bytes: complex64
    (n, receivers, L), or int16 ADC codes (n, receivers, L, 2) stored as ci16_le."""
    iq, dtype = _as_stored(iq)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, iq, allow_pickle=False)
    data = buf.getvalue()
    header_len = len(data) - iq.nbytes
    flat = memoryview(data)
    per = iq.shape[1] * iq.shape[2] * BYTES_PER_IQ_SAMPLE[dtype]
    hashes = [hashlib.sha256(flat[header_len + k * per: header_len + (k + 1) * per]).hexdigest()
              for k in range(iq.shape[0])]
    return EncodedChunk(data, header_len, per, hashes, (iq.shape[1], iq.shape[2]), dtype)


def npy_header(shape: tuple[int, int, int], dtype: str = COMPLEX64) -> bytes:
    """The .npy header of a C-ordered chunk of ``shape`` = (n, receivers, L) in the stored
    ``dtype`` (what np.save writes: ci16_le's array has the extra axis of 2)."""
    n, receivers, length = shape
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(NUMPY_DTYPES[check_dtype(dtype)][0]), "fortran_order": False,
              "shape": array_shape(n, receivers, length, dtype)})
    return buf.getvalue()


class StreamAborted(Exception):
    """A streamed chunk was aborted (generation failed, or the upload did): neither side waits."""


class StreamingChunk:
    """A chunk's .npy object written sample block by sample block while it is uploaded.

    The header is known up front (the chunk's shape is), so the object's bytes can be sent
    as soon as each block of samples is generated: the upload (network or the S3 server)
    overlaps generating the rest of the chunk. The bytes and per-sample sha256 are the same
    as ``encode_chunk`` of the whole array.

    Memory is bounded whatever the chunk size: at most ``max_blocks`` blocks wait in the
    queue between the generator (``add``, which blocks while the queue is full, i.e. while
    the uploader is behind) and the uploader (``reader().read``), and a block is dropped as
    soon as it has been read. Nothing is kept for a retry: a failed upload is retried by
    generating the chunk again (generation is deterministic per index). ``abort`` (either
    side) makes the other side's waiting ``add`` / ``read`` raise :class:`StreamAborted`.
    """

    POLL_S = 0.1     # how often a waiting add/read looks at the abort flag
    # Bytes of IQ the generator produces per block (at least one sample): with max_blocks
    # queued, one being generated and one being read, the stream holds a few of these.
    BLOCK_BYTES = 2 * 1024 * 1024

    def __init__(self, n: int, receivers: int, length: int, max_blocks: int = 2, dtype: str = COMPLEX64) -> None:
        self.dtype = check_dtype(dtype)
        self.header = npy_header((n, receivers, length), dtype)
        self.shape = (receivers, length)
        self.sample_nbytes = receivers * length * BYTES_PER_IQ_SAMPLE[dtype]
        self.total_len = len(self.header) + n * self.sample_nbytes
        self.sha256: list[str] = []
        self._q: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=max(1, max_blocks) + 1)
        self._aborted: str | None = None
        self._q.put(self.header)

    def add(self, iq_block: np.ndarray) -> None:
        """Hash the block's samples and queue its bytes (no copy), waiting while the queue is full.
        The block is complex64 (k, receivers, L) or, for a ci16_le stream, int16 (k, receivers, L, 2)."""
        block, dtype = _as_stored(iq_block)
        if dtype != self.dtype or block.shape[1:3] != self.shape:
            raise ValueError(f"IQ block {dtype} of shape {block.shape} does not fit {self.dtype} {self.shape}")
        view = memoryview(block.reshape(-1).view(np.uint8))
        for k in range(block.shape[0]):
            self.sha256.append(hashlib.sha256(view[k * self.sample_nbytes:(k + 1) * self.sample_nbytes]).hexdigest())
        self._put(view)

    def close(self) -> None:
        """End of the chunk: the reader returns EOF once it has read everything queued."""
        self._put(None)

    def abort(self, reason: str = "aborted") -> None:
        """Stop both sides: a waiting or later ``add`` / ``read`` raises StreamAborted."""
        if self._aborted is None:
            self._aborted = reason
        # drop what waits, so a blocked add can return and no block outlives the stream
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass

    def _put(self, item: bytes | memoryview | None) -> None:
        while True:
            if self._aborted is not None:
                raise StreamAborted(f"stream aborted: {self._aborted}")
            try:
                self._q.put(item, timeout=self.POLL_S)
                return
            except queue.Full:
                continue

    def _get(self) -> bytes | memoryview | None:
        while True:
            if self._aborted is not None:
                raise StreamAborted(f"stream aborted: {self._aborted}")
            try:
                return self._q.get(timeout=self.POLL_S)
            except queue.Empty:
                continue

    def reader(self) -> _StreamReader:
        return _StreamReader(self)

    def offset(self, k: int) -> int:
        return len(self.header) + k * self.sample_nbytes

    def samples_per_block(self) -> int:
        """How many samples the generator should put in one block (>= 1)."""
        return max(1, self.BLOCK_BYTES // max(self.sample_nbytes, 1))


class _StreamReader(io.RawIOBase):
    """File-like reader over a StreamingChunk's queue (None = end); read() blocks until it
    has ``size`` bytes or the end. Each read copies its bytes once (joining the queued
    blocks); only the unread tail of the last block is kept for the next read."""

    def __init__(self, stream: StreamingChunk) -> None:
        self._stream, self._rest, self._eof = stream, memoryview(b""), False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        pieces, have = [self._rest], len(self._rest)
        while not self._eof and (size < 0 or have < size):
            item = self._stream._get()
            if item is None:
                self._eof = True
            else:
                view = memoryview(item)
                pieces.append(view)
                have += len(view)
        self._rest = memoryview(b"")
        if 0 <= size < have:
            last = pieces[-1]
            cut = len(last) - (have - size)
            pieces[-1], self._rest = last[:cut], last[cut:]
        return b"".join(pieces)


def decode_sample(raw: bytes, shape: tuple[int, int], dtype: str = COMPLEX64,
                  scale_mw: np.ndarray | list[float] | None = None) -> np.ndarray:
    """Bytes of one sample's range -> complex64 array (receivers, L) in sqrt(mW).

    complex64: the bytes as they are (a read-only view). ci16_le: the codes times
    sqrt(``scale_mw``) (one per receiver, the row's ``scale_mw``; required), exactly the
    values the features were estimated from (:func:`worker.iqformat.ci16_to_complex64`)."""
    if check_dtype(dtype) == COMPLEX64:
        return np.frombuffer(raw, dtype=IQ_DTYPE).reshape(shape)
    if scale_mw is None:
        raise ValueError("a ci16_le sample needs its scale_mw (mW per code^2, one per receiver)")
    scale = np.array([np.nan if v is None else v for v in scale_mw], dtype=np.float32)
    return ci16_to_complex64(decode_codes(raw, shape), scale)


def decode_codes(raw: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Bytes of one ci16_le sample's range -> its int16 codes (receivers, L, 2) (a read-only view)."""
    return np.frombuffer(raw, dtype=NUMPY_DTYPES["ci16_le"][0]).reshape((*shape, 2))


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime | None


class ObjectStore:
    """Thin wrapper over ``minio.Minio`` bound to one bucket; errors become StorageError."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 secure: bool = False, region: str = "us-east-1") -> None:
        if not endpoint or "://" in endpoint or "/" in endpoint:
            raise StorageError(f"HEIMDALL_S3_ENDPOINT must be host:port without scheme, got {endpoint!r}")
        if len(bucket) < 3:
            raise StorageError(f"HEIMDALL_S3_BUCKET must have at least 3 characters, got {bucket!r}")
        self.endpoint, self.bucket = endpoint, bucket
        self.access_key, self.secret_key, self.secure, self.region = access_key, secret_key, secure, region
        # region given: avoids a location lookup per bucket; secure=False: no TLS retries on http.
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key,
                            secure=secure, region=region)

    @classmethod
    def from_env(cls, **overrides: str | bool | None) -> ObjectStore:
        """The one reader of the S3 settings: ``overrides`` (CLI flags: endpoint, access_key,
        secret_key, bucket, secure) win over ``HEIMDALL_S3_*`` unless None or blank (an
        explicit ``secure=False`` wins too); a missing or malformed one raises StorageError
        naming the variable."""
        def get(name: str, default: str | None = None) -> str:
            given = overrides.get(name.lower())
            value = (str(given) if given is not None and str(given).strip()
                     else os.environ.get(f"HEIMDALL_S3_{name}") or default)
            if not value:
                raise StorageError(f"HEIMDALL_S3_{name} is not set")
            return str(value)

        secure = get("SECURE", "false")
        if secure.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise StorageError(f"HEIMDALL_S3_SECURE must be true or false, got {secure!r}")
        return cls(get("ENDPOINT"), get("ACCESS_KEY"), get("SECRET_KEY"),
                   get("BUCKET", "heimdall-iq"), secure=secure.lower() in ("true", "1", "yes"))

    def _wrap(self, what: str, exc: Exception) -> StorageError:
        if isinstance(exc, S3Error):
            if exc.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                return StorageError(f"object store at {self.endpoint} refused the credentials "
                                    f"(HEIMDALL_S3_ACCESS_KEY / HEIMDALL_S3_SECRET_KEY): {exc.code}")
            return StorageError(f"{what} failed on {self.endpoint}: {exc.code}: {exc.message}")
        return StorageError(f"{what} failed: object store at {self.endpoint} unreachable "
                            f"(HEIMDALL_S3_ENDPOINT): {type(exc).__name__}: {exc}")

    def settings(self) -> dict[str, object]:
        """Constructor arguments, to build an equivalent store in another process (a Minio
        client can be neither pickled nor shared across fork)."""
        return {"endpoint": self.endpoint, "access_key": self.access_key, "secret_key": self.secret_key,
                "bucket": self.bucket, "secure": self.secure}

    def ensure_bucket(self) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except Exception as exc:
            raise self._wrap(f"bucket {self.bucket!r}", exc) from exc

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data),
                                   content_type="application/octet-stream")
        except Exception as exc:
            raise self._wrap(f"PUT {key}", exc) from exc

    # Streamed PUTs: parts of 8 MiB (S3 needs >= 5 MiB; the AWS CLI's default size), sent one
    # after the other by the uploader thread (generation still overlaps the upload). Not in
    # parallel: minio's upload pool has an unbounded task queue and keeps reading parts while
    # its threads retry against a store that is down, so memory grew with the object (936 MB
    # for a 448 MB object in test_worker_limits); sequential parts fail at once instead.
    STREAM_PART_BYTES = 8 * 1024 * 1024
    STREAM_PARALLEL_PARTS = 1

    def put_stream(self, key: str, reader: io.RawIOBase, length: int) -> None:
        """PUT ``length`` bytes read from ``reader`` (multipart when longer than a part)."""
        try:
            self.client.put_object(self.bucket, key, reader, length,
                                   content_type="application/octet-stream",
                                   part_size=self.STREAM_PART_BYTES,
                                   num_parallel_uploads=self.STREAM_PARALLEL_PARTS)
        except Exception as exc:
            raise self._wrap(f"PUT {key}", exc) from exc

    def get(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        try:
            resp = self.client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()
        except Exception as exc:
            raise self._wrap(f"GET {key}", exc) from exc

    def list(self, prefix: str) -> Iterator[StoredObject]:
        try:
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield StoredObject(obj.object_name, obj.size or 0, obj.last_modified)
        except Exception as exc:
            raise self._wrap(f"LIST {prefix}", exc) from exc

    def remove(self, keys: list[str]) -> int:
        if not keys:
            return 0
        try:
            errors = list(self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
        except Exception as exc:
            raise self._wrap("DELETE", exc) from exc
        if errors:
            raise StorageError(f"DELETE failed for {len(errors)} objects, first: {errors[0]}")
        return len(keys)
