"""Counter-style random streams keyed by (dataset seed, sample index, attempt, stream).

Every random draw of a sample comes from a generator built from the tuple
``(seed mod 2**64, sample_idx, attempt, stream)`` through :class:`numpy.random.SeedSequence`
(which hashes the whole tuple, so neighbouring keys give unrelated streams) feeding an
SFC64 bit generator (the fastest numpy bit generator for the bulk Gaussian noise). Nothing
depends on global state or on which other samples are generated in the same call, which is
what makes sample ``i`` reproducible alone, in any chunking and in any process.
"""

from __future__ import annotations

import numpy as np

MASK64 = 0xFFFF_FFFF_FFFF_FFFF

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


def stream(seed: int, sample_idx: int, attempt: int, stream_id: int) -> np.random.Generator:
    """Generator for one (seed, sample_idx, attempt, stream) key.

    ``sample_idx`` and ``attempt`` must be non-negative.
    """
    if sample_idx < 0 or attempt < 0:
        raise ValueError("sample_idx and attempt must be >= 0")
    ss = np.random.SeedSequence([seed_to_uint64(seed), int(sample_idx), int(attempt), int(stream_id)])
    return np.random.Generator(np.random.SFC64(ss))
