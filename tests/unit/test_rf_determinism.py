"""Sample i depends only on (config, seed, i): batch split, chunking and process don't matter."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from worker.config import GenerationConfig
from worker.rf import SampleBatch, generate_samples
from worker.rf.generate import PER_RX_BOOL, PER_RX_FLOAT

N = 60
SEED = -123456789012345  # negative seeds are valid (mapped to uint64)

ARRAYS = (
    ["sample_idx", "attempts", "tx_lat", "tx_lon", "tx_alt_m", "tx_power_dbm", "frequency_hz", "gdop",
     "mean_snr_db", "num_receivers", "num_receivers_detected", "tx_height_agl_m", "true_tx_freq_offset_hz", "iq"] + list(PER_RX_FLOAT) + list(PER_RX_BOOL)
)
LISTS = ["rejections", "signal_kind", "receiver_ids"]


def _concat(batches: list[SampleBatch]) -> dict:
    out = {}
    for k in ARRAYS:
        out[k] = np.concatenate([getattr(b, k) for b in batches])
    for k in LISTS:
        out[k] = [x for b in batches for x in getattr(b, k)]
    return out


def _assert_same(a: dict, b: dict, sl: slice = slice(None)) -> None:
    for k in ARRAYS:
        x, y = a[k][sl], b[k]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        # Bit-identical, NaNs included.
        assert x.tobytes() == y.tobytes(), k
    for k in LISTS:
        assert a[k][sl] == b[k], k


def _gen(args):
    cfg_dict, seed, first, count = args
    b = generate_samples(GenerationConfig.from_normalized(cfg_dict), seed, first, count)
    return _concat([b])


@pytest.fixture(scope="module")
def reference(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    return cfg, _concat([generate_samples(cfg, SEED, 0, N)])


def test_one_call_vs_tail_alone(reference):
    cfg, ref = reference
    tail = _concat([generate_samples(cfg, SEED, N // 2, N - N // 2)])
    _assert_same(ref, tail, slice(N // 2, N))


def test_one_call_vs_chunks_of_7(reference):
    cfg, ref = reference
    chunks = [generate_samples(cfg, SEED, i, min(7, N - i)) for i in range(0, N, 7)]
    _assert_same(ref, _concat(chunks))


def test_single_index(reference):
    cfg, ref = reference
    for i in (0, 17, N - 1):
        _assert_same(ref, _concat([generate_samples(cfg, SEED, i, 1)]), slice(i, i + 1))


def test_two_processes(reference, default_config_dict):
    _, ref = reference
    ctx = mp.get_context("spawn")  # fresh interpreters: no state shared with this process
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        parts = list(ex.map(_gen, [(default_config_dict, SEED, 0, N // 2), (default_config_dict, SEED, N // 2, N - N // 2)]))
    merged = {k: np.concatenate([p[k] for p in parts]) for k in ARRAYS}
    merged.update({k: parts[0][k] + parts[1][k] for k in LISTS})
    _assert_same(ref, merged)


def test_want_iq_false_gives_same_features(reference):
    cfg, ref = reference
    b = generate_samples(cfg, SEED, 10, 5, want_iq=False)
    assert b.iq is None
    for k in ARRAYS:
        if k == "iq":
            continue
        assert getattr(b, k).tobytes() == ref[k][10:15].tobytes(), k


def test_seed_and_index_change_the_sample(reference):
    cfg, ref = reference
    other = generate_samples(cfg, SEED + 1, 0, 3)
    assert not np.array_equal(other.tx_lat, ref["tx_lat"][:3])
    assert len(set(ref["tx_lat"].tolist())) == N
    # Negative seed maps to its uint64 pattern: -1 and 2**64 - 1 are the same dataset seed.
    a = generate_samples(cfg, -1, 5, 1)
    b = generate_samples(cfg, 2**64 - 1, 5, 1)
    assert a.iq.tobytes() == b.iq.tobytes()
