"""The package installs from a wheel and works outside the source tree: a wheel built from
this repository, installed into a fresh venv in a temp dir, migrates a database with
`heimdall-synth db upgrade` and runs a worker that fills a dataset."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.acceptance.conftest import worker_env

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_migrates_outside_the_tree(conn, db_url, s3_server, bucket, tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    warnings = [line for line in (build.stdout + build.stderr).splitlines()
                if "warning" in line.lower() or "deprecat" in line.lower()]
    assert warnings == [], warnings
    wheel = next((tmp_path / "dist").glob("heimdall_synth-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from the test venv (appended after the fresh site-packages);
    # the package itself only from the wheel: unpacked with pip's own wheel installer.
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", purelib, str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr

    url = db_url.rsplit("/", 1)[0] + "/from_wheel"
    conn.execute("CREATE DATABASE from_wheel")
    env = {k: v for k, v in worker_env(url, s3_server, bucket).items() if k not in ("PYTHONPATH", "HEIMDALL_HOME")}
    where = subprocess.run([str(py), "-c", "import worker, worker.db as d, heimdall_synth as h; "
                            "print(worker.__file__); print(d.SQL_DIR); print(h.__file__); "
                            "from heimdall_synth import HeimdallDataset; print(HeimdallDataset.__module__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout.split()
    assert all(str(ROOT) not in w for w in where) and where[1].endswith("worker/sql"), where
    assert where[2].endswith("heimdall_synth/__init__.py") and where[3] == "heimdall_synth.training", where

    # the console script the wheel installs: heimdall-synth = heimdall_synth.cli:main
    entry_points = next(Path(purelib).glob("heimdall_synth-*.dist-info")) / "entry_points.txt"
    assert "heimdall-synth = heimdall_synth.cli:main" in entry_points.read_text()
    up = subprocess.run([str(py), "-c", "import sys; from heimdall_synth.cli import main; sys.exit(main())",
                         "db", "upgrade"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert up.returncode == 0, up.stderr
    with psycopg.connect(url, autocommit=True) as c:
        ds = c.execute("SELECT heimdall.create_dataset('w', 'feature_based', '{\"chunk_size\": 10}', 1, 20)"
                       ).fetchone()[0]
    # a worker as its container runs it: settings from the environment only
    run = subprocess.run([str(py), "-m", "worker"], capture_output=True, text=True, cwd=tmp_path,
                         env={**env, "HEIMDALL_WORKER_UNTIL_IDLE": "1", "HEIMDALL_WORKER_POLL_S": "0.1"},
                         timeout=300)
    assert run.returncode == 0, run.stderr
    with psycopg.connect(url) as c:
        assert c.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 20
    assert os.path.exists(os.path.join(purelib, "worker", "migrations", "versions", "0002_replaceable.sql"))
