"""`heimdall-synth plot NAME --kind propagation` on a dataset made by real worker processes
against the real PostgreSQL and S3 servers (issue 11 item 8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.propagation_plot import detection_by_distance, link_table
from tests.acceptance.conftest import finish, worker_env
from worker import db

N = 60


@pytest.fixture
def cli(db_url, s3_server, bucket):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                              env=worker_env(db_url, s3_server, bucket), timeout=300)
    return run


def test_plot_propagation_writes_the_figure(conn, spawn_worker, cli, tmp_path):
    import matplotlib.image as mpimg

    conn.execute("SELECT heimdall.create_dataset('links', 'feature_based', %s, 5, %s)",
                 (Jsonb({"chunk_size": 30, "duration_ms": 40}), N))
    finish(spawn_worker("--until-idle"))
    r = cli("plot", "links", "--kind", "propagation", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    paths = [Path(p) for p in r.stdout.split()]
    assert paths == [tmp_path / "links" / "plots" / "propagation_links.png"]
    img = mpimg.imread(paths[0])
    assert img.shape[0] >= 500 and img.shape[1] >= 1200, img.shape
    assert paths[0].stat().st_size > 40_000
    assert len(np.unique(img.reshape(-1, img.shape[-1])[::7], axis=0)) > 50      # not a blank canvas
    # the links it summarizes: every receiver of every sample, some detected, some not
    links = link_table(db.run(conn, "propagation_rows", dataset_id=conn.execute(
        "SELECT id FROM heimdall.synthetic_datasets").fetchone()[0], first=0, stop=N, max_rows=N))
    assert links.samples == N and links.distance_km.size == 7 * N
    assert 0 < links.detected.sum() < links.detected.size
    assert detection_by_distance(links.distance_km, links.detected).links.sum() == 7 * N
    # --json: the paths; bad input: one line
    assert json.loads(cli("plot", "links", "--kind", "propagation", "--out", str(tmp_path), "--json").stdout) == [
        str(paths[0])]
    for args, needle in ((("--sample", "0"), "--sample selects the sample of --kind overview"),
                         (("--range", "0:500"), "500")):
        r = cli("plot", "links", "--kind", "propagation", "--out", str(tmp_path), *args)
        assert r.returncode == 1 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli("plot", "links", "--kind", "nope")
    assert r.returncode == 2
