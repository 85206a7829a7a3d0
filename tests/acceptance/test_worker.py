"""Real worker processes against real Postgres and a real S3 server (issue: workers)."""

from __future__ import annotations

import signal
import time

import psycopg
import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.localservices import LocalS3
from heimdall_synth.maintenance import collect_garbage
from tests.acceptance.checks import assert_consistent, features, iq_by_index
from tests.acceptance.conftest import finish, log_text, wait_for_log
from worker.storage import ObjectStore, dataset_prefix

SMALL = {"chunk_size": 40, "duration_ms": 40}     # 7 x 2,000 IQ: fast, same code paths


def create(conn, name="ds", n=0, seed=11, dataset_type="iq_raw", config=None):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, dataset_type, Jsonb(config or SMALL), seed, n)).fetchone()[0]


def expand(conn, ds, n):
    return conn.execute("SELECT heimdall.expand_dataset(%s, %s)", (ds, n)).fetchone()[0]


def objects(store, ds):
    return sorted(o.key for o in store.list(dataset_prefix(str(ds))))


def test_create_expand_expand_with_real_workers(conn, store, spawn_worker):
    ds = create(conn, n=50, config={"chunk_size": 40})          # default 7 x 10,000 IQ
    finish(spawn_worker("--until-idle"))
    expand(conn, ds, 100)
    finish(spawn_worker("--until-idle"))
    expand(conn, ds, 200)
    out = finish(spawn_worker("--until-idle"))
    assert '"event": "chunk_done"' in out and '"bytes":' in out
    assert_consistent(conn, store, ds, 350)
    # one object per chunk: 50 -> 2 chunks, 100 -> 3, 200 -> 5
    assert len(objects(store, ds)) == 10
    progress = conn.execute("SELECT state, chunks_done, chunks_total FROM heimdall.request_progress "
                            "WHERE dataset_id = %s ORDER BY first_idx", (ds,)).fetchall()
    assert progress == [("done", 2, 2), ("done", 3, 3), ("done", 5, 5)]


def test_feature_based_dataset_has_no_objects(conn, store, spawn_worker):
    ds = create(conn, n=60, dataset_type="feature_based")
    finish(spawn_worker("--until-idle"))
    assert_consistent(conn, store, ds, 60)
    assert objects(store, ds) == []


def test_one_worker_and_three_workers_give_identical_data(conn, store, spawn_worker):
    a = create(conn, "one", n=200, seed=5)
    finish(spawn_worker("--until-idle"))
    b = create(conn, "three", n=200, seed=5)
    procs = [spawn_worker("--until-idle") for _ in range(3)]
    outs = [finish(p) for p in procs]
    assert sum(o.count('"event": "chunk_done"') for o in outs) == 5
    assert features(conn, a) == features(conn, b)
    assert iq_by_index(conn, store, a) == iq_by_index(conn, store, b)
    assert_consistent(conn, store, b, 200, compare_rf=False)


@pytest.mark.parametrize("point", ["after_upload", "mid_copy"])
def test_sigkill_in_the_crash_window_recovers(conn, store, spawn_worker, point):
    ds = create(conn, n=120)
    victim = spawn_worker("--until-idle", HEIMDALL_FAULT_SLEEP=f"{point}:3600")
    wait_for_log(victim, '"fault_point"')
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # the killed worker's message comes back after its visibility timeout (3 s)
    finish(spawn_worker("--until-idle"))
    assert_consistent(conn, store, ds, 120)
    assert conn.execute("SELECT max(attempts) FROM heimdall.generation_chunks WHERE dataset_id = %s",
                        (ds,)).fetchone()[0] == 2
    result = collect_garbage(conn, store, grace_s=0)
    assert result["removed"] == 0                 # the rewritten object is referenced
    assert len(objects(store, ds)) == 3


def test_object_store_stopped_and_restarted_during_a_run(conn, db_url, spawn_worker):
    """SeaweedFS is killed while a worker is about to upload and comes back on the same
    port with its data (an outage): the worker retries and the dataset ends up consistent."""
    s3 = LocalS3().start()
    try:
        st = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key, "outage-test")
        ds = create(conn, n=80)
        p = spawn_worker("--until-idle", s3=s3, HEIMDALL_FAULT_SLEEP="before_upload:2",
                         HEIMDALL_S3_BUCKET="outage-test")
        wait_for_log(p, '"fault_point"')
        s3.stop(remove=False)              # the upload after the pause hits a dead server
        # down until the worker (past the S3 client's own retries) retries the upload itself
        wait_for_log(p, '"event": "s3_retry"')
        assert p.poll() is None
        s3.start()
        out = finish(p)
        assert '"event": "chunk_error"' not in out
        assert_consistent(conn, st, ds, 80)
    finally:
        s3.stop()


