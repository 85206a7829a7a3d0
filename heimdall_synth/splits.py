"""Stable train / val / test splits: the Python twin of ``heimdall.split_of`` (SQL).

A sample's split is a function of the dataset's seed, the sample's index and the fractions
fixed when the dataset was created (config key ``splits``), nothing else, so expanding a
dataset never moves a sample from one split to another. The rule (one home in SQL,
``sql/functions/split_of.sql``, and this one; ``tests/integration/test_splits.py`` checks
that they agree):

* ``h = sha256(f"{seed}:{sample_idx}".encode())`` (plain decimal, the seed signed as stored);
* ``u = int.from_bytes(h[:6], "big")``, so ``0 <= u < 2**48`` (exact in float64);
* with float64 fractions ``t = train``, ``v = val``: "train" if ``u < t * 2**48``, else "val"
  if ``u < (t + v) * 2**48``, else "test".

A config stored before revision 0003 has no ``splits``: it uses :data:`LEGACY_SPLITS`
(0.8 / 0.1 / 0.1). Needs no database and no worker: an exported dataset's manifest holds the
seed and config, and ``features.parquet`` the sample indices, which is all it takes::

    from heimdall_synth.splits import split_of, fractions_of
    split = split_of(manifest["dataset"]["seed"], idx, fractions_of(manifest["dataset"]["config"]))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")
# The fractions of a config stored without "splits" (before revision 0003): split_of's NULL
# case in SQL. Fixed here for good, whatever the config key's default becomes.
LEGACY_SPLITS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
_SCALE = float(2 ** 48)


def fractions_of(config: Mapping[str, Any] | None) -> dict[str, float]:
    """The fractions a dataset's stored config fixes (legacy 0.8 / 0.1 / 0.1 without "splits")."""
    given = (config or {}).get("splits")
    if given is None:
        return dict(LEGACY_SPLITS)
    return {name: float(given.get(name, 0)) for name in SPLITS}


def check_split(split: str | None) -> str | None:
    """``split`` itself if it is None or one of :data:`SPLITS`; ValueError otherwise."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def _thresholds(fractions: Mapping[str, Any]) -> tuple[float, float]:
    t = float(fractions.get("train", 0))
    v = float(fractions.get("val", 0))
    return t * _SCALE, (t + v) * _SCALE


def hash48(seed: int, sample_idx: int) -> int:
    """The first 6 bytes of sha256('<seed>:<sample_idx>') as an unsigned integer."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{int(sample_idx)}".encode()).digest()[:6], "big")


def split_of(seed: int, sample_idx: int, fractions: Mapping[str, Any] | None = None) -> str:
    """The split of sample ``sample_idx`` of a dataset with ``seed`` and ``fractions``
    (None: the legacy 0.8 / 0.1 / 0.1). ValueError for a negative index."""
    if int(sample_idx) < 0:
        raise ValueError(f"sample_idx must be >= 0, got {sample_idx}")
    t, tv = _thresholds(LEGACY_SPLITS if fractions is None else fractions)
    u = hash48(seed, sample_idx)
    return "train" if u < t else "val" if u < tv else "test"


def splits_of(seed: int, indices: Iterable[int], fractions: Mapping[str, Any] | None = None) -> np.ndarray:
    """:func:`split_of` of many indices: an array of split names (dtype '<U5')."""
    t, tv = _thresholds(LEGACY_SPLITS if fractions is None else fractions)
    idx = [int(i) for i in indices]
    if idx and min(idx) < 0:
        raise ValueError("sample indices must be >= 0")
    u = np.array([hash48(seed, i) for i in idx], dtype=np.float64)   # exact: u < 2**48 < 2**53
    return np.where(u < t, "train", np.where(u < tv, "val", "test"))


def indices_in_split(seed: int, first: int, stop: int, split: str,
                     fractions: Mapping[str, Any] | None = None) -> np.ndarray:
    """Sample indices of ``[first, stop)`` in ``split`` (int64, ascending)."""
    check_split(split)
    idx = np.arange(first, stop, dtype=np.int64)
    return idx[splits_of(seed, range(first, stop), fractions) == split]


__all__ = ["LEGACY_SPLITS", "SPLITS", "check_split", "fractions_of", "hash48", "indices_in_split", "split_of",
           "splits_of"]
