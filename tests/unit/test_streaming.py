"""Streaming a chunk's .npy while it is generated gives exactly the whole-chunk bytes."""

from __future__ import annotations

import threading

import numpy as np

from worker.config import GenerationConfig
from worker.rf import generate_samples
from worker.runner import concat_batches
from worker.storage import StreamingChunk, encode_chunk, npy_header


def test_streamed_bytes_hashes_and_offsets_equal_encode_chunk():
    rng = np.random.default_rng(0)
    iq = (rng.standard_normal((10, 3, 100)) + 1j * rng.standard_normal((10, 3, 100))).astype(np.complex64)
    sc = StreamingChunk(10, 3, 100)
    out: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: out.setdefault("data", sc.reader().read(sc.total_len)))
    reader.start()
    for k in range(0, 10, 3):          # uneven blocks: 3, 3, 3, 1
        sc.add(iq[k:k + 3])
    sc.close()
    reader.join(10)
    whole = encode_chunk(iq)
    assert out["data"] == whole.data == sc.encoded().data
    assert sc.sha256 == whole.sha256
    assert [sc.offset(k) for k in range(10)] == [whole.offset(k) for k in range(10)]
    assert npy_header((10, 3, 100)) == whole.data[:whole.header_len]


def test_blocks_concatenate_to_the_whole_chunk(default_config_dict):
    cfg = GenerationConfig.from_normalized({**default_config_dict, "duration_ms": 20})
    whole = generate_samples(cfg, 99, 10, 9, want_iq=False)
    parts = [generate_samples(cfg, 99, 10 + off, min(4, 9 - off), want_iq=False) for off in range(0, 9, 4)]
    merged = concat_batches(parts)
    for name in ("sample_idx", "rssi_dbm", "tdoa_s", "gdop", "num_receivers"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    assert merged.receiver_ids == whole.receiver_ids and merged.rejections == whole.rejections
