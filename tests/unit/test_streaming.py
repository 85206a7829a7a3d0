"""Streaming a chunk's .npy while it is generated gives exactly the whole-chunk bytes, keeps
only a bounded number of blocks in memory, and a failed PUT is retried by regenerating the
chunk (generation is deterministic per index), never by buffering the whole object."""

from __future__ import annotations

import gc
import hashlib
import threading
import time
import tracemalloc
import weakref

import numpy as np
import pytest

from worker.config import GenerationConfig
from worker.iqformat import BYTES_PER_IQ_SAMPLE
from worker.rf import generate_samples
from worker.runner import Settings, Worker, concat_batches
from worker.storage import StorageError, StreamAborted, StreamingChunk, encode_chunk, npy_header


def _iq(n: int, receivers: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, receivers, length)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_streamed_bytes_hashes_and_offsets_equal_encode_chunk():
    iq = _iq(10, 3, 100)
    sc = StreamingChunk(10, 3, 100)
    out: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: out.setdefault("data", sc.reader().read(sc.total_len)))
    reader.start()
    for k in range(0, 10, 3):          # uneven blocks: 3, 3, 3, 1
        sc.add(iq[k:k + 3])
    sc.close()
    reader.join(10)
    whole = encode_chunk(iq)
    assert out["data"] == whole.data
    assert sc.sha256 == whole.sha256
    assert [sc.offset(k) for k in range(10)] == [whole.offset(k) for k in range(10)]
    assert npy_header((10, 3, 100)) == whole.data[:whole.header_len]


def test_small_reads_give_the_same_bytes():
    iq = _iq(7, 2, 50, seed=1)
    sc = StreamingChunk(7, 2, 50)
    parts: list[bytes] = []

    def consume() -> None:
        r = sc.reader()
        while chunk := r.read(333):
            parts.append(chunk)

    t = threading.Thread(target=consume)
    t.start()
    for k in range(7):
        sc.add(iq[k:k + 1])
    sc.close()
    t.join(10)
    assert b"".join(parts) == encode_chunk(iq).data


def test_blocks_are_released_once_sent():
    """The stream keeps no block after the uploader has read it (the old stream kept every
    block of the chunk for a whole-object retry)."""
    sc = StreamingChunk(40, 4, 1000)
    r = sc.reader()
    refs = []
    for k in range(40):
        block = _iq(1, 4, 1000, seed=k)
        refs.append(weakref.ref(block))
        sc.add(block)
        del block
        assert len(r.read(sc.sample_nbytes + (len(sc.header) if k == 0 else 0))) > 0
    sc.close()
    assert r.read() == b""
    gc.collect()
    assert all(ref() is None for ref in refs), "the stream still holds blocks it has sent"


def test_generator_waits_when_the_uploader_is_behind():
    sc = StreamingChunk(20, 2, 1000, max_blocks=2)
    added: list[int] = []

    def produce() -> None:
        for k in range(20):
            sc.add(_iq(1, 2, 1000, seed=k))
            added.append(k)
        sc.close()

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    time.sleep(0.5)
    assert t.is_alive() and len(added) <= 3, f"{len(added)} blocks queued for a reader that reads nothing"
    r = sc.reader()
    total = 0
    while chunk := r.read(4096):
        total += len(chunk)
    t.join(10)
    assert len(added) == 20 and total == sc.total_len


def test_abort_unblocks_a_waiting_generator_and_reader():
    sc = StreamingChunk(20, 2, 1000, max_blocks=1)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for k in range(20):
                sc.add(_iq(1, 2, 1000, seed=k))
        except StreamAborted as exc:
            errors.append(exc)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    time.sleep(0.3)
    sc.abort("upload failed")
    t.join(5)
    assert not t.is_alive() and errors
    with pytest.raises(StreamAborted):
        sc.reader().read(sc.total_len)


