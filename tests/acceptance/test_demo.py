"""The one-command demo, end to end, at small sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_stops_its_services(tmp_path):
    r = subprocess.run([sys.executable, "-m", "worker.cli", "demo", "--samples", "20", "30", "40",
                        "--chunk-size", "20", "--duration-ms", "40", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["num_samples"], summary["feature_rows"], summary["iq_rows"], summary["ready_prefix"]) == (
        90, 90, 90, 90)
    assert summary["status"] == "healthy" and summary["samples_per_s"] > 0
    assert "==> expanding by 30 samples" in r.stderr and "==> validating" in r.stderr
    exported = list(Path(summary["export_dir"]).rglob("*"))
    assert any(p.name == "manifest.json" for p in exported)
    assert any(p.suffix == ".parquet" for p in exported)
    plots = list(Path(summary["plots_dir"]).glob("*.png"))
    assert len(plots) >= 3 and all(p.stat().st_size > 5000 for p in plots)
    # nothing left running: the Postgres data directory is gone
    assert "postgres_url" not in summary


def test_demo_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "worker.cli", "demo", "--samples", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "positive counts" in r.stderr