def test_database_connection_terminated_mid_chunk(conn, store, spawn_worker):
    ds = create(conn, n=80)
    p = spawn_worker("--until-idle", HEIMDALL_FAULT_SLEEP="after_upload:2")
    wait_for_log(p, '"fault_point"')
    killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'heimdall-worker'").fetchone()[0]
    assert killed >= 1
    out = finish(p)
    assert '"event": "commit_retry"' in out or '"event": "db_lost"' in out
    assert '"event": "chunk_error"' not in out          # handled as a lost connection, not a failure
    assert_consistent(conn, store, ds, 80)


def test_sigterm_finishes_the_chunk_in_hand_and_exits(conn, store, spawn_worker):
    ds = create(conn, n=200)
    p = spawn_worker(HEIMDALL_FAULT_SLEEP="after_upload:3")       # runs until stopped
    wait_for_log(p, '"fault_point"')
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait(15)
    assert time.monotonic() - t0 < 10 and p.returncode == 0
    out = log_text(p)
    assert '"event": "stopping"' in out and out.count('"event": "chunk_done"') == 1
    states = [r[0] for r in conn.execute("SELECT state FROM heimdall.generation_chunks WHERE dataset_id = %s "
                                         "ORDER BY first_idx", (ds,))]
    assert states == ["done", "pending", "pending", "pending", "pending"]


def test_second_signal_releases_the_chunk_at_once(conn, store, spawn_worker):
    ds = create(conn, n=40)
    p = spawn_worker(HEIMDALL_FAULT_SLEEP="after_upload:30")
    wait_for_log(p, '"fault_point"')
    p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    assert '"event": "chunk_released"' in log_text(p)
    assert conn.execute("SELECT state FROM heimdall.generation_chunks WHERE dataset_id = %s",
                        (ds,)).fetchone()[0] == "pending"
    finish(spawn_worker("--until-idle"))         # available at once, not after the vt
    assert_consistent(conn, store, ds, 40)


def test_bad_messages_are_archived_not_retried(conn, store, spawn_worker):
    conn.execute("SELECT pgmq.send('heimdall_chunks', '{\"oops\": true}')")
    conn.execute("SELECT pgmq.send('heimdall_chunks', %s)",
                 (Jsonb({"chunk_id": 987654, "dataset_id": "00000000-0000-0000-0000-000000000000",
                         "first_idx": 0, "last_idx": 9}),))
    finish(spawn_worker("--until-idle"), timeout_s=60)
    errors = [r[0] for r in conn.execute("SELECT error FROM heimdall.dead_letters ORDER BY id")]
    assert errors[0].startswith("malformed payload") and errors[1].startswith("unknown chunk 987654")
    assert conn.execute("SELECT count(*) FROM pgmq.q_heimdall_chunks").fetchone()[0] == 0


def test_config_that_never_accepts_fails_the_chunk_then_retry(conn, store, spawn_worker, db_url):
    ds = create(conn, n=10, config={**SMALL, "max_gdop": 0.0001, "max_attempts": 3})
    finish(spawn_worker("--until-idle"))
    state, err = conn.execute("SELECT state, last_error FROM heimdall.generation_chunks WHERE dataset_id = %s",
                              (ds,)).fetchone()
    assert state == "failed" and "all 3 attempts rejected" in err
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "heimdall_synth", "--database-url", db_url, "retry", "ds"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "1" in r.stdout
    assert conn.execute("SELECT state FROM heimdall.generation_chunks WHERE dataset_id = %s",
                        (ds,)).fetchone()[0] == "pending"


