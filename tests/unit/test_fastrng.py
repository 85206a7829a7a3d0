"""worker.rf.fastrng against numpy itself (issue 11 item 9): the Numba SeedSequence / SFC64
seeding and the distributions the attempt kernel draws must be numpy's, bit for bit, or
every dataset would change. Also worker.rf.rng.stream, which now seeds through it."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from worker.rf import fastrng as F
from worker.rf import rng

N_DRAWS = 1_000_000


def numpy_state(seed_u64: int, idx: int, attempt: int, stream_id: int) -> np.ndarray:
    ss = np.random.SeedSequence([seed_u64, idx, attempt, stream_id])
    return np.random.SFC64(ss).state["state"]["state"]


def _keys(n: int) -> list[tuple[int, int, int, int]]:
    """Random keys plus the edges: seeds near 0 and 2**64, negative int64 seeds as
    rng.seed_to_uint64 maps them, idx / attempt 0, at 2**32 (one word to two) and near 2**63."""
    r = np.random.default_rng(11)
    edges_seed = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1,
                  rng.seed_to_uint64(-1), rng.seed_to_uint64(-123456789012345), rng.seed_to_uint64(-(2**63))]
    edges_small = [0, 1, 2, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40, 2**62, 2**63 - 1]
    keys = [(s, i, a, st) for s in edges_seed for i in edges_small[:6] for a in edges_small[::3] for st in (0, 3)]
    keys += [(s, i, a, st) for s in edges_seed[:4] for i in edges_small for a in edges_small for st in (0, 1)]
    while len(keys) < n:
        bits = int(r.integers(1, 64))
        s = int(r.integers(0, 2**63)) * 2 + int(r.integers(0, 2))          # full uint64 range
        keys.append((s >> (64 - bits) if r.random() < 0.3 else s,
                     int(r.integers(0, 2**int(r.integers(1, 63)))), int(r.integers(0, 2**int(r.integers(1, 63)))),
                     int(r.integers(0, 8))))
    return keys


def test_seeding_equals_numpy_for_20000_keys():
    keys = _keys(20_000)
    assert len(keys) >= 20_000
    assert any(k[0] >= 2**64 - 2 for k in keys) and any(k[1] == 0 for k in keys)
    assert any(k[1] >= 2**62 and k[2] >= 2**62 for k in keys)
    state = np.empty(4, dtype=np.uint64)
    for key in keys:
        F.stream_state(np.uint64(key[0]), key[1], key[2], key[3], state)
        np.testing.assert_array_equal(state, numpy_state(*key), err_msg=str(key))


def test_seed_words_equal_generate_state():
    words = np.empty(3, dtype=np.uint64)
    for key in [(0, 0, 0, 0), (2**64 - 1, 2**63 - 1, 2**63 - 1, 7), (20240601, 5, 17, 2)]:
        F.seed_words(np.uint64(key[0]), key[1], key[2], key[3], words)
        np.testing.assert_array_equal(words, np.random.SeedSequence(list(key)).generate_state(3, np.uint64))


def _pair(key=(20240601, 3, 9, 0)):
    state = np.empty(4, dtype=np.uint64)
    F.stream_state(np.uint64(key[0]), key[1], key[2], key[3], state)
    return state, np.random.Generator(np.random.SFC64(np.random.SeedSequence(list(key))))


def test_raw_outputs_and_uniforms_equal_numpy():
    state, gen = _pair()
    raw = np.empty(1000, dtype=np.uint64)
    for i in range(raw.shape[0]):
        raw[i] = F.next_uint64(state)
    np.testing.assert_array_equal(raw, gen.bit_generator.random_raw(1000))
    out = np.empty(N_DRAWS)
    F.fill_random(state, out)
    assert out.tobytes() == gen.random(N_DRAWS).tobytes()
    F.fill_uniform(state, -2.5, 1e6 / 3.0, out)
    assert out.tobytes() == gen.uniform(-2.5, 1e6 / 3.0, N_DRAWS).tobytes()
    assert F.next_double(state) == gen.random()
    assert F.uniform(state, 44.395, 45.478) == gen.uniform(44.395, 45.478)
    np.testing.assert_array_equal(state, gen.bit_generator.state["state"]["state"])


@njit(cache=True)
def _normals_with_branches(state, out, words, first_idx):
    """standard_normal into out, recording how many 64-bit outputs each draw took (the
    SFC64 counter) and the ziggurat layer of its first output."""
    peek = np.empty(4, dtype=np.uint64)
    for i in range(out.shape[0]):
        peek[:] = state
        first_idx[i] = int(F.next_uint64(peek) & np.uint64(0xFF))
        c0 = state[3]
        out[i] = F.standard_normal(state)
        words[i] = int(state[3] - c0)


@njit(cache=True)
def _exponentials_with_branches(state, out, words, first_idx):
    peek = np.empty(4, dtype=np.uint64)
    for i in range(out.shape[0]):
        peek[:] = state
        first_idx[i] = int((F.next_uint64(peek) >> np.uint64(3)) & np.uint64(0xFF))
        c0 = state[3]
        out[i] = F.standard_exponential(state)
        words[i] = int(state[3] - c0)


@pytest.mark.parametrize("kind", ["normal", "exponential"])
def test_ziggurats_equal_numpy_on_every_branch(kind):
    state, gen = _pair((77, 1, 2, 0))
    out = np.empty(N_DRAWS)
    words = np.empty(N_DRAWS, dtype=np.int64)      # 64-bit outputs a draw took
    first = np.empty(N_DRAWS, dtype=np.int64)      # ziggurat layer of its first output
    if kind == "normal":
        _normals_with_branches(state, out, words, first)
        ref = gen.standard_normal(N_DRAWS)
        tail = (first == 0) & (words > 1)          # beyond r: two uniforms per try
        assert np.all(np.abs(ref[tail]) > F._ZIGGURAT_NOR_R)
        assert np.sum(tail & (words > 3)) > 0      # a tail try rejected, drawn again
    else:
        _exponentials_with_branches(state, out, words, first)
        ref = gen.standard_exponential(N_DRAWS)
        tail = (first == 0) & (words > 1)          # beyond r: one uniform
        assert np.all(ref[tail] > F._ZIGGURAT_EXP_R)
    assert out.tobytes() == ref.tobytes()
    # every path was taken: the fast accept, the tail, the wedge accepted with one extra
    # uniform, and the wedge rejected (the draw starts over)
    assert np.mean(words == 1) > 0.97
    assert np.sum(tail) > 50
    assert np.sum((first != 0) & (words == 2)) > 1000
    assert np.sum((first != 0) & (words > 2)) > 100
    np.testing.assert_array_equal(state, gen.bit_generator.state["state"]["state"])


def test_mixed_draws_stay_in_step_with_numpy():
    """The attempt's order: uniforms, normals, exponentials, one more uniform, repeated."""
    state, gen = _pair((rng.seed_to_uint64(-5), 123456, 0, 0))
    for n in (1, 7, 12, 3):
        for fill, ref in ((F.fill_random, gen.random), (F.fill_standard_normal, gen.standard_normal),
                          (F.fill_standard_exponential, gen.standard_exponential)):
            out = np.empty(n)
            fill(state, out)
            assert out.tobytes() == ref(n).tobytes()
        assert F.next_double(state) == gen.random()


