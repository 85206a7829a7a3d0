"""examples/train_localizer.py end to end (issue 13 item 5): an iq_raw dataset created and
expanded twice (50 -> 150 -> 350) by real workers; the example trains for a few epochs on
the train split through HeimdallDataset and reports val CEP50 next to the baseline's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from tests.acceptance.conftest import finish, worker_env

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_localizer.py"
SMALL = {"chunk_size": 50, "duration_ms": 40}      # 7 x 2,000 IQ per sample


def test_training_example_reads_every_train_sample_once_per_epoch(conn, store, spawn_worker, db_url, s3_server,
                                                                    bucket):
    ds = conn.execute("SELECT heimdall.create_dataset('train-me', 'iq_raw', %s, 7, 50)",
                      (Jsonb(SMALL),)).fetchone()[0]
    finish(spawn_worker("--until-idle"))
    for n in (100, 200):                                            # 50 -> 150 -> 350
        conn.execute("SELECT heimdall.expand_dataset(%s, %s)", (ds, n))
        finish(spawn_worker("--until-idle"))
    r = subprocess.run([sys.executable, str(EXAMPLE), "train-me", "--epochs", "4", "--json"],
                       env=worker_env(db_url, s3_server, bucket), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print({k: out[k] for k in ("train_samples", "val_samples", "loss_km2", "val_cep50_m", "baseline_val_cep50_m")})
    train = out["train_sample_indices"]
    assert out["train_samples"] == len(train) and 0.7 * 350 < len(train) < 0.9 * 350
    assert max(train) >= 150 and min(train) < 50                 # the expansions are in it
    for seen in out["seen_per_epoch"]:
        assert seen == sorted(train)                              # each exactly once per epoch
    assert out["loss_km2"][-1] < out["loss_km2"][0]
    assert out["val_samples"] > 0 and out["val_cep50_m"] > 0
    assert out["baseline_val_cep50_m"] is None or out["baseline_val_cep50_m"] > 0
    # the split the database assigns (stable across expansions, tests/integration/test_splits.py)
    first = conn.execute("SELECT count(*) FROM generate_series(0, 49) i "
                         "WHERE heimdall.sample_split(%s, i) = 'train'", (ds,)).fetchone()[0]
    assert first == sum(1 for i in train if i < 50)
