"""The worker loop: claim a chunk -> generate -> upload IQ -> commit rows, repeat.

Stateless: everything it needs comes with the claimed chunk (dataset type, normalized
config, seed, index range); everything it produces is either an object whose key is a
function of the range (rewritten identically on redelivery) or rows committed in one
transaction together with the chunk's completion. Crash anywhere and the message comes
back after its visibility timeout; commit twice and the second is a no-op.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from . import db, queries, settings
from .config import GenerationConfig
from .errors import (
    ChunkAbandoned,
    ClaimLost,
    DatabaseUnavailable,
    GeneratorMismatch,
    HeimdallError,
    NotFound,
)
from .rows import (
    FEATURE_COLUMNS,
    IQ_COLUMNS,
    STAGE_FEATURES,
    STAGE_IQ,
    feature_rows,
    iq_rows,
)
from .storage import ObjectStore, StorageError, StreamAborted, StreamingChunk, iq_object_key

log = logging.getLogger("heimdall.worker")


class ShutdownNow(BaseException):
    """Second signal: stop at once (the chunk in hand is released)."""


@dataclass
class Settings:
    database_url: str
    store: ObjectStore                 # from HEIMDALL_S3_* / flags, see ObjectStore.from_env
    vt_s: int = 120
    max_reads: int = 5
    poll_s: float = 0.5
    s3_retry_s: float = 300.0
    db_retry_s: float = 300.0
    worker_id: str = ""
    until_idle: bool = False
    max_chunks: int | None = None

    @classmethod
    def from_env(cls, *, database_url: str | None = None, vt_s: int | None = None,
                 max_reads: int | None = None, poll_s: float | None = None, worker_id: str | None = None,
                 until_idle: bool | None = None, max_chunks: int | None = None,
                 s3: dict[str, Any] | None = None) -> Settings:
        """The one reader of a worker's settings (``python -m worker`` passes nothing,
        ``heimdall-synth worker run`` its flags): an argument that is not None wins over its
        environment variable (worker.settings.WORKER_*, HEIMDALL_DATABASE_URL,
        HEIMDALL_S3_* via ObjectStore.from_env with ``s3`` as overrides), else the default.
        A missing or malformed setting raises here, naming it."""
        values = {"vt_s": settings.WORKER_VT_S.get(vt_s),
                  "max_reads": settings.WORKER_MAX_READS.get(max_reads),
                  "poll_s": settings.WORKER_POLL_S.get(poll_s),
                  "until_idle": settings.WORKER_UNTIL_IDLE.get(until_idle),
                  "max_chunks": settings.WORKER_MAX_CHUNKS.get(max_chunks)}
        url = db.resolve_url(database_url)
        store = ObjectStore.from_env(**(s3 or {}))
        return cls(database_url=url, store=store, **values,
                   worker_id=settings.WORKER_ID.get(worker_id) or f"{socket.gethostname()}:{os.getpid()}")


def _log(event: str, **fields: Any) -> None:
    log.info(json.dumps({"event": event, **fields}, default=str))


def fault_point(name: str) -> None:
    """Test hook for crash windows: HEIMDALL_FAULT_SLEEP="<name>:<seconds>" makes the worker
    log ``fault_point`` and sleep there, so a test can kill it or its services at exactly
    that point. Unset in production: a dictionary lookup."""
    spec = os.environ.get("HEIMDALL_FAULT_SLEEP")
    if spec:
        point, _, seconds = spec.partition(":")
        if point == name:
            _log("fault_point", point=name, pid=os.getpid())
            sys.stderr.flush()
            time.sleep(float(seconds or 3600))


class Heartbeat:
    """Extends the claim's visibility every vt/3 s from its own connection while a chunk runs."""

    def __init__(self, url: str, chunk_id: int, claim_token: Any, vt_s: int) -> None:
        self.url, self.chunk_id, self.claim_token, self.vt_s = url, chunk_id, claim_token, vt_s
        self.stop_evt = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = None
        while not self.stop_evt.wait(max(1.0, self.vt_s / 3)):
            try:
                if conn is None or conn.closed:
                    conn = db.Database(self.url, application_name="heimdall-worker").connect()
                queries.one(conn, "extend_chunk", chunk_id=self.chunk_id, claim_token=self.claim_token,
                            vt_s=self.vt_s)
            except (ClaimLost, ChunkAbandoned, NotFound):
                self.lost = True      # someone else owns it now; our commit will find out
                break
            except Exception as exc:  # keep beating; the commit path handles real failures
                _log("heartbeat_error", chunk_id=self.chunk_id, error=str(exc))
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_evt.set()
        self.thread.join(5)


