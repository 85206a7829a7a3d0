"""The database boundary against the session's real PostgreSQL: connect with the one policy,
retry only what is worth retrying and give up with a clear error, translate the worker
protocol's own SQLSTATEs, named queries and COPY with translated errors."""

from __future__ import annotations

import time

import psycopg
import pytest

from heimdall_synth.localservices import free_port
from worker import db
from worker.errors import (
    ChunkAbandoned,
    ClaimLost,
    ConnectionRejected,
    DatabaseUnavailable,
    GeneratorMismatch,
    HeimdallError,
    InvariantViolation,
    NotFound,
    OutsideClaim,
    translate,
)


def test_connect_uses_the_one_policy(db_url):
    with db.Database(db_url, application_name="boundary-test").connect() as conn:
        assert conn.autocommit
        assert conn.execute("SHOW application_name").fetchone()[0] == "boundary-test"
        assert conn.info.get_parameters().get("connect_timeout") == str(db.CONNECT_TIMEOUT_S)
        assert db.one(conn, "schema_present")["present"] is True
    with db.Database(db_url).connect(autocommit=False) as conn:
        assert not conn.autocommit


def test_retry_gives_up_after_the_configured_attempts_with_a_clear_error(pg_server):
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"      # nothing listens there
    retries: list[tuple[int, float]] = []
    t0 = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as exc:
        db.Database(closed, retry=db.Retry(attempts=3, first_delay_s=0.05)).connect(
            on_retry=lambda attempt, delay, err: retries.append((attempt, delay)))
    assert [a for a, _ in retries] == [1, 2] and retries[1][1] == 0.1
    message = str(exc.value)
    assert message.startswith("cannot reach the database after 3 attempts in ")
    assert "Connection refused" in message and "\n" not in message
    assert time.monotonic() - t0 < 5
    # one attempt by default (the CLI): the server's reason, no retry
    with pytest.raises(DatabaseUnavailable, match=r"^cannot reach the database: .*Connection refused"):
        db.Database(closed).connect()
    # a deadline instead of a count (the worker's reconnect)
    t0 = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="attempts in"):
        db.Database(closed).connect(retry=db.Retry(attempts=None, deadline_s=0.5, first_delay_s=0.05))
    assert 0.3 < time.monotonic() - t0 < 5


def test_a_refusal_by_a_running_server_is_not_retried(pg_server):
    missing_db = f"postgresql://postgres@127.0.0.1:{pg_server.port}/no_such_database"
    retries: list[int] = []
    with pytest.raises(HeimdallError) as exc:
        db.Database(missing_db, retry=db.Retry(attempts=5, first_delay_s=0.05)).connect(
            on_retry=lambda attempt, delay, err: retries.append(attempt))
    assert retries == [] and type(exc.value) is ConnectionRejected
    assert str(exc.value) == 'the database server refused the connection: database "no_such_database" does not exist'
    wrong_role = f"postgresql://no_such_role@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(ConnectionRejected, match='role "no_such_role" does not exist'):
        db.Database(wrong_role, retry=db.Retry(attempts=5, first_delay_s=0.05)).connect(
            on_retry=lambda attempt, delay, err: retries.append(attempt))
    assert retries == []


@pytest.mark.parametrize("sqlstate, cls", [("HS001", ClaimLost), ("HS002", ChunkAbandoned),
                                           ("HS003", GeneratorMismatch), ("HS004", OutsideClaim),
                                           ("P0002", NotFound), ("23514", InvariantViolation)])
def test_translate_the_protocols_own_sqlstates(conn, sqlstate, cls):
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'it says %', '{sqlstate}' USING ERRCODE = '{sqlstate}', "
                     "HINT = 'a hint'; END $$")
    err = translate(raised.value)
    assert type(err) is cls and err.sqlstate == sqlstate
    assert str(err) == f"it says {sqlstate} (hint: a hint)"


def test_named_queries_and_copy_come_back_translated(conn):
    with pytest.raises(NotFound):
        db.one(conn, "expand_dataset", dataset_id="00000000-0000-0000-0000-000000000000", n=1)
    with pytest.raises(HeimdallError, match="no query named 'nope'"):
        db.run(conn, "nope")
    conn.execute("CREATE TEMP TABLE heimdall_copy_probe (a int4 CHECK (a > 0))")
    assert db.copy_rows(conn, "heimdall_copy_probe", [("a", "int4")], [(1,), (2,)]) == 2
    with pytest.raises(InvariantViolation) as exc:
        db.copy_rows(conn, "heimdall_copy_probe", [("a", "int4")], [(3,), (-1,)])
    assert exc.value.sqlstate == "23514"
    assert conn.execute("SELECT count(*) FROM pg_temp.heimdall_copy_probe").fetchone()[0] == 2