@pytest.mark.parametrize("key", [(0, 0, 0, 0), (-1, 5, 7, rng.STREAM_NOISE), (-123456789012345, 2**40, 3, 1),
                                 (2**64 - 1, 0, 2**63 - 1, rng.STREAM_RECEIVER)])
def test_rng_stream_is_numpys_generator(key):
    seed, idx, attempt, sid = key
    fast = rng.stream(seed, idx, attempt, sid)
    ref = np.random.Generator(np.random.SFC64(np.random.SeedSequence([rng.seed_to_uint64(seed), idx, attempt, sid])))
    assert isinstance(fast, np.random.Generator) and isinstance(fast.bit_generator, np.random.SFC64)
    fs, rs = fast.bit_generator.state, ref.bit_generator.state
    assert (fs["bit_generator"], fs["has_uint32"], fs["uinteger"]) == (rs["bit_generator"], rs["has_uint32"],
                                                                        rs["uinteger"])
    np.testing.assert_array_equal(fs["state"]["state"], rs["state"]["state"])
    # every kind of draw, 32-bit ones (buffered half words) included
    assert fast.integers(0, 2**31, 101, dtype=np.uint32).tobytes() == ref.integers(0, 2**31, 101, dtype=np.uint32).tobytes()
    assert fast.standard_normal(1001).tobytes() == ref.standard_normal(1001).tobytes()
    assert fast.random(33, dtype=np.float32).tobytes() == ref.random(33, dtype=np.float32).tobytes()
    assert fast.bit_generator.random_raw(5).tobytes() == ref.bit_generator.random_raw(5).tobytes()


def test_rng_stream_generators_are_independent_objects():
    a = rng.stream(1, 2, 3, 0)
    b = rng.stream(1, 2, 3, 0)
    assert a is not b and a.bit_generator is not b.bit_generator
    x = a.random(10)
    assert b.random(10).tobytes() == x.tobytes()


def test_rng_stream_outside_int64_and_bad_keys():
    # keys beyond the kernel's int64 go through numpy's SeedSequence, same streams
    big = rng.stream(3, 2**64 + 5, 1, 0)
    ref = np.random.Generator(np.random.SFC64(np.random.SeedSequence([3, 2**64 + 5, 1, 0])))
    assert big.random(4).tobytes() == ref.random(4).tobytes()
    with pytest.raises(ValueError, match=">= 0"):
        rng.stream(1, -1, 0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        rng.stream(1, 0, -1, 0)
    with pytest.raises(ValueError):
        rng.stream(1, 0, 0, -1)
