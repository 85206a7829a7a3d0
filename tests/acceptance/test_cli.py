"""Every CLI command: happy path and bad-input path (one clear line, non-zero exit)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.acceptance.conftest import worker_env

DOWN = "postgresql://nobody@127.0.0.1:1/nowhere"


@pytest.fixture
def cli(db_url, s3_server, bucket):
    def _run(*args: str, url: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        env = worker_env(url or db_url, s3_server, bucket)
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
    return _run


def ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def err(r, text, code=1):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert text in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


def test_dataset_lifecycle(cli, conn):
    out = ok(cli("dataset", "create", "alpha", "--type", "iq_raw", "--config", '{"chunk_size": 25, "duration_ms": 40}',
                 "--seed", "3", "-n", "50", "--json"))
    created = json.loads(out)
    assert created["name"] == "alpha" and created["seed"] == 3 and created["next_idx"] == 50
    out = ok(cli("dataset", "expand", "alpha", "30", "--json"))
    assert json.loads(out)["first_idx"] == 50
    listing = json.loads(ok(cli("dataset", "list", "--json")))
    assert [(d["name"], d["reserved"], d["status"]) for d in listing] == [("alpha", 80, "building")]
    assert "alpha" in ok(cli("dataset", "list"))
    ok(cli("worker", "run", "--until-idle", "--vt", "5"))
    shown = json.loads(ok(cli("dataset", "show", "alpha", "--json")))
    assert shown["health"]["num_samples"] == 80 and shown["health"]["status"] == "healthy"
    assert len(shown["requests"]) == 2
    assert "requests:" in ok(cli("dataset", "show", created["id"]))
    status = json.loads(ok(cli("status", "alpha", "--json")))
    assert [s["state"] for s in status] == ["done", "done"]
    ok(cli("status", "alpha", "--wait"))          # every request finished: returns at once, exit 0
    err(cli("dataset", "delete", "alpha"), "without --yes")
    ok(cli("dataset", "delete", "alpha", "--yes"))
    assert conn.execute("SELECT count(*) FROM heimdall.synthetic_datasets").fetchone()[0] == 0


def test_expand_wait_shows_progress_and_returns_when_done(cli, conn):
    ok(cli("dataset", "create", "beta", "--type", "feature_based", "--config", '{"chunk_size": 20, "duration_ms": 20}'))
    import threading
    worker = threading.Thread(target=lambda: cli("worker", "run", "--until-idle", "--vt", "5"))
    r_holder = {}

    def expand():
        r_holder["r"] = cli("dataset", "expand", "beta", "60", "--wait")

    t = threading.Thread(target=expand)
    t.start()
    import time
    time.sleep(1.0)
    worker.start()
    t.join(120)
    worker.join(120)
    r = r_holder["r"]
    assert r.returncode == 0, r.stderr
    assert "60/60" in r.stderr           # tqdm progress bar on stderr


@pytest.mark.parametrize("args, message", [
    (("dataset", "expand", "ghost", "10"), "dataset 'ghost' does not exist"),
    (("dataset", "show", "ghost"), "dataset 'ghost' does not exist"),
    (("dataset", "delete", "ghost", "--yes"), "dataset 'ghost' does not exist"),
    (("status", "ghost"), "dataset 'ghost' does not exist"),
    (("retry", "ghost"), "dataset 'ghost' does not exist"),
    (("validate", "ghost"), "dataset 'ghost' does not exist"),
    (("repair", "ghost"), "dataset 'ghost' does not exist"),
    (("pause", "00000000-0000-0000-0000-000000000000"), "request 00000000-0000-0000-0000-000000000000 does not exist"),
    (("resume", "00000000-0000-0000-0000-000000000000"), "does not exist"),
    (("abandon", "00000000-0000-0000-0000-000000000000"), "does not exist"),
    (("dataset", "create", "x", "--type", "iq_raw", "--config", '{"max_gdop": 0}'), 'config key "max_gdop": must be > 0'),
    (("dataset", "create", "x", "--type", "iq_raw", "--config", '{"nope": 1}'), 'unknown config key(s): "nope"'),
    (("dataset", "create", "x", "--type", "iq_raw", "--config", "{not json"), "--config is not valid JSON"),
    (("dataset", "create", "x", "--type", "iq_raw", "-n", "-5"), "num_samples must be >= 0"),
    (("config", "normalize", '{"inside_ratio": 2}'), 'config key "inside_ratio": must be <= 1'),
])
def test_bad_input_is_one_clear_line(cli, args, message):
    err(cli(*args), message)


@pytest.mark.parametrize("args", [("dataset", "list"), ("status",), ("db", "upgrade"), ("config", "keys"),
                                  ("validate", "x"), ("gc",)])
def test_database_down(cli, args):
    r = cli(*args, url=DOWN)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot reach the database" in r.stderr or "connection" in r.stderr.lower()


def test_usage_errors_exit_2(cli):
    r = cli("dataset", "create", "x")           # --type missing
    assert r.returncode == 2 and "--type" in r.stderr
    r = cli("frobnicate")
    assert r.returncode == 2


def test_config_keys_and_normalize(cli):
    keys = json.loads(ok(cli("config", "keys", "--json")))
    assert {k["key"] for k in keys} >= {"frequency_mhz", "max_gdop", "receivers", "chunk_size"}
    norm = json.loads(ok(cli("config", "normalize", '{"tx_power_dbm": 0}')))
    assert norm["tx_power_dbm"] == 0 and norm["max_gdop"] == 10


def test_pause_resume_abandon_and_gc(cli, conn, store):
    ok(cli("dataset", "create", "gamma", "--type", "iq_raw", "--config", '{"chunk_size": 10, "duration_ms": 20}', "-n", "30"))
    req = conn.execute("SELECT id FROM heimdall.generation_requests").fetchone()[0]
    assert json.loads(ok(cli("pause", str(req), "--json")))["paused"] == 3
    err(cli("pause", str(req)), "no pending chunks to pause")
    assert json.loads(ok(cli("resume", str(req), "--json")))["resumed"] == 3
    ok(cli("pause", str(req)))
    out = json.loads(ok(cli("abandon", str(req), "--json")))
    assert out == [{"first_idx": 0, "last_idx": 29}]
    store.put("datasets/00000000-0000-0000-0000-000000000001/iq/x.npy", b"stray")
    gc = json.loads(ok(cli("gc", "--grace", "0", "--dry-run", "--json")))
    assert gc["would_remove"] == 1 and gc["removed"] == 0
    gc = json.loads(ok(cli("gc", "--grace", "0", "--json")))
    assert gc["removed"] == 1


@pytest.mark.parametrize("args", [
    (), ("db",), ("db", "upgrade"), ("db", "downgrade"), ("dataset",), ("dataset", "create"),
    ("dataset", "expand"), ("dataset", "list"), ("dataset", "show"), ("dataset", "delete"), ("worker", "run"),
    ("status",), ("validate",), ("repair",), ("gc",), ("retry",), ("pause",), ("resume",), ("abandon",),
    ("export",), ("plot",), ("demo",), ("config", "keys"), ("config", "normalize"),
    ("baseline",), ("dataset", "card"),
])
def test_help_everywhere(cli, args):
    r = cli(*args, "--help")
    assert r.returncode == 0 and "usage: heimdall-synth" in r.stdout
