"""Golden bytes of the RF core as it is before the fidelity work (propagation, receivers):
samples of configs WITHOUT the newer keys must keep exactly these bytes forever (old
datasets regenerate bit-identically). ``python -m tests.unit.golden_samples`` prints the
current values; paste them into GOLDEN only when a deliberate change of old behaviour is
intended (it never is)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from worker.config import GenerationConfig, default_config_snapshot
from worker.rf import generate_samples

# (name, config overrides, seed, first index, count)
CASES = [
    ("default", {}, 42, 0, 3),
    ("default-far-index", {}, 42, 100_000, 2),
    ("random-receivers", {"receivers": {"mode": "random", "count_min": 4, "count_max": 6,
                                        "area": {"lat_min": 44.0, "lat_max": 45.5, "lon_min": 7.0, "lon_max": 9.5},
                                        "alt_m": 200}, "duration_ms": 50}, 7, 10, 2),
    ("no-multipath-tone", {"multipath_max_taps": 0, "signal_mix": {"tone": 1}, "duration_ms": 40}, 5, 71, 2),
]


def batch_digests(cfg: dict, seed: int, first: int, count: int) -> tuple[str, str]:
    """(sha256 of every feature field, sha256 of the IQ bytes) of one generate_samples call."""
    batch = generate_samples(GenerationConfig.from_normalized(cfg), seed, first, count, want_iq=True)
    h = hashlib.sha256()
    for f in dataclasses.fields(batch):
        if f.name == "iq":
            continue
        v = getattr(batch, f.name)
        h.update(f.name.encode())
        if isinstance(v, np.ndarray):
            h.update(str(v.dtype).encode() + str(v.shape).encode() + np.ascontiguousarray(v).tobytes())
        else:
            h.update(json.dumps(v, sort_keys=True).encode())
    return h.hexdigest(), hashlib.sha256(np.ascontiguousarray(batch.iq).tobytes()).hexdigest()


def case_config(overrides: dict) -> dict:
    cfg = default_config_snapshot()
    cfg.update(overrides)
    return cfg


if __name__ == "__main__":
    for name, overrides, seed, first, count in CASES:
        print(name, batch_digests(case_config(overrides), seed, first, count))