def test_blocks_concatenate_to_the_whole_chunk(default_config_dict):
    cfg = GenerationConfig.from_normalized({**default_config_dict, "duration_ms": 20})
    whole = generate_samples(cfg, 99, 10, 9, want_iq=False)
    parts = [generate_samples(cfg, 99, 10 + off, min(4, 9 - off), want_iq=False) for off in range(0, 9, 4)]
    merged = concat_batches(parts)
    for name in ("sample_idx", "rssi_dbm", "tdoa_s", "gdop", "num_receivers"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    assert merged.receiver_ids == whole.receiver_ids and merged.rejections == whole.rejections


class FlakyStore:
    """An object store whose first ``failures`` streamed PUTs break after ``fail_after``
    bytes (like a connection reset mid-upload); it keeps only each object's length and
    sha256, reading the stream in parts as minio does."""

    PART = 8 * 1024 * 1024

    def __init__(self, fail_after: int, failures: int = 1) -> None:
        self.fail_after, self.failures = fail_after, failures
        self.objects: dict[str, tuple[int, str]] = {}
        self.puts = 0

    def ensure_bucket(self) -> None:
        pass

    def put_stream(self, key, reader, length) -> None:
        self.puts += 1
        h, got = hashlib.sha256(), 0
        while got < length:
            data = reader.read(min(self.PART, length - got))
            if not data:
                raise StorageError(f"PUT {key} failed: stream ended after {got} of {length} bytes")
            got += len(data)
            h.update(data)
            if self.failures and got >= self.fail_after:
                self.failures -= 1
                raise StorageError(f"PUT {key} failed: connection reset by peer")
        self.objects[key] = (got, h.hexdigest())


def test_failed_put_is_retried_by_regenerating_with_bounded_memory(default_config_dict, monkeypatch):
    """The PUT breaks half way: the worker regenerates the chunk and streams it again. The
    object is byte-identical to the whole-chunk encoding and the peak of traced memory
    stays far below the object's size (the old retry buffered the whole object). Blocks and
    parts are scaled down (64 KiB / 256 KiB) so that a small chunk shows it."""
    monkeypatch.setattr(StreamingChunk, "BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(FlakyStore, "PART", 256 * 1024)
    # complex64 (56 kB per sample): the bound below is relative to the object, and a ci16_le
    # object is half the bytes for the same working memory
    cfg = GenerationConfig.from_normalized({**default_config_dict, "duration_ms": 20, "iq_dtype": "complex64"})
    n, first, seed = 300, 500, 7
    generated: list[int] = []

    def counting_generate(cfg, seed, first_idx, count, **kw):
        generated.append(count)
        return generate_samples(cfg, seed, first_idx, count, **kw)

    dtype = cfg.stored_iq_dtype                 # ci16_le (4 bytes per IQ sample) by default
    sample_nbytes = cfg.receivers.max_receivers * cfg.num_iq_samples * BYTES_PER_IQ_SAMPLE[dtype]
    object_len = len(npy_header((n, cfg.receivers.max_receivers, cfg.num_iq_samples), dtype)) + n * sample_nbytes
    store = FlakyStore(fail_after=object_len // 2)
    worker = Worker(Settings(database_url="postgresql://unused", store=store, s3_retry_s=60))
    worker.store = store
    job = {"chunk_id": 1, "first_idx": first, "last_idx": first + n - 1, "seed": seed}
    generate_samples(cfg, seed, 0, 1)          # load the Numba kernels outside the measurement
    tracemalloc.start()
    try:
        batch, stream, _ = worker._generate_streaming(job, cfg, "k.npy", counting_generate)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.puts == 2 and sum(generated) > n, "the retry must regenerate the chunk"
    assert peak < object_len / 3, f"peak {peak / 1e6:.0f} MB for a {object_len / 1e6:.0f} MB object"
    # independent encoding of the same chunk, in blocks
    h = hashlib.sha256(npy_header((n, cfg.receivers.max_receivers, cfg.num_iq_samples), dtype))
    hashes = []
    for off in range(0, n, 200):
        iq = generate_samples(cfg, seed, first + off, min(200, n - off)).iq
        enc = encode_chunk(iq)
        h.update(enc.data[enc.header_len:])
        hashes += enc.sha256
    assert store.objects["k.npy"] == (object_len, h.hexdigest())
    assert stream.sha256 == hashes and len(batch) == n
    assert list(batch.sample_idx) == list(range(first, first + n))


def test_put_that_keeps_failing_gives_up_after_the_retry_window(default_config_dict):
    cfg = GenerationConfig.from_normalized({**default_config_dict, "duration_ms": 20})
    store = FlakyStore(fail_after=1, failures=100)
    worker = Worker(Settings(database_url="postgresql://unused", store=store, s3_retry_s=1.0))
    worker.store = store
    job = {"chunk_id": 1, "first_idx": 0, "last_idx": 9, "seed": 1}
    t0 = time.monotonic()
    with pytest.raises(StorageError, match="connection reset"):
        worker._generate_streaming(job, cfg, "k.npy", generate_samples)
    assert time.monotonic() - t0 < 10 and 2 <= store.puts < 10 and not store.objects
