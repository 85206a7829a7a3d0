"""The one-command demo, end to end, at small sizes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path


def refused(port: int) -> bool:
    """Nothing listens on loopback ``port``: a connection attempt is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_demo_runs_end_to_end_and_stops_its_services(tmp_path):
    r = subprocess.run([sys.executable, "-m", "heimdall_synth", "demo", "--samples", "20", "30", "40",
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
    # nothing left running: what the demo started (it names the ports and directories it
    # picked) is gone - the data directories, and nothing listens on any port, HTTP or gRPC
    assert "postgres_url" not in summary
    services = summary["services"]
    pg, s3 = services["postgres"], services["s3"]
    assert not Path(pg["data_dir"]).exists() and not Path(s3["data_dir"]).exists(), services
    assert s3["grpc_offset"] == 10000 and set(s3["ports"]) == {"s3", "master", "volume", "filer"}
    ports = [pg["port"]] + [p + off for p in s3["ports"].values() for off in (0, s3["grpc_offset"])]
    assert len(set(ports)) == 9
    assert [p for p in ports if not refused(p)] == [], services


def test_demo_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "heimdall_synth", "demo", "--samples", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "positive counts" in r.stderr
