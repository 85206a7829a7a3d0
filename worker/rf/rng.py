"""Counter-style random streams keyed by (dataset seed, sample index, attempt, stream).

Every random draw of a sample comes from a generator built from the tuple
``(seed mod 2**64, sample_idx, attempt, stream)`` through :class:`numpy.random.SeedSequence`
(which hashes the whole tuple, so neighbouring keys give unrelated streams) feeding an
SFC64 bit generator (the fastest numpy bit generator for the bulk Gaussian noise). Nothing
depends on global state or on which other samples are generated in the same call, which is
what makes sample ``i`` reproducible alone, in any chunking and in any process.

The SeedSequence hashing is done by :func:`worker.rf.fastrng.seed_words` (numpy's
algorithm re-implemented in Numba, bit for bit: tests/unit/test_fastrng.py), which spares
the ~20 us of numpy's Python-level SeedSequence per stream; the generator returned is the
same numpy ``Generator(SFC64)`` in the same state. Kernels that draw attempts without
leaving Numba seed the same streams with :func:`worker.rf.fastrng.stream_state`.
"""

from __future__ import annotations

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from . import fastrng

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_INT63 = 1 << 63

# Separate streams so that a change in, say, the IQ synthesis never shifts the truth draws
# (geometry, link budget) of the same attempt.
STREAM_TRUTH = 0
STREAM_SIGNAL = 1
STREAM_NOISE = 2
# Receiver hardware of an accepted attempt (revision 0003, issue 12: transmitter and LO
# carrier errors, receiver clocks); drawn only for configs with those keys.
STREAM_RECEIVER = 3


def seed_to_uint64(seed: int) -> int:
    """Map a signed int64 dataset seed (may be negative) to its uint64 bit pattern."""
    return int(seed) & MASK64


class _SeedWords(ISeedSequence):
    """A seed sequence whose state is already generated: the three uint64 words that
    ``SeedSequence(key).generate_state(3, np.uint64)`` gives (SFC64 asks for exactly
    that)."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 3 or np.dtype(dtype) != np.dtype(np.uint64):
            raise ValueError("_SeedWords only seeds SFC64 (3 uint64 words)")
        return self.words


def stream(seed: int, sample_idx: int, attempt: int, stream_id: int) -> np.random.Generator:
    """Generator for one (seed, sample_idx, attempt, stream) key: a new
    ``Generator(SFC64(SeedSequence([seed mod 2**64, sample_idx, attempt, stream_id])))``
    (in that state, bit for bit).

    ``sample_idx`` and ``attempt`` must be non-negative.
    """
    if sample_idx < 0 or attempt < 0:
        raise ValueError("sample_idx and attempt must be >= 0")
    s, i, k, sid = seed_to_uint64(seed), int(sample_idx), int(attempt), int(stream_id)
    if i < _INT63 and k < _INT63 and 0 <= sid < _INT63:
        words = np.empty(3, dtype=np.uint64)
        fastrng.seed_words(np.uint64(s), i, k, sid, words)
        return np.random.Generator(np.random.SFC64(_SeedWords(words)))
    # beyond int64 (never in a dataset) or a negative stream id (numpy raises): numpy itself
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence([s, i, k, sid])))