# glibc serves buffers of >= 128 KiB with mmap (returned to the OS on free) until the first
# such buffer is freed; it then raises the threshold (up to 32 MiB) and serves later ones
# from its heap arenas, where freed holes stay resident. A streaming worker allocates and
# frees 2 MiB blocks in the generator thread and 8 MiB parts in the uploader thread for its
# whole life, so its RSS would depend on how those frees interleave (timing, retries).
# A fixed threshold keeps every such buffer on mmap: RSS follows what is live.
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3          # mallopt parameter number (glibc malloc.h)


def pin_large_allocations_to_mmap() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES (disables its dynamic raise).
    Returns False where there is no glibc (the allocator's own policy then applies)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stop_requested = False
        self.conn: psycopg.Connection | None = None
        self.store: ObjectStore | None = None
        self.chunks_done = 0
        self.samples_done = 0
        self.terrain = None                # worker.terrain.TerrainLoader, made on first use

    # ------------------------------------------------------------------ connections
    def connect(self, deadline_s: float | None = None) -> psycopg.Connection:
        """(Re)connect through the database boundary: one attempt (deadline_s None), or
        retrying with backoff for up to ``deadline_s`` while the database is unreachable
        and no stop was requested."""
        retry = db.Retry() if deadline_s is None else db.Retry(attempts=None, deadline_s=deadline_s)

        def on_retry(attempt: int, delay: float, exc: BaseException) -> None:
            _log("db_reconnect", error=str(exc).strip().splitlines()[0], attempt=attempt, retry_in_s=delay)

        database = db.Database(self.s.database_url, application_name="heimdall-worker")
        self.conn = database.connect(retry=retry, should_stop=lambda: self.stop_requested, on_retry=on_retry)
        return self.conn

    def start(self) -> None:
        self.connect(deadline_s=None)
        if not queries.one(self.conn, "schema_present")["present"]:
            raise HeimdallError("the database has no heimdall schema: run `heimdall-synth db upgrade`")
        self.store = self.s.store
        self.store.ensure_bucket()

    # ------------------------------------------------------------------------ loop
    def run(self, until_idle: bool = False, max_chunks: int | None = None) -> int:
        pin_large_allocations_to_mmap()
        self.start()
        _log("worker_started", worker_id=self.s.worker_id, until_idle=until_idle, pid=os.getpid())
        claim_failures = 0
        while not self.stop_requested:
            if max_chunks is not None and self.chunks_done >= max_chunks:
                break
            try:
                try:
                    job = queries.one(self.conn, "claim_chunk", worker_id=self.s.worker_id,
                                      vt_s=self.s.vt_s, max_reads=self.s.max_reads,
                                      generator_version=self._generator_version())
                    claim_failures = 0
                except HeimdallError as exc:
                    if isinstance(exc, DatabaseUnavailable):
                        raise
                    # claim_chunk settles every bad message itself; an error here is the
                    # database's (a bug, a lock timeout, a broken install): keep serving,
                    # with backoff, rather than let any one thing stop every worker.
                    claim_failures += 1
                    delay = min(0.5 * 2 ** min(claim_failures, 6), 30.0)
                    _log("claim_error", error=str(exc).strip().splitlines()[0], sqlstate=exc.sqlstate,
                         retry_in_s=delay)
                    time.sleep(delay)
                    continue
                if job is None:
                    if until_idle and queries.one(self.conn, "work_in_flight")["open"] == 0:
                        break
                    time.sleep(self.s.poll_s)
                    continue
                try:
                    self.process(job)
                except (DatabaseUnavailable, psycopg.OperationalError):
                    raise
                except Exception as exc:
                    # Anything else (object store down past its retry window, a config this
                    # worker's version cannot read, an unexpected refusal): the worker
                    # survives, the chunk is retried later and fails after max_reads with
                    # the error text on the chunk for admins.
                    _log("chunk_error", chunk_id=job["chunk_id"], error=str(exc).strip().splitlines()[0])
                    self._fail(job, f"worker error: {exc}", permanent=False)
            except DatabaseUnavailable as exc:
                _log("db_lost", error=str(exc))
                self.connect(deadline_s=self.s.db_retry_s)
            except psycopg.OperationalError as exc:
                _log("db_lost", error=str(exc).strip())
                self.connect(deadline_s=self.s.db_retry_s)
        _log("worker_stopped", worker_id=self.s.worker_id, chunks=self.chunks_done, samples=self.samples_done,
             max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
        if self.conn is not None:
            self.conn.close()
        return 0

    def process(self, job: dict[str, Any]) -> None:
        chunk_id = job["chunk_id"]
        ds, first, last = str(job["dataset_id"]), job["first_idx"], job["last_idx"]
        t0 = time.monotonic()
        try:
            with Heartbeat(self.s.database_url, chunk_id, job["claim_token"], self.s.vt_s):
                from .rf import GENERATOR_VERSION, GenerationError, generate_samples
                from .rf.generate import GenerationCancelled
                from .rf.terrain import TerrainError

                cfg = GenerationConfig.from_normalized(job["config"])
                try:    # a terrain set (ITM point-to-point): fetched and verified on first use
                    dem = self._terrain(cfg)
                except TerrainError as exc:       # unknown set, damaged tile, station vs DEM
                    self._fail(job, f"terrain: {exc}", permanent=True)
                    return
                if dem is not None:
                    generate_samples = functools.partial(generate_samples, terrain=dem)
                key, enc, nbytes = None, None, 0
                cancel = self._cancel_check()
                try:
                    if job["dataset_type"] == "iq_raw":
                        key = iq_object_key(ds, first, last)
                        batch, enc, t_gen = self._generate_streaming(job, cfg, key, generate_samples, cancel)
                        nbytes = enc.total_len
                        fault_point("after_upload")
                    else:
                        batch = generate_samples(cfg, job["seed"], first, last - first + 1, want_iq=False,
                                                 cancel=cancel)
                        t_gen = time.monotonic()
                except GenerationError as exc:
                    self._fail(job, str(exc), permanent=True)
                    return
                except GenerationCancelled as exc:
                    # stop requested and the grace is over: give the chunk back now (the
                    # run loop then exits); another worker regenerates the same bytes
                    self._release(job)
                    _log("chunk_cancelled", chunk_id=chunk_id, sample_idx=exc.sample_idx,
                         seconds=round(time.monotonic() - t0, 3))
                    return
                t_up = time.monotonic()
                completed = self._commit(job, batch, key, enc, cfg.sample_rate_hz, GENERATOR_VERSION)
        except ShutdownNow:
            self._release(job)
            raise
        t_end = time.monotonic()
        if completed:
            self.chunks_done += 1
            self.samples_done += len(batch)
        _log("chunk_done" if completed else "chunk_already_done", dataset=ds, first_idx=first, last_idx=last,
             samples=len(batch), seconds=round(t_end - t0, 3), generate_s=round(t_gen - t0, 3),
             upload_s=round(t_up - t_gen, 3), commit_s=round(t_end - t_up, 3), bytes=nbytes,
             attempt=job["attempt"], kind=job["kind"])

    def _generate_streaming(self, job: dict[str, Any], cfg: GenerationConfig, key: str, generate_samples,
                            cancel: Callable[[], bool] | None = None):
        """Generate an iq_raw chunk in blocks and stream each block to the object store as
        soon as it exists, so the upload overlaps the generation of the rest. Generation is
        deterministic per index, so the blocks concatenate to exactly the whole-chunk
        result. Memory stays bounded whatever the chunk size: a few blocks wait between
        generator and uploader (the generator waits while the uploader is behind) and a
        sent block is dropped. If the streamed PUT fails, the chunk is generated again and
        streamed again (``_upload``: backoff, ``s3_retry_s``, stop request), never buffered.

        Returns (batch without IQ, StreamingChunk of the PUT that succeeded, time generation
        ended). Raises GenerationError / GenerationCancelled from the generator (``cancel``
        is passed to it) and StorageError once the retries are exhausted."""
        return self._upload(key, lambda: self._stream_chunk_once(job, cfg, key, generate_samples, cancel))

    def _stream_chunk_once(self, job: dict[str, Any], cfg: GenerationConfig, key: str, generate_samples,
                           cancel: Callable[[], bool] | None):
        """One attempt of ``_generate_streaming``: generate the chunk block by block while one
        uploader thread PUTs the stream. A failed upload aborts the stream (the generator
        stops at its next block) and raises StorageError; a failed generation aborts the
        stream (a short stream never completes a PUT: minio aborts the multipart upload)
        and re-raises."""
        first, last = job["first_idx"], job["last_idx"]
        n = last - first + 1
        stream = StreamingChunk(n, cfg.receivers.max_receivers, cfg.num_iq_samples, dtype=cfg.stored_iq_dtype)
        block = min(n, stream.samples_per_block())
        upload_error: list[BaseException] = []

        def upload() -> None:
            try:
                fault_point("before_upload")
                self.store.put_stream(key, stream.reader(), stream.total_len)
            except BaseException as exc:   # reported to the main thread below
                upload_error.append(exc)
                stream.abort(f"upload failed: {exc}")

        uploader = threading.Thread(target=upload, daemon=True, name=f"upload-{job['chunk_id']}")
        uploader.start()
        batch = ChunkBatchBuilder(n)
        try:
            for off in range(0, n, block):
                b = generate_samples(cfg, job["seed"], first + off, min(block, n - off), want_iq=True,
                                     cancel=cancel)
                iq, b.iq = b.iq, None
                stream.add(iq)
                del iq
                batch.add(b)
            stream.close()
        except StreamAborted:
            pass                           # the upload failed: its error is raised below
        except BaseException:
            stream.abort("generation stopped")
            uploader.join(5)
            raise
        t_gen = time.monotonic()
        uploader.join()
        if upload_error:
            exc = upload_error[0]
            if isinstance(exc, StorageError):
                raise exc
            raise StorageError(f"PUT {key} failed: {type(exc).__name__}: {exc}") from exc
        return batch.result(), stream, t_gen

    def _upload(self, key: str, send: Callable[[], Any]) -> Any:
        """Run ``send`` (one complete PUT of ``key``, e.g. generate + stream a chunk) with
        retries: an object-store outage is not the chunk's fault. The one backoff policy
        (db.Retry): 0.5 s doubling to 10 s, for ``s3_retry_s`` and not after a stop request;
        a vanished bucket is recreated. Returns what ``send`` returns."""

        def on_retry(attempt: int, delay: float, exc: BaseException) -> None:
            if "NoSuchBucket" in str(exc):          # the store was reset: recreate the bucket
                try:
                    self.store.ensure_bucket()
                except StorageError:
                    pass
            _log("s3_retry", key=key, error=str(exc), retry_in_s=delay)

        policy = db.Retry(attempts=None, deadline_s=self.s.s3_retry_s, first_delay_s=0.5, max_delay_s=10.0)
        return policy.call(send, lambda exc: isinstance(exc, StorageError),
                           should_stop=lambda: self.stop_requested, on_retry=on_retry)

    # A stop request (the first SIGTERM/SIGINT) lets the chunk in hand finish when its
    # generation ends within this many seconds; past that, generation stops at its next
    # attempt and the chunk is released (a config that rarely accepts can take hours).
    STOP_GRACE_S = 5.0

    def _cancel_check(self) -> Callable[[], bool]:
        """The generator's cancellation check for one chunk: True once a stop was requested
        and STOP_GRACE_S have passed since the generator first saw it."""
        seen: list[float] = []

        def cancel() -> bool:
            if not self.stop_requested:
                return False
            now = time.monotonic()
            if not seen:
                seen.append(now)
            return now - seen[0] >= self.STOP_GRACE_S

        return cancel

    def _commit(self, job, batch, key, enc, sample_rate_hz: int, generator_version: str) -> bool:
        """One transaction: lock chunk, COPY rows, complete. Retried across reconnects."""
        start = time.monotonic()
        ds = job["dataset_id"]
        while True:
            try:
                with self.conn.transaction():
                    needed = queries.one(self.conn, "begin_chunk_commit", chunk_id=job["chunk_id"],
                                         claim_token=job["claim_token"])["needed"]
                    if needed:
                        db.copy_rows(self.conn, STAGE_FEATURES, FEATURE_COLUMNS,
                                     _with_fault_after_first(feature_rows(ds, batch), "mid_copy"))
                        if key is not None:
                            db.copy_rows(self.conn, STAGE_IQ, IQ_COLUMNS,
                                         iq_rows(ds, batch, key, enc, sample_rate_hz))
                    done = queries.one(self.conn, "complete_chunk", chunk_id=job["chunk_id"],
                                       claim_token=job["claim_token"], generator_version=generator_version)
                return bool(done["completed"])
            except (NotFound, ChunkAbandoned, ClaimLost) as exc:
                # dataset deleted, chunk abandoned, or another worker holds it now: our
                # rows are not wanted (generation is deterministic: theirs are the same)
                _log("chunk_dropped", chunk_id=job["chunk_id"], reason=str(exc), sqlstate=exc.sqlstate)
                return False
            except GeneratorMismatch as exc:
                # permanent: no retry of this worker can ever commit it
                self._fail(job, f"generator version mismatch: {exc}", permanent=True)
                return False
            except (psycopg.OperationalError, DatabaseUnavailable) as exc:
                if time.monotonic() - start > self.s.db_retry_s:
                    raise
                _log("commit_retry", chunk_id=job["chunk_id"], error=str(exc).strip().splitlines()[0])
                self.connect(deadline_s=self.s.db_retry_s)
            except HeimdallError as exc:
                # deadlock / serialization failure: the transaction was rolled back, retry it
                if exc.sqlstate not in ("40P01", "40001") or time.monotonic() - start > self.s.db_retry_s:
                    raise
                _log("commit_retry", chunk_id=job["chunk_id"], error=str(exc).strip().splitlines()[0])
                time.sleep(0.1)

    def _terrain(self, cfg: GenerationConfig):
        """The terrain set of a config (None without one), loaded once per process into the
        local tile cache ($HEIMDALL_TERRAIN_CACHE) and checked against the config
        (worker.terrain, worker.rf.generate.check_terrain)."""
        if cfg.propagation is None or cfg.propagation.terrain is None:
            return None
        from .rf.generate import check_terrain
        from .terrain import TerrainLoader

        if self.terrain is None:
            self.terrain = TerrainLoader(self.store)
        dem = self.terrain.for_config(self.conn, cfg)
        check_terrain(cfg, dem)
        return dem

    @staticmethod
    def _generator_version() -> str:
        from .rf import GENERATOR_VERSION

        return GENERATOR_VERSION

    def _fail(self, job: dict[str, Any], error: str, permanent: bool) -> None:
        try:
            state = queries.one(self.conn, "fail_chunk", chunk_id=job["chunk_id"], claim_token=job["claim_token"],
                                error=error, permanent=permanent, retry_in_s=5)["state"]
        except (ClaimLost, ChunkAbandoned, NotFound) as exc:
            state = f"not ours any more ({exc.sqlstate})"
        _log("chunk_failed", chunk_id=job["chunk_id"], error=error, state=state)

    def _release(self, job: dict[str, Any]) -> None:
        try:
            if self.conn is None or self.conn.closed:
                self.connect(deadline_s=5)
            queries.one(self.conn, "release_chunk", chunk_id=job["chunk_id"], claim_token=job["claim_token"])
            _log("chunk_released", chunk_id=job["chunk_id"])
        except Exception as exc:   # the visibility timeout will release it anyway
            _log("release_failed", chunk_id=job["chunk_id"], error=str(exc))


def concat_batches(batches: list[Any]) -> Any:
    """Concatenate consecutive SampleBatch blocks (arrays along axis 0, lists joined)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    merged: dict[str, Any] = {}
    for f in dataclasses.fields(first):
        values = [getattr(b, f.name) for b in batches]
        if values[0] is None:
            merged[f.name] = None
        elif isinstance(values[0], np.ndarray):
            merged[f.name] = np.concatenate(values, axis=0)
        else:
            merged[f.name] = [x for v in values for x in v]
    return type(first)(**merged)


class ChunkBatchBuilder:
    """Collects consecutive SampleBatch blocks (without IQ) into one batch of ``n`` samples,
    copying each block into arrays allocated once for the chunk: the feature batch of a
    chunk is held once (no per-block arrays kept, no concatenation peak)."""

    def __init__(self, n: int) -> None:
        self.n, self.filled = n, 0
        self._cls: type | None = None
        self._fields: dict[str, Any] = {}

    def add(self, b: Any) -> None:
        k = len(b)
        if self.filled + k > self.n:
            raise ValueError(f"{self.filled + k} samples for a chunk of {self.n}")
        if self._cls is None:
            self._cls = type(b)
            for f in dataclasses.fields(b):
                v = getattr(b, f.name)
                if v is None:
                    self._fields[f.name] = None
                elif isinstance(v, np.ndarray):
                    self._fields[f.name] = np.empty((self.n, *v.shape[1:]), dtype=v.dtype)
                else:
                    self._fields[f.name] = []
        for name, dst in self._fields.items():
            v = getattr(b, name)
            if isinstance(dst, np.ndarray):
                dst[self.filled:self.filled + k] = v
            elif dst is not None:
                dst.extend(v)
            elif v is not None:
                raise ValueError(f"field {name} is None in the first block only")
        self.filled += k

    def result(self) -> Any:
        if self._cls is None or self.filled != self.n:
            raise ValueError(f"{self.filled} of {self.n} samples collected")
        return self._cls(**self._fields)


def _with_fault_after_first(rows, point: str):
    for i, row in enumerate(rows):
        yield row
        if i == 0:
            fault_point(point)


def install_signal_handlers(worker: Worker) -> None:
    def handler(signum: int, _frame: Any) -> None:
        if worker.stop_requested:
            raise ShutdownNow()
        worker.stop_requested = True
        _log("stopping", signal=signal.Signals(signum).name,
             note="finishing the chunk in hand; signal again to release it and exit now")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")


def run_worker(settings: Settings) -> int:
    """Run one worker process with ``settings`` until stopped (or idle / max_chunks): JSON
    log lines on stderr, SIGTERM/SIGINT handled as the README says. Returns the exit code.
    The entry of ``python -m worker`` and ``heimdall-synth worker run``."""
    setup_logging()
    worker = Worker(settings)
    install_signal_handlers(worker)
    try:
        return worker.run(until_idle=settings.until_idle, max_chunks=settings.max_chunks)
    except ShutdownNow:
        return 0

