"""Hardening with real worker processes, a real S3 server and real login roles: poison
messages, chunks that lost their message, a generator version mismatch, and the admin
role running gc and repair end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.acceptance.checks import assert_consistent
from tests.acceptance.conftest import finish, log_text, worker_env

SMALL = {"chunk_size": 20, "duration_ms": 40}

# >= 20 payloads that are not a usable chunk reference
POISON = [
    {"chunk_id": 1e30}, {"chunk_id": -1}, {"chunk_id": 0}, {"chunk_id": 1.5}, {"chunk_id": "1"},
    {"chunk_id": None}, {"chunk_id": True}, {"chunk_id": [1]}, {"chunk_id": {"id": 1}},
    {"chunk_id": 9223372036854775807}, {"chunk_id": 99999999999999999999}, {"chunk_id": 424242},
    {}, {"hello": "world"}, [1, 2, 3], "a string", 42, None, {"chunk_id": 1, "dataset_id": "not-a-uuid"},
    {"chunk_id": 1, "dataset_id": str(uuid.uuid4()), "first_idx": 0, "last_idx": 19},
    {"chunk_id": 1, "first_idx": "0; DROP TABLE x", "last_idx": -5},
    {"chunk_id": 1e-300}, {"chunk_id": "1e30"}, {"chunk_id": "\u0000"[:0] + "x" * 10000},
]


def create(conn, name="ds", n=0, config=None):
    return conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, 5, %s)",
                        (name, Jsonb(config or SMALL), n)).fetchone()[0]


def send(conn, payload):
    conn.execute("SELECT pgmq.send('heimdall_chunks', %s::jsonb)", (json.dumps(payload),))


def num_samples(conn, ds):
    return conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]


def test_poison_messages_never_stop_a_worker(conn, store, spawn_worker):
    assert len(POISON) >= 20
    for p in POISON[:10]:
        send(conn, p)
    worker = spawn_worker()                        # runs until stopped
    ds = create(conn, n=40)
    for p in POISON[10:]:
        send(conn, p)
    conn.execute("SELECT heimdall.expand_dataset(%s, 40)", (ds,))
    deadline = time.monotonic() + 120
    while num_samples(conn, ds) < 80 and time.monotonic() < deadline:
        assert worker.poll() is None, log_text(worker)
        time.sleep(0.2)
    assert num_samples(conn, ds) == 80
    assert worker.poll() is None                   # still serving
    worker.send_signal(signal.SIGTERM)
    finish(worker, timeout_s=60)
    letters = conn.execute("SELECT count(*), count(*) FILTER (WHERE error <> '') FROM heimdall.dead_letters").fetchone()
    assert letters == (len(POISON), len(POISON))
    assert conn.execute("SELECT count(*) FROM pgmq.q_heimdall_chunks").fetchone()[0] == 0
    assert_consistent(conn, store, ds, 80)


def run_cli(url, s3, bucket, *args):
    return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                          env=worker_env(url, s3, bucket), timeout=120)


def test_chunk_without_message_reported_repaired_and_until_idle_exits(conn, store, spawn_worker, db_url,
                                                                       s3_server, bucket):
    ds = create(conn, n=60)
    lost = conn.execute("SELECT msg_id FROM heimdall.generation_chunks WHERE dataset_id = %s AND first_idx = 20",
                        (ds,)).fetchone()[0]
    conn.execute("SELECT pgmq.delete('heimdall_chunks', %s::bigint)", (lost,))
    finish(spawn_worker("--until-idle"), timeout_s=120)       # exits: it does not wait for that chunk
    assert num_samples(conn, ds) == 40
    r = run_cli(db_url, s3_server, bucket, "validate", "ds", "--json")
    report = json.loads(r.stdout)
    assert report["status"] == "warning", r.stderr
    assert [(i["kind"], i["first_idx"], i["last_idx"]) for i in report["issues"]] == [("chunk_without_message", 20, 39)]
    r = run_cli(db_url, s3_server, bucket, "repair", "ds", "--apply", "--json")
    assert r.returncode == 0, r.stderr
    finish(spawn_worker("--until-idle"), timeout_s=120)
    assert_consistent(conn, store, ds, 60)
    assert json.loads(run_cli(db_url, s3_server, bucket, "validate", "ds", "--json").stdout)["status"] == "healthy"


def test_generator_version_mismatch_fails_the_chunk_with_the_reason(conn, store, spawn_worker):
    ds = create(conn, n=20)
    conn.execute("UPDATE heimdall.synthetic_datasets SET generator_version = 'rf-0.0-other' WHERE id = %s", (ds,))
    out = finish(spawn_worker("--until-idle"), timeout_s=120)
    state, err, msg = conn.execute("SELECT state, last_error, msg_id FROM heimdall.generation_chunks "
                                   "WHERE dataset_id = %s", (ds,)).fetchone()
    from worker.rf import GENERATOR_VERSION
    assert state == "failed" and msg is None
    assert "generator version mismatch" in err and "rf-0.0-other" in err and GENERATOR_VERSION in err
    assert "Traceback" not in out
    assert num_samples(conn, ds) == 0


@pytest.fixture
def admin_url(conn, db_url):
    name = f"admin_{uuid.uuid4().hex[:6]}"
    conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE heimdall_admin')
    yield db_url.replace("postgres@", f"{name}@")
    conn.execute(f'DROP OWNED BY "{name}"')
    conn.execute(f'DROP ROLE "{name}"')


def test_admin_role_runs_gc_and_orphan_repair_end_to_end(conn, store, spawn_worker, admin_url, s3_server, bucket):
    admin = admin_url.split("//")[1].split("@")[0]
    keep = create(conn, "keep", n=20)
    gone = create(conn, "gone", n=20)
    finish(spawn_worker("--until-idle"))
    with psycopg.connect(admin_url, autocommit=True) as a:       # the admin deletes, as admin
        a.execute("SELECT heimdall.delete_dataset(%s)", (gone,))
    store.put(f"datasets/{keep}/iq/stray.npy", b"x" * 10)
    r = run_cli(admin_url, s3_server, bucket, "repair", "keep", "--apply", "--grace", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert [o.key for o in store.list(f"datasets/{keep}/") if o.key.endswith("stray.npy")] == []
    r = run_cli(admin_url, s3_server, bucket, "gc", "--grace", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert list(store.list(f"datasets/{gone}/")) == []
    rows = conn.execute("SELECT action, actor FROM heimdall.audit_log WHERE action IN "
                        "('delete_orphan', 'gc', 'gc_done', 'delete_dataset') ORDER BY id").fetchall()
    assert rows == [("delete_dataset", admin), ("delete_orphan", admin), ("gc", admin), ("gc_done", admin)]
    assert conn.execute("SELECT gc_done_at IS NOT NULL FROM heimdall.deleted_datasets WHERE dataset_id = %s",
                        (gone,)).fetchone()[0]
    assert_consistent(conn, store, keep, 20)
