"""Validate and repair (issue 5): each kind of damage, made the way real damage happens,
is reported exactly, and repair + a worker run give back the undamaged bytes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.validate import plan_repair, validate
from tests.acceptance.checks import assert_consistent
from tests.acceptance.conftest import finish, worker_env

SMALL = {"chunk_size": 40, "duration_ms": 40}
N = 120


@pytest.fixture
def dataset(conn, store, spawn_worker):
    ds = conn.execute("SELECT heimdall.create_dataset('victim', 'iq_raw', %s, 21, %s)",
                      (Jsonb(SMALL), N)).fetchone()[0]
    finish(spawn_worker("--until-idle"))
    report = validate(conn, store, ds, deep=True)
    assert report["status"] == "healthy" and report["issues"] == []
    return ds


def kinds(report):
    return sorted((i["kind"], i.get("first_idx"), i.get("last_idx")) for i in report["issues"])


def as_superuser_bypassing_triggers(conn, sql, *args):
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(sql, args)


@pytest.fixture
def repair_and_rerun(conn, store, spawn_worker, db_url, s3_server):
    """`heimdall-synth repair --apply` (it re-validates first), a worker run, then healthy
    and bit-identical to the RF core's output, i.e. to an undamaged dataset of the seed."""
    def _do(ds, grace=0, stuck_after=600, n=N):
        report = validate(conn, store, ds, deep=True, stuck_after_s=stuck_after)
        r = subprocess.run([sys.executable, "-m", "heimdall_synth", "repair", str(ds), "--apply", "--json",
                            "--grace", str(grace), "--stuck-after", str(stuck_after)],
                           env=worker_env(db_url, s3_server, store.bucket), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        applied = json.loads(r.stdout)
        assert applied["applied"] is True and applied["status_before"] == report["status"]
        finish(spawn_worker("--until-idle"))
        after = validate(conn, store, ds, deep=True)
        assert after["status"] == "healthy", after["issues"]
        assert_consistent(conn, store, ds, n)
        return report
    return _do


def key_of(conn, ds, idx):
    return conn.execute("SELECT object_key FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s "
                        "AND sample_idx = %s", (ds, idx)).fetchone()[0]


def test_deleted_iq_rows(conn, store, spawn_worker, dataset, repair_and_rerun):
    as_superuser_bypassing_triggers(conn, "DELETE FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s "
                                    "AND sample_idx BETWEEN 10 AND 14", dataset)
    report = validate(conn, store, dataset, deep=True)
    assert report["status"] == "critical"
    assert kinds(report) == [("features_missing_iq", 10, 14)]
    repair_and_rerun(dataset)


def test_deleted_feature_rows(conn, store, spawn_worker, dataset, repair_and_rerun):
    as_superuser_bypassing_triggers(conn, "DELETE FROM heimdall.measurement_features WHERE dataset_id = %s "
                                    "AND sample_idx BETWEEN 20 AND 22", dataset)
    report = validate(conn, store, dataset, deep=True)
    assert kinds(report) == [("iq_without_features", 20, 22), ("num_samples_mismatch", None, None)]
    repair_and_rerun(dataset)
    assert conn.execute("SELECT count(*) FROM heimdall.audit_log WHERE action IN ('repair_num_samples', "
                        "'enqueue_repair')").fetchone()[0] == 2


def test_wrong_num_samples(conn, store, spawn_worker, dataset, repair_and_rerun):
    as_superuser_bypassing_triggers(conn, "UPDATE heimdall.synthetic_datasets SET num_samples = 7 WHERE id = %s",
                                    dataset)
    report = validate(conn, store, dataset)
    assert kinds(report) == [("num_samples_mismatch", None, None)]
    assert plan_repair(report, "iq_raw") == [{"action": "repair_num_samples",
                                              "detail": "num_samples is 7 but there are 120 feature rows"}]
    repair_and_rerun(dataset)
    detail = conn.execute("SELECT detail FROM heimdall.audit_log WHERE action = 'repair_num_samples'").fetchone()[0]
    assert detail == {"before": 7, "after": 120}


def test_a_gap(conn, store, spawn_worker, dataset, repair_and_rerun):
    conn.execute("DELETE FROM heimdall.measurement_features WHERE dataset_id = %s AND sample_idx = 77", (dataset,))
    report = validate(conn, store, dataset)
    assert kinds(report) == [("gap", 77, 77)]
    repair_and_rerun(dataset)


def test_deleted_object(conn, store, spawn_worker, dataset, repair_and_rerun):
    store.remove([key_of(conn, dataset, 45)])
    report = validate(conn, store, dataset)
    assert kinds(report) == [("missing_object", 40, 79)]
    repair_and_rerun(dataset)


def test_flipped_bytes_found_by_deep_only(conn, store, spawn_worker, dataset, repair_and_rerun):
    key = key_of(conn, dataset, 90)
    off = conn.execute("SELECT byte_offset FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s "
                       "AND sample_idx = 90", (dataset,)).fetchone()[0]
    blob = bytearray(store.get(key))
    blob[off + 100] ^= 0xFF
    store.put(key, bytes(blob))
    assert validate(conn, store, dataset, deep=False)["status"] == "healthy"
    report = validate(conn, store, dataset, deep=True)
    assert kinds(report) == [("corrupt_sample", 90, 90)]
    repair_and_rerun(dataset)


def test_truncated_object(conn, store, spawn_worker, dataset, repair_and_rerun):
    key = key_of(conn, dataset, 0)
    blob = store.get(key)
    store.put(key, blob[: len(blob) // 2])
    report = validate(conn, store, dataset)
    assert [k for k, *_ in kinds(report)] == ["object_too_short"]
    assert report["issues"][0]["last_idx"] == 39
    repair_and_rerun(dataset)


def test_stray_object(conn, store, spawn_worker, dataset, repair_and_rerun):
    store.put(f"datasets/{dataset}/iq/stray.bin", b"junk")
    report = validate(conn, store, dataset)
    assert report["status"] == "warning"
    assert kinds(report) == [("orphan_object", None, None)]
    # inside the grace period repair leaves it alone
    from heimdall_synth.validate import apply_repair
    done = apply_repair(conn, store, dataset, plan_repair(report, "iq_raw"), grace_s=3600, stuck_after_s=600)
    assert "skipped" in done[0]
    repair_and_rerun(dataset, grace=0)
    assert [o.key for o in store.list(f"datasets/{dataset}/") if o.key.endswith("stray.bin")] == []


def test_chunk_left_claimed_by_a_dead_worker(conn, store, spawn_worker, dataset, repair_and_rerun):
    conn.execute("SELECT heimdall.expand_dataset(%s, 40)", (dataset,))
    from worker.rf import GENERATOR_VERSION
    conn.execute("SELECT * FROM heimdall.claim_chunk('dead-worker', 1, 5, %s)", (GENERATOR_VERSION,))  # then it "dies"
    time.sleep(1.5)
    assert validate(conn, store, dataset)["status"] == "healthy"                 # in flight: not damage
    report = validate(conn, store, dataset, stuck_after_s=0)
    assert kinds(report) == [("stuck_chunks", 120, 159)]
    repair_and_rerun(dataset, stuck_after=0, n=160)


def test_validation_during_a_run_reports_no_damage(conn, store, spawn_worker, dataset, repair_and_rerun):
    conn.execute("SELECT heimdall.expand_dataset(%s, 400)", (dataset,))
    p = spawn_worker("--until-idle")
    statuses = set()
    while p.poll() is None:
        statuses.add(validate(conn, store, dataset, deep=True)["status"])
    finish(p)
    assert statuses <= {"healthy"}
    assert validate(conn, store, dataset, deep=True)["status"] == "healthy"


def run_cli(db_url, s3, bucket, *args):
    from tests.acceptance.conftest import worker_env
    return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                          env=worker_env(db_url, s3, bucket), timeout=120)


def test_cli_exit_codes_json_and_dry_run(conn, store, dataset, db_url, s3_server, bucket):
    r = run_cli(db_url, s3_server, bucket, "validate", "victim")
    assert r.returncode == 0 and "HEALTHY" in r.stdout
    store.put(f"datasets/{dataset}/iq/stray.bin", b"junk")
    r = run_cli(db_url, s3_server, bucket, "validate", "victim", "--json")
    assert r.returncode == 3                      # warning (1 is an error)
    assert json.loads(r.stdout)["issues"][0]["kind"] == "orphan_object"
    store.remove([key_of(conn, dataset, 0)])
    r = run_cli(db_url, s3_server, bucket, "validate", str(dataset), "--deep")
    assert r.returncode == 4 and "missing_object" in r.stdout   # critical
    r = run_cli(db_url, s3_server, bucket, "repair", "victim")
    assert r.returncode == 0 and "dry run" in r.stdout and "regenerate" in r.stdout
    assert conn.execute("SELECT count(*) FROM heimdall.generation_requests WHERE kind = 'repair'").fetchone()[0] == 0
    r = run_cli(db_url, s3_server, bucket, "validate", "nope")
    assert r.returncode == 1 and "dataset 'nope' does not exist" in r.stderr
    stored = conn.execute("SELECT health_status, health_report->>'status' FROM heimdall.synthetic_datasets "
                          "WHERE id = %s", (dataset,)).fetchone()
    assert stored == ("critical", "critical")