def test_missing_settings_and_unreachable_store_fail_clearly(db_url, spawn_worker, s3_server):
    p = spawn_worker("--until-idle", HEIMDALL_S3_ENDPOINT="")
    p.wait(30)
    assert p.returncode == 1 and "HEIMDALL_S3_ENDPOINT is not set" in log_text(p)
    p = spawn_worker("--until-idle", HEIMDALL_S3_ENDPOINT="http://127.0.0.1:1")
    p.wait(30)
    assert p.returncode == 1 and "must be host:port without scheme" in log_text(p)
    p = spawn_worker("--until-idle", HEIMDALL_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    p.wait(60)
    assert p.returncode == 1 and "cannot reach the database" in log_text(p)


def test_gc_removes_deleted_datasets_and_orphans_after_grace_only(conn, store, spawn_worker):
    keep = create(conn, "keep", n=40)
    gone = create(conn, "gone", n=40)
    finish(spawn_worker("--until-idle"))
    store.put(f"datasets/{keep}/iq/stray.npy", b"x" * 10)               # orphan
    expand(conn, keep, 40)                                               # in flight, not started
    in_flight_key = f"datasets/{keep}/iq/0000000040-0000000079.npy"
    store.put(in_flight_key, b"partial upload")
    conn.execute("SELECT heimdall.delete_dataset(%s)", (gone,))
    assert collect_garbage(conn, store, grace_s=3600)["removed"] == 0   # all inside the grace period
    result = collect_garbage(conn, store, grace_s=0)
    assert result["removed"] == 2
    assert objects(store, gone) == []
    assert objects(store, keep) == [f"datasets/{keep}/iq/0000000000-0000000039.npy", in_flight_key]
    with psycopg.connect(conn.info.dsn) as c:
        assert c.execute("SELECT action FROM heimdall.audit_log WHERE action = 'gc'").fetchone() == ("gc",)


def test_wrong_credentials_give_a_clear_error(conn, spawn_worker, s3_server):
    """The session's SeaweedFS checks signatures: a worker with a wrong secret stops with a
    message naming the settings, not a traceback, and writes nothing. (Its first request is
    a HEAD on the bucket: a 403 without a body, reported as AccessDenied.)"""
    create(conn, n=40)
    p = spawn_worker("--until-idle", HEIMDALL_S3_SECRET_KEY=s3_server.secret_key + "-wrong")
    p.wait(60)
    out = log_text(p)
    assert p.returncode == 1
    assert "refused the credentials (HEIMDALL_S3_ACCESS_KEY / HEIMDALL_S3_SECRET_KEY)" in out
    assert "Traceback" not in out
    assert conn.execute("SELECT count(*) FROM heimdall.generation_chunks WHERE state = 'done'").fetchone()[0] == 0


def test_long_chunk_keeps_its_claim_with_heartbeats(conn, store, spawn_worker):
    """A chunk that takes longer than the visibility timeout (3 s here) is not handed to a
    second worker: the first one extends the message's visibility while it works."""
    ds = create(conn, n=40)
    slow = spawn_worker("--until-idle", HEIMDALL_FAULT_SLEEP="after_upload:7")
    wait_for_log(slow, '"fault_point"')
    other = spawn_worker("--until-idle")
    out_slow, out_other = finish(slow), finish(other)
    assert out_slow.count('"event": "chunk_done"') == 1
    assert '"event": "chunk_done"' not in out_other and '"event": "chunk_already_done"' not in out_other
    assert conn.execute("SELECT attempts FROM heimdall.generation_chunks WHERE dataset_id = %s",
                        (ds,)).fetchone()[0] == 1
    assert_consistent(conn, store, ds, 40)


def test_dataset_deleted_while_a_worker_commits_it(conn, store, spawn_worker):
    """delete_dataset takes the chunk rows before the dataset row (a worker's commit order),
    so it waits for the commit in flight instead of deadlocking with it; the worker lives."""
    ds = create(conn, n=80)
    p = spawn_worker("--until-idle", HEIMDALL_FAULT_SLEEP="mid_copy:2")
    wait_for_log(p, '"fault_point"')
    t0 = time.monotonic()
    conn.execute("SELECT heimdall.delete_dataset(%s)", (ds,))       # blocks until that commit ends
    assert time.monotonic() - t0 > 0.5
    out = finish(p)
    assert "Traceback" not in out and "deadlock" not in out.lower()
    assert conn.execute("SELECT count(*) FROM heimdall.measurement_features").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM heimdall.generation_chunks").fetchone()[0] == 0
    assert collect_garbage(conn, store, grace_s=0)["removed"] >= 1     # its objects go with gc
    assert objects(store, ds) == []


def test_a_chunk_the_worker_cannot_handle_fails_without_killing_the_worker(conn, store, spawn_worker):
    bad = create(conn, "unreadable", n=10)
    good = create(conn, "fine", n=40)
    # a config this worker version cannot read (as from a newer schema): remove a key
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.synthetic_datasets SET config = config - 'fm_deviation_hz' WHERE id = %s",
                     (bad,))
    out = finish(spawn_worker("--until-idle", "--max-reads", "2"))
    assert '"event": "chunk_error"' in out and "Traceback" not in out
    state, err = conn.execute("SELECT state, last_error FROM heimdall.generation_chunks WHERE dataset_id = %s",
                              (bad,)).fetchone()
    assert state == "failed" and "fm_deviation_hz" in err
    assert_consistent(conn, store, good, 40)
