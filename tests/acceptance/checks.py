"""Independent consistency checks of a dataset against Postgres, S3 and the RF core."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from worker.config import GenerationConfig
from worker.iqformat import BYTES_PER_IQ_SAMPLE
from worker.rf import generate_samples
from worker.storage import ObjectStore, dataset_prefix

# Every column but the dataset's id and the row's creation time, as text: NaN (a receiver
# that hears nothing has NaN estimates) compares equal to NaN there, unlike Python floats.
FEATURE_COMPARE = """
SELECT sample_idx, (to_jsonb(f) - 'dataset_id' - 'created_at')::text
  FROM heimdall.measurement_features f WHERE dataset_id = %s ORDER BY sample_idx"""


def features(conn, ds):
    return conn.execute(FEATURE_COMPARE, (ds,)).fetchall()


def iq_by_index(conn, store: ObjectStore, ds) -> dict[int, bytes]:
    """Every sample's IQ bytes, read by byte range from its object (one GET per object)."""
    rows = conn.execute("SELECT sample_idx, object_key, byte_offset, byte_length, sha256, shape, dtype "
                        "FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s", (ds,)).fetchall()
    by_key = defaultdict(list)
    for r in rows:
        by_key[r[1]].append(r)
    out: dict[int, bytes] = {}
    for key, items in by_key.items():
        blob = store.get(key)
        for idx, _, off, length, sha, shape, dtype in items:
            raw = blob[off:off + length]
            assert len(raw) == length, f"object {key} too short for sample {idx}"
            assert hashlib.sha256(raw).hexdigest() == sha, f"sha256 mismatch for sample {idx}"
            assert length == BYTES_PER_IQ_SAMPLE[dtype] * shape[0] * shape[1]
            out[idx] = raw
    return out


def assert_consistent(conn, store: ObjectStore, ds, n: int, compare_rf: bool = True) -> None:
    """n samples, indices 0..n-1 once each, IQ rows paired, byte ranges hash right, no
    unreferenced objects, and (compare_rf) bytes equal the RF core's output."""
    num, feats, iqs, reserved, dtype, cfg, seed = conn.execute("""
        SELECT d.num_samples,
               (SELECT count(*) FROM heimdall.measurement_features f WHERE f.dataset_id = d.id),
               (SELECT count(*) FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id),
               d.next_idx, d.dataset_type, d.config, d.seed
          FROM heimdall.synthetic_datasets d WHERE d.id = %s""", (ds,)).fetchone()
    assert (num, feats, reserved) == (n, n, n)
    idx = [r[0] for r in conn.execute(
        "SELECT sample_idx FROM heimdall.measurement_features WHERE dataset_id = %s ORDER BY 1", (ds,))]
    assert idx == list(range(n))
    if dtype == "iq_raw":
        assert iqs == n
        data = iq_by_index(conn, store, ds)
        assert sorted(data) == list(range(n))
        referenced = {r[0] for r in conn.execute(
            "SELECT DISTINCT object_key FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s", (ds,))}
        stored = {o.key for o in store.list(dataset_prefix(str(ds)))}
        assert referenced <= stored
        if compare_rf:
            batch = generate_samples(GenerationConfig.from_normalized(cfg), seed, 0, n, want_iq=True)
            for i in range(n):
                assert data[i] == np.ascontiguousarray(batch.iq[i]).tobytes(), f"IQ bytes of sample {i} differ"
    else:
        assert iqs == 0
    pending = conn.execute("SELECT count(*) FROM heimdall.generation_chunks WHERE dataset_id = %s "
                           "AND state <> 'done'", (ds,)).fetchone()[0]
    assert pending == 0
