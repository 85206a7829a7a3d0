"""Worker-side SQL API: claim, heartbeat, release, fail, retry, pause/resume/abandon, roles."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.helpers import commit_chunk, fill_pending_chunks, insert_samples


def create(conn, n=0, chunk_size=100, name="ds"):
    return conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, 1, %s)",
                        (name, Jsonb({"chunk_size": chunk_size}), n)).fetchone()[0]


def claim(conn, vt=60, max_reads=5, version="test"):
    """(chunk_id, claim_token, first_idx, last_idx, attempt) or None."""
    return conn.execute("SELECT chunk_id, claim_token, first_idx, last_idx, attempt "
                        "FROM heimdall.claim_chunk('w', %s, %s, %s)", (vt, max_reads, version)).fetchone()


def msg_of(conn, chunk_id):
    return conn.execute("SELECT msg_id FROM heimdall.generation_chunks WHERE id = %s", (chunk_id,)).fetchone()[0]


def chunk_state(conn, chunk_id):
    return conn.execute("SELECT state FROM heimdall.generation_chunks WHERE id = %s", (chunk_id,)).fetchone()[0]


def test_claim_returns_dataset_and_marks_running(conn):
    ds = create(conn, n=10)
    row = conn.execute("SELECT * FROM heimdall.claim_chunk('w1', 30, 5, 'test')").fetchone()
    assert row[1] is not None                         # the claim token
    assert row[2] == ds and row[3] == "iq_raw" and row[4] == "generate" and row[5:7] == (0, 9)
    assert row[7] == 1 and row[8]["chunk_size"] == 100 and row[9] == 1
    assert chunk_state(conn, row[0]) == "running"
    assert claim(conn) is None            # invisible while claimed


def test_malformed_and_unknown_messages_are_archived_with_an_error(conn):
    conn.execute("SELECT pgmq.send('heimdall_chunks', '{\"hello\": 1}')")
    conn.execute("SELECT pgmq.send('heimdall_chunks', '{\"chunk_id\": 999, \"dataset_id\": \"x\"}')")
    conn.execute("SELECT pgmq.send('heimdall_chunks', '\"just a string\"')")
    assert claim(conn) is None
    errors = [r[0] for r in conn.execute("SELECT error FROM heimdall.dead_letters ORDER BY id")]
    assert errors[0].startswith("malformed payload") and "unknown chunk 999" in errors[1]
    assert errors[2].startswith("malformed payload")
    assert conn.execute("SELECT count(*) FROM pgmq.a_heimdall_chunks").fetchone()[0] == 3
    assert conn.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 0


def test_chunk_failed_after_max_reads_and_retry_reenqueues(conn):
    ds = create(conn, n=5)
    chunk_id, _token, *_ = claim(conn, max_reads=2)
    msg_id = msg_of(conn, chunk_id)
    for _ in range(2):   # the worker "dies": make the message visible again at once
        conn.execute("SELECT pgmq.set_vt('heimdall_chunks', %s, 0)", (msg_id,))
        got = claim(conn, max_reads=2)
        if got is None:
            break
    assert chunk_state(conn, chunk_id) == "failed"
    err = conn.execute("SELECT last_error FROM heimdall.generation_chunks WHERE id = %s", (chunk_id,)).fetchone()[0]
    assert "gave up after 2 deliveries" in err
    assert conn.execute("SELECT heimdall.retry_failed_chunks(%s)", (ds,)).fetchone()[0] == 1
    assert fill_pending_chunks(conn) == 1
    assert conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 5


def test_fail_release_extend_guarded_by_claim_token(conn):
    create(conn, n=5)
    chunk_id, token, *_ = claim(conn)
    vt = conn.execute("SELECT heimdall.extend_chunk(%s, %s, 120)", (chunk_id, token)).fetchone()[0]
    assert vt is not None
    forged = "00000000-0000-4000-8000-000000000000"
    for sql in ("SELECT heimdall.extend_chunk(%s, %s, 120)", "SELECT heimdall.release_chunk(%s, %s)",
                "SELECT heimdall.fail_chunk(%s, %s, 'x', true, 0)", "SELECT heimdall.begin_chunk_commit(%s, %s)",
                "SELECT heimdall.complete_chunk(%s, %s, 'test')"):
        with pytest.raises(psycopg.Error, match="claim lost") as exc:
            conn.execute(sql, (chunk_id, forged))
        assert exc.value.sqlstate == "HS001", sql
    assert chunk_state(conn, chunk_id) == "running"
    assert conn.execute("SELECT heimdall.release_chunk(%s, %s)", (chunk_id, token)).fetchone()[0] is True
    assert chunk_state(conn, chunk_id) == "pending"
    with pytest.raises(psycopg.Error, match="claim lost"):       # a released token is void
        conn.execute("SELECT heimdall.extend_chunk(%s, %s, 120)", (chunk_id, token))
    chunk_id2, token2, *_ = claim(conn)       # visible again at once, under a new token
    assert chunk_id2 == chunk_id and token2 != token
    assert conn.execute("SELECT heimdall.fail_chunk(%s, %s, 'boom', true, 0)", (chunk_id, token2)).fetchone()[0] == "failed"
    with pytest.raises(psycopg.Error, match="claim lost"):
        conn.execute("SELECT heimdall.fail_chunk(%s, %s, 'again', true, 0)", (chunk_id, token2))
    assert claim(conn) is None


def test_complete_requires_all_rows_and_is_idempotent(conn):
    ds = create(conn, n=10)
    chunk_id, token, *_ = claim(conn)
    with pytest.raises(pgerr.CheckViolation, match="5 of 10 feature rows present"):
        with conn.transaction():
            conn.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token))
            insert_samples(conn, ds, 0, 4, staged=True)
            conn.execute("SELECT heimdall.complete_chunk(%s, %s, 'v1')", (chunk_id, token))
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState, match="begin_chunk_commit first"):
        with psycopg.connect(conn.info.dsn) as fresh:    # a session that never began a commit
            fresh.execute("SELECT heimdall.complete_chunk(%s, %s, 'v1')", (chunk_id, token))
    assert commit_chunk(conn, chunk_id, token, ds, 0, 9, generator_version="v1") is True
    assert conn.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token)).fetchone()[0] is False
    assert commit_chunk(conn, chunk_id, token, ds, 0, 9, generator_version="v1") is False
    assert conn.execute("SELECT num_samples, generator_version FROM heimdall.synthetic_datasets WHERE id = %s",
                        (ds,)).fetchone() == (10, "v1")


def test_rows_from_another_generator_version_refused(conn):
    ds = create(conn, n=20, chunk_size=10)
    fill_pending_chunks(conn, generator_version="v1")
    conn.execute("SELECT heimdall.expand_dataset(%s, 10)", (ds,))
    # refused up front: claim_chunk fails the chunk for good, naming both versions
    assert claim(conn, version="v2") is None
    err = conn.execute("SELECT state, last_error FROM heimdall.generation_chunks WHERE first_idx = 20").fetchone()
    assert err[0] == "failed" and "generated by v1" in err[1] and "runs v2" in err[1]
    assert conn.execute("SELECT count(*) FROM pgmq.q_heimdall_chunks").fetchone()[0] == 0


def test_complete_refuses_another_generator_version(conn):
    """Two workers of different versions claimed chunks of a new dataset before either
    committed: the second commit is refused with HS003."""
    ds = create(conn, n=20, chunk_size=10)
    a = claim(conn, version="v1")
    b = claim(conn, version="v2")
    assert commit_chunk(conn, a[0], a[1], ds, a[2], a[3], generator_version="v1")
    with pytest.raises(psycopg.Error, match="generated by generator v1, this worker runs v2") as exc:
        commit_chunk(conn, b[0], b[1], ds, b[2], b[3], generator_version="v2")
    assert exc.value.sqlstate == "HS003"


def test_pause_resume_abandon_tail_only(conn):
    ds = create(conn, n=30, chunk_size=10)
    first_req = conn.execute("SELECT id FROM heimdall.generation_requests").fetchone()[0]
    req = conn.execute("SELECT heimdall.expand_dataset(%s, 30)", (ds,)).fetchone()[0]
    assert conn.execute("SELECT heimdall.pause_request(%s)", (req,)).fetchone()[0] == 3
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState, match="no pending chunks to pause"):
        conn.execute("SELECT heimdall.pause_request(%s)", (req,))
    assert fill_pending_chunks(conn) == 3          # only the first request's chunks
    assert conn.execute("SELECT state FROM heimdall.request_progress WHERE request_id = %s", (req,)).fetchone()[0] == "paused"
    # the first request is finished: nothing to abandon there
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState, match="nothing unfinished"):
        conn.execute("SELECT heimdall.abandon_request(%s)", (first_req,))
    assert conn.execute("SELECT heimdall.resume_request(%s)", (req,)).fetchone()[0] == 3
    # finish one chunk of the second request, then pause the rest: 40..59 are the tail
    c_id, token, first, last, _ = claim(conn)
    commit_chunk(conn, c_id, token, ds, first, last)
    conn.execute("SELECT heimdall.pause_request(%s)", (req,))
    assert conn.execute("SELECT * FROM heimdall.abandon_request(%s)", (req,)).fetchone() == (40, 59)
    assert conn.execute("SELECT next_idx, num_samples FROM heimdall.synthetic_datasets WHERE id = %s",
                        (ds,)).fetchone() == (40, 40)
    assert conn.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 0
    # the next expansion continues right after: no gap
    conn.execute("SELECT heimdall.expand_dataset(%s, 5)", (ds,))
    fill_pending_chunks(conn)
    idx = [r[0] for r in conn.execute("SELECT sample_idx FROM heimdall.measurement_features ORDER BY 1")]
    assert idx == list(range(45))


def test_abandon_refused_when_not_the_tail(conn):
    ds = create(conn, n=10, chunk_size=10)
    first_req = conn.execute("SELECT id FROM heimdall.generation_requests").fetchone()[0]
    conn.execute("SELECT heimdall.pause_request(%s)", (first_req,))
    conn.execute("SELECT heimdall.expand_dataset(%s, 10)", (ds,))
    fill_pending_chunks(conn)                        # 10..19 committed after the paused 0..9
    with pytest.raises(pgerr.ObjectNotInPrerequisiteState, match="not the tail"):
        conn.execute("SELECT heimdall.abandon_request(%s)", (first_req,))


def test_repair_chunk_rewrites_its_range_in_one_transaction(conn):
    ds = create(conn, n=10)
    fill_pending_chunks(conn)
    conn.execute("SELECT heimdall.enqueue_repair(%s, 3, 5, 'test')", (ds,))
    assert fill_pending_chunks(conn) == 1
    assert conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets").fetchone()[0] == 10


def test_roles(conn, db_url):
    ds = create(conn, n=5)
    conn.execute("CREATE ROLE w_login LOGIN IN ROLE heimdall_worker")
    conn.execute("CREATE ROLE r_login LOGIN IN ROLE heimdall_reader")
    worker_url = db_url.replace("postgres@", "w_login@")
    reader_url = db_url.replace("postgres@", "r_login@")
    try:
        with psycopg.connect(worker_url, autocommit=True) as w:
            assert fill_pending_chunks(w) == 1
            with pytest.raises(pgerr.InsufficientPrivilege):
                w.execute("SELECT heimdall.expand_dataset(%s, 5)", (ds,))
            with pytest.raises(pgerr.InsufficientPrivilege):
                w.execute("UPDATE heimdall.synthetic_datasets SET name = 'x'")
        with psycopg.connect(reader_url, autocommit=True) as r:
            assert r.execute("SELECT num_samples FROM heimdall.dataset_health").fetchone()[0] == 5
            with pytest.raises(pgerr.InsufficientPrivilege):
                r.execute("SELECT * FROM heimdall.claim_chunk('r', 30, 5, 'test')")
            with pytest.raises(pgerr.InsufficientPrivilege):
                r.execute("DELETE FROM heimdall.measurement_features")
    finally:
        conn.execute("DROP OWNED BY w_login, r_login")
        conn.execute("DROP ROLE w_login")
        conn.execute("DROP ROLE r_login")


@pytest.mark.parametrize("sql, args, sqlstate, message", [
    ("SELECT heimdall.validate_dataset(%s)", ("00000000-0000-0000-0000-000000000000",), "P0002", "does not exist"),
    ("SELECT heimdall.validate_dataset(%s, '{}')", None, "22023", "extra_issues must be a JSON array"),
    ("SELECT heimdall.validate_dataset(%s, '[]', -1)", None, "22023", "stuck_after_s must be >= 0"),
    ("SELECT heimdall.repair_num_samples(%s)", ("00000000-0000-0000-0000-000000000000",), "P0002", "does not exist"),
    ("SELECT heimdall.enqueue_repair(%s, 5, 2)", None, "22023", "must lie inside the reserved range"),
    ("SELECT heimdall.enqueue_repair(%s, 0, 10)", None, "22023", "must lie inside the reserved range"),
    ("SELECT heimdall.enqueue_repair(%s, 0, 3)", None, "55000", "overlap a chunk that is still queued"),
    ("SELECT heimdall.release_stuck_chunks(%s, -5)", None, "22023", "stuck_after_s must be >= 0"),
])
def test_health_functions_bad_input(conn, sql, args, sqlstate, message):
    ds = create(conn, n=10)
    with pytest.raises(psycopg.Error, match=message) as exc:
        conn.execute(sql, args or (ds,))
    assert exc.value.sqlstate == sqlstate


def test_validate_sql_sees_both_directions_and_stores_health(conn):
    ds = create(conn, n=10)
    report = conn.execute("SELECT heimdall.validate_dataset(%s)", (ds,)).fetchone()[0]
    assert report["status"] == "healthy" and report["counts"]["open_chunks"] == 1   # in flight: no gap
    fill_pending_chunks(conn)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("DELETE FROM heimdall.synthetic_iq_samples WHERE sample_idx IN (2, 3, 7)")
        conn.execute("DELETE FROM heimdall.measurement_features WHERE sample_idx = 5")
    report = conn.execute("SELECT heimdall.validate_dataset(%s)", (ds,)).fetchone()[0]
    got = sorted((i["kind"], i.get("first_idx"), i.get("last_idx")) for i in report["issues"])
    assert got == [("features_missing_iq", 2, 3), ("features_missing_iq", 7, 7),
                   ("iq_without_features", 5, 5), ("num_samples_mismatch", None, None)]
    assert conn.execute("SELECT health_status FROM heimdall.synthetic_datasets WHERE id = %s",
                        (ds,)).fetchone()[0] == "critical"
    assert conn.execute("SELECT heimdall.repair_num_samples(%s)", (ds,)).fetchone()[0] == 9
    req = conn.execute("SELECT heimdall.enqueue_repair(%s, 2, 7, 'test')", (ds,)).fetchone()[0]
    assert fill_pending_chunks(conn) == 1
    assert conn.execute("SELECT heimdall.validate_dataset(%s) ->> 'status'", (ds,)).fetchone()[0] == "healthy"
    assert conn.execute("SELECT kind, state FROM heimdall.request_progress WHERE request_id = %s",
                        (req,)).fetchone() == ("repair", "done")
