"""Least privilege against a hostile role (issue: hardening).

Each attack is replayed as a real login role that is a member of heimdall_worker or
heimdall_admin. Where the attack worked on revision 0001, the test also runs it against a
database migrated to 0001 only and shows it succeeding there: the tests can fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.helpers import claim, commit_chunk, fill_pending_chunks, insert_samples
from worker import db

PINNED = "search_path=pg_catalog, heimdall, pg_temp"

# Every function of the public API and the roles that may execute it; everything else in
# the schema is internal and executable by no heimdall role.
READER, WORKER, ADMIN = "heimdall_reader", "heimdall_worker", "heimdall_admin"
PUBLIC_API = {
    "normalize_config(jsonb)": {READER, WORKER, ADMIN},
    "stuck_after_s()": {READER, WORKER, ADMIN},
    "claim_chunk(text,integer,integer,text)": {WORKER, ADMIN},
    "extend_chunk(bigint,uuid,integer)": {WORKER, ADMIN},
    "release_chunk(bigint,uuid)": {WORKER, ADMIN},
    "fail_chunk(bigint,uuid,text,boolean,integer)": {WORKER, ADMIN},
    "begin_chunk_commit(bigint,uuid)": {WORKER, ADMIN},
    "complete_chunk(bigint,uuid,text)": {WORKER, ADMIN},
    "work_in_flight()": {WORKER, ADMIN},
    "create_dataset(text,text,jsonb,numeric,numeric)": {ADMIN},
    "expand_dataset(uuid,numeric)": {ADMIN},
    "reserve_samples(uuid,numeric)": {ADMIN},
    "delete_dataset(uuid)": {ADMIN},
    "pause_request(uuid)": {ADMIN},
    "resume_request(uuid)": {ADMIN},
    "abandon_request(uuid)": {ADMIN},
    "retry_failed_chunks(uuid)": {ADMIN},
    "validate_dataset(uuid,jsonb,integer)": {ADMIN},
    "repair_num_samples(uuid)": {ADMIN},
    "enqueue_repair(uuid,integer,integer,text)": {ADMIN},
    "release_stuck_chunks(uuid,integer)": {ADMIN},
    "repair_queue(uuid)": {ADMIN},
    "record_object_deletion(uuid,text,text[],jsonb)": {ADMIN},
    "mark_gc_done(uuid)": {ADMIN},
    "register_terrain_set(text,jsonb)": {ADMIN},
    "terrain_set(text)": {READER, WORKER, ADMIN},
    "list_terrain_sets()": {READER, ADMIN},
    "split_of(bigint,integer,jsonb)": {READER, ADMIN},
    "sample_split(uuid,integer)": {READER, ADMIN},
    "record_baseline_run(uuid,numeric,numeric,text,jsonb)": {ADMIN},
}


def create(conn, n=10, chunk_size=10, name="ds", kind="iq_raw"):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, 1, %s)",
                        (name, kind, Jsonb({"chunk_size": chunk_size}), n)).fetchone()[0]


def make_db(conn, db_url: str, revision: str) -> str:
    name = f"rev_{revision}_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    url = db_url.rsplit("/", 1)[0] + "/" + name
    db.upgrade(url, revision)
    return url


@pytest.fixture
def login(conn, db_url) -> Iterator:
    """login(role_name, member_of, url=None) -> an autocommit connection as a new login role."""
    made: list[tuple[str, psycopg.Connection]] = []

    def _login(member_of: str, url: str | None = None) -> psycopg.Connection:
        name = f"{member_of.split('_')[1]}_{uuid.uuid4().hex[:6]}"
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {member_of}')
        c = psycopg.connect((url or db_url).replace("postgres@", f"{name}@"), autocommit=True)
        made.append((name, c))
        return c

    yield _login
    for name, c in made:
        c.close()
        for dbname in [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'rev_%%'")]:
            with psycopg.connect(conn.info.dsn.replace(conn.info.dbname, dbname), autocommit=True) as other:
                other.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


def is_superuser(conn, role: str) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]


# ------------------------------------------------------------------ 1. search_path attack
def test_every_function_pins_search_path_with_pg_temp_last(conn):
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig
          FROM pg_proc p WHERE p.pronamespace = 'heimdall'::regnamespace""").fetchall()
    assert len(rows) > 20
    bad = [name for name, _definer, config in rows if PINNED not in (config or [])]
    assert bad == [], f"functions without {PINNED!r}: {bad}"
    definers = {name for name, definer, _ in rows if definer}
    # DEFINER only where a role must act on private tables: never the internal helpers
    assert not definers & {"heimdall.lock_claimed_chunk(bigint,uuid,boolean)", "heimdall.queue_name()",
                           "heimdall.integer_arg(numeric,text,numeric,numeric,text)",
                           "heimdall.prepare_staging()", "heimdall.check_staging(text,regclass)",
                           "heimdall.staged_columns(regclass)", "heimdall.queue_messages()"}


# A hostile role shadows built-in type names in its pg_temp with domains whose CHECK calls
# its own function. PostgreSQL searches pg_temp FIRST for types unless the search_path
# names it; inside a SECURITY DEFINER function that would run evil() as the owner.
ATTACK = """
CREATE FUNCTION pg_temp.evil(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM set_config('attack.ran_as', current_user, false);
    BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $f$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.bool AS pg_catalog.bool CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.uuid AS pg_catalog.uuid CHECK (pg_temp.evil(VALUE));
"""


def run_worker_calls(w: psycopg.Connection, revision: str) -> None:
    """Drive every worker function once (errors are fine: only escalation matters)."""
    if revision == "0001":
        calls = ["SELECT * FROM heimdall.claim_chunk('evil', 30, 5)",
                 "SELECT heimdall.extend_chunk(1, 1, 30)", "SELECT heimdall.release_chunk(1, 1)"]
    else:
        calls = ["SELECT * FROM heimdall.claim_chunk('evil', 30, 5, 'v')",
                 "SELECT heimdall.extend_chunk(1, gen_random_uuid(), 30)",
                 "SELECT heimdall.release_chunk(1, gen_random_uuid())", "SELECT heimdall.work_in_flight()"]
    for sql in calls:
        try:
            w.execute(sql)
        except psycopg.Error:
            pass


def run_admin_calls(a: psycopg.Connection, ds) -> None:
    for sql in ["SELECT heimdall.validate_dataset(%s)", "SELECT heimdall.repair_num_samples(%s)",
                "SELECT heimdall.expand_dataset(%s, 3)", "SELECT heimdall.retry_failed_chunks(%s)",
                "SELECT heimdall.release_stuck_chunks(%s)"]:
        try:
            a.execute(sql, (ds,))
        except psycopg.Error:
            pass


@pytest.mark.parametrize("revision, escalates", [("0001", True), ("head", False)])
@pytest.mark.parametrize("member_of", [WORKER, ADMIN])
def test_pg_temp_shadowing_attack(conn, db_url, login, revision, escalates, member_of):
    url = make_db(conn, db_url, revision)
    with psycopg.connect(url, autocommit=True) as owner:
        ds = create(owner, n=10)
        hostile = login(member_of, url)
        role = hostile.info.user
        hostile.execute(ATTACK)
        run_worker_calls(hostile, revision)
        if member_of == ADMIN:
            run_admin_calls(hostile, ds)
        ran_as = hostile.execute("SELECT current_setting('attack.ran_as', true)").fetchone()[0]
        assert is_superuser(owner, role) is escalates, f"ran_as={ran_as}"
        if not escalates:
            assert ran_as in (None, "", role), f"caller code ran as {ran_as}"
        owner.execute(f'ALTER ROLE "{role}" NOSUPERUSER')


# ------------------------------------------------------------- 2. worker bound to its claim
def test_worker_has_no_table_privileges(conn, login):
    ds = create(conn, n=10)
    w = login(WORKER)
    for sql in ["INSERT INTO heimdall.measurement_features (dataset_id, sample_idx) VALUES (%s, 0)",
                "SELECT * FROM heimdall.generation_chunks WHERE dataset_id = %s",
                "UPDATE heimdall.synthetic_datasets SET num_samples = 0 WHERE id = %s",
                "SELECT pgmq.delete('heimdall_chunks', 1::bigint) FROM heimdall.synthetic_datasets WHERE id = %s"]:
        with pytest.raises(pgerr.InsufficientPrivilege):
            w.execute(sql, (ds,))
    with pytest.raises(pgerr.InsufficientPrivilege):
        w.execute("SELECT pgmq.send('heimdall_chunks', '{}'::jsonb)")
    with pytest.raises(pgerr.InsufficientPrivilege):
        w.execute("SELECT key FROM heimdall.trust_key")


def test_real_worker_role_commits_through_staging(conn, login):
    ds = create(conn, n=20)
    w = login(WORKER)
    assert fill_pending_chunks(w) == 2
    assert conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 20


@pytest.mark.parametrize("forge", ["other_index", "other_dataset", "negative_index"])
def test_staged_row_outside_the_claim_is_refused(conn, login, forge):
    ds = create(conn, n=20)                      # chunks 0..9 and 10..19
    other = create(conn, n=10, name="other")
    w = login(WORKER)
    chunk_id, token, _ds, first, last = claim(w)
    with pytest.raises(psycopg.Error, match="lies outside it") as exc:
        with w.transaction():
            assert w.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token)).fetchone()[0]
            insert_samples(w, ds, first, last, staged=True)
            if forge == "other_index":
                insert_samples(w, ds, last + 1, last + 1, staged=True)
            elif forge == "other_dataset":
                insert_samples(w, other, 0, 0, staged=True)
            else:
                insert_samples(w, ds, -1, -1, staged=True)
            w.execute("SELECT heimdall.complete_chunk(%s, %s, 'test')", (chunk_id, token))
    assert exc.value.sqlstate == "HS004"
    assert conn.execute("SELECT count(*) FROM heimdall.measurement_features").fetchone()[0] == 0
    # the honest commit of the same claim still works, and the real next chunk too
    assert commit_chunk(w, chunk_id, token, ds, first, last)
    assert fill_pending_chunks(w) == 2


def test_foreign_staging_relation_is_refused(conn, login):
    """A worker that creates its own pg_temp.heimdall_stage_* (with a trigger that would run
    as the owner) gets 42501 and its code never runs."""
    create(conn, n=10)
    w = login(WORKER)
    chunk_id, token, *_ = claim(w)
    w.execute("""
        CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN PERFORM set_config('attack.ran_as', current_user, false); RETURN NULL; END $f$;
        CREATE TEMP TABLE heimdall_stage_features (dataset_id uuid, sample_idx int);
        CREATE TRIGGER t AFTER DELETE OR INSERT ON heimdall_stage_features
            FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.evil();""")
    for sql in ("SELECT heimdall.begin_chunk_commit(%s, %s)", "SELECT heimdall.complete_chunk(%s, %s, 'v')"):
        with pytest.raises(pgerr.InsufficientPrivilege, match="not created by heimdall"):
            w.execute(sql, (chunk_id, token))
    assert w.execute("SELECT current_setting('attack.ran_as', true)").fetchone()[0] in (None, "")
    w.execute("DROP TABLE pg_temp.heimdall_stage_features")
    w.execute("CREATE TEMP VIEW heimdall_stage_iq AS SELECT 1 AS x")
    with pytest.raises(pgerr.InsufficientPrivilege):
        w.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token))


def test_no_worker_call_takes_a_message_id(conn):
    """0001's complete_chunk(chunk, msg_id) deleted any message it was given. Now no worker
    function takes a message id: the id comes from the chunk row."""
    args = conn.execute("""
        SELECT p.proname, pg_get_function_arguments(p.oid) FROM pg_proc p
         WHERE p.pronamespace = 'heimdall'::regnamespace
           AND p.proname IN ('extend_chunk', 'release_chunk', 'fail_chunk', 'begin_chunk_commit', 'complete_chunk')
    """).fetchall()
    assert len(args) == 5 and all("msg_id" not in a and "claim_token uuid" in a for _, a in args)


def test_completing_a_done_chunk_touches_no_other_message(conn, login):
    ds = create(conn, n=20)
    w = login(WORKER)
    chunk_id, token, _d, first, last = claim(w)
    assert commit_chunk(w, chunk_id, token, ds, first, last)
    before = conn.execute("SELECT count(*) FROM pgmq.q_heimdall_chunks").fetchone()[0]
    with w.transaction():
        w.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token))
        assert w.execute("SELECT heimdall.complete_chunk(%s, %s, 'test')", (chunk_id, token)).fetchone()[0] is False
    assert conn.execute("SELECT count(*) FROM pgmq.q_heimdall_chunks").fetchone()[0] == before == 1
    assert fill_pending_chunks(w) == 1


# ------------------------------------------------- 4. chunks and messages must agree
def test_chunk_without_message_is_reported_repaired_and_not_waited_for(conn):
    ds = create(conn, n=20)
    msg = conn.execute("SELECT msg_id FROM heimdall.generation_chunks ORDER BY first_idx LIMIT 1").fetchone()[0]
    conn.execute("SELECT pgmq.delete('heimdall_chunks', %s::bigint)", (msg,))
    stray = conn.execute("SELECT pgmq.send('heimdall_chunks', %s)",
                         (Jsonb({"chunk_id": 999, "dataset_id": str(ds), "first_idx": 0, "last_idx": 9}),)).fetchone()[0]
    assert conn.execute("SELECT heimdall.work_in_flight()").fetchone()[0] == 1     # --until-idle won't hang on it
    report = conn.execute("SELECT heimdall.validate_dataset(%s)", (ds,)).fetchone()[0]
    kinds = sorted((i["kind"], i["severity"]) for i in report["issues"])
    assert kinds == [("chunk_without_message", "warning"), ("message_without_chunk", "warning")]
    assert report["status"] == "warning"
    result = conn.execute("SELECT heimdall.repair_queue(%s)", (ds,)).fetchone()[0]
    assert len(result["reenqueued"]) == 1 and result["messages_deleted"] == [stray]
    assert conn.execute("SELECT heimdall.validate_dataset(%s) ->> 'status'", (ds,)).fetchone()[0] == "healthy"
    assert fill_pending_chunks(conn) == 2
    assert conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 20
    assert conn.execute("SELECT action FROM heimdall.audit_log WHERE action = 'repair_queue'").fetchone()


# ------------------------------------------------------- 5. num_samples guard bypass
BYPASS = """
CREATE TEMP TABLE poke (x int);
CREATE FUNCTION pg_temp.poke() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    UPDATE heimdall.synthetic_datasets SET num_samples = 12345;
    RETURN NULL;
END $f$;
CREATE TRIGGER poke AFTER INSERT ON poke FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.poke();
"""


@pytest.mark.parametrize("revision, bypassed", [("0001", True), ("head", False)])
def test_num_samples_guard_cannot_be_met_from_a_trigger(conn, db_url, login, revision, bypassed):
    url = make_db(conn, db_url, revision)
    with psycopg.connect(url, autocommit=True) as owner:
        ds = create(owner, n=0)
        owner.execute("SELECT heimdall.expand_dataset(%s, 5)", (ds,))
        insert_samples(owner, ds, 0, 4)
        a = login(ADMIN, url)
        a.execute(BYPASS)
        if bypassed:
            a.execute("INSERT INTO poke VALUES (1)")
        else:
            with pytest.raises(pgerr.CheckViolation, match="num_samples can only equal the number of feature rows"):
                a.execute("INSERT INTO poke VALUES (1)")
            with pytest.raises(pgerr.CheckViolation):     # a guessed marker does not help
                with a.transaction():
                    a.execute("SELECT set_config('heimdall.count_key', 'guess', true)")
                    a.execute("UPDATE heimdall.synthetic_datasets SET num_samples = 12345")
        got = owner.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
        assert got == (12345 if bypassed else 5)


# --------------------------------------------------------------- 6. grants per role
def test_each_role_executes_exactly_its_functions(conn):
    rows = conn.execute("""
        SELECT replace(p.oid::regprocedure::text, 'heimdall.', ''),
               has_function_privilege('heimdall_reader', p.oid, 'EXECUTE'),
               has_function_privilege('heimdall_worker', p.oid, 'EXECUTE'),
               has_function_privilege('heimdall_admin', p.oid, 'EXECUTE'),
               coalesce(p.proacl::text, '') ~ '(^|[{,])=X'
          FROM pg_proc p WHERE p.pronamespace = 'heimdall'::regnamespace""").fetchall()
    names = {r[0] for r in rows}
    assert set(PUBLIC_API) <= names, set(PUBLIC_API) - names
    for name, reader, worker, admin, public in rows:
        got = {r for r, ok in ((READER, reader), (WORKER, worker), (ADMIN, admin)) if ok}
        assert got == PUBLIC_API.get(name, set()), name
        assert not public, f"{name} is executable by PUBLIC"


def test_a_function_added_later_is_not_public(conn):
    conn.execute("CREATE FUNCTION heimdall.later_addition() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    assert conn.execute("SELECT has_function_privilege('public', 'heimdall.later_addition()', 'EXECUTE')"
                        ).fetchone()[0] is False


@pytest.mark.parametrize("internal", ["create_request(uuid,text,integer,integer)", "enqueue_chunks(bigint[])",
                                      "prepare_staging()", "queue_messages()"])
def test_admin_cannot_call_internal_functions(conn, login, internal):
    ds = create(conn, n=0)
    a = login(ADMIN)
    call = {"create_request(uuid,text,integer,integer)": ("SELECT heimdall.create_request(%s, 'expand', 0, 5000)", (ds,)),
            "enqueue_chunks(bigint[])": ("SELECT heimdall.enqueue_chunks(ARRAY[1]::bigint[])", None),
            "prepare_staging()": ("SELECT heimdall.prepare_staging()", None),
            "queue_messages()": ("SELECT * FROM heimdall.queue_messages()", None)}[internal]
    with pytest.raises(pgerr.InsufficientPrivilege):
        a.execute(*call)


def test_admin_audit_and_gc_bookkeeping_through_functions(conn, login):
    ds = create(conn, n=0, name="gone")
    conn.execute("SELECT heimdall.delete_dataset(%s)", (ds,))
    a = login(ADMIN)
    with pytest.raises(pgerr.InsufficientPrivilege):
        a.execute("INSERT INTO heimdall.audit_log (action) VALUES ('forged')")
    audit_id = a.execute("SELECT heimdall.record_object_deletion(NULL, 'gc', ARRAY['datasets/x/iq/a.npy'], '{}')"
                         ).fetchone()[0]
    assert conn.execute("SELECT actor, detail ->> 'removed' FROM heimdall.audit_log WHERE id = %s",
                        (audit_id,)).fetchone() == (a.info.user, "1")
    assert a.execute("SELECT heimdall.mark_gc_done(%s)", (ds,)).fetchone()[0] is True
    assert a.execute("SELECT heimdall.mark_gc_done(%s)", (ds,)).fetchone()[0] is False
    with pytest.raises(psycopg.Error) as exc:
        a.execute("SELECT heimdall.record_object_deletion(NULL, 'drop_table', ARRAY['k'], '{}')")
    assert exc.value.sqlstate == "22023"


def test_reader_cannot_see_claim_tokens(conn, login):
    create(conn, n=10)
    r = login(READER)
    assert r.execute("SELECT count(*) FROM heimdall.generation_chunks").fetchone()[0] == 1
    assert r.execute("SELECT state FROM heimdall.generation_chunks").fetchone()[0] == "pending"
    with pytest.raises(pgerr.InsufficientPrivilege):
        r.execute("SELECT claim_token FROM heimdall.generation_chunks")


# --------------------------------------------------------- 8. names and references
@pytest.mark.parametrize("name", ["a\nb", "tab\there", "\x1b[31mred", "6f1c0d6e-6bd4-4b5e-9a43-5c8a2f7e8a10",
                                  "{6F1C0D6E-6BD4-4B5E-9A43-5C8A2F7E8A10}", "6f1c0d6e6bd44b5e9a435c8a2f7e8a10"])
def test_names_that_cannot_be_printed_or_read_as_uuid_are_refused(conn, login, name):
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw')", (name,))
    assert exc.value.sqlstate == "22023"
    ds = create(conn, n=0, name="fine")
    a = login(ADMIN)
    with pytest.raises(pgerr.CheckViolation):       # a rename cannot sneak it in either
        a.execute("UPDATE heimdall.synthetic_datasets SET name = %s WHERE id = %s", (name, ds))


# ------------------------------------------------------------ 10. limits near int4 max
def test_expand_and_reserve_agree_near_the_largest_index(conn):
    ds = create(conn, n=0, chunk_size=100)
    conn.execute("UPDATE heimdall.synthetic_datasets SET next_idx = 2147483647 - 150 WHERE id = %s", (ds,))
    req = conn.execute("SELECT heimdall.expand_dataset(%s, 150)", (ds,)).fetchone()[0]   # up to 2147483646
    assert conn.execute("SELECT max(last_idx) FROM heimdall.generation_chunks WHERE request_id = %s",
                        (req,)).fetchone()[0] == 2147483646
    for fn in ("expand_dataset", "reserve_samples"):
        with pytest.raises(psycopg.Error, match="largest sample index 2147483646") as exc:
            conn.execute(f"SELECT heimdall.{fn}(%s, 1)", (ds,))
        assert exc.value.sqlstate == "22003"


def test_one_request_creates_a_bounded_number_of_chunks(conn):
    ds = create(conn, n=0, chunk_size=1)
    with pytest.raises(psycopg.Error, match="at most 100000 per request") as exc:
        conn.execute("SELECT heimdall.expand_dataset(%s, 100001)", (ds,))
    assert exc.value.sqlstate == "22003"
    assert conn.execute("SELECT count(*) FROM heimdall.generation_chunks").fetchone()[0] == 0


@pytest.mark.parametrize("sql, sqlstate", [
    ("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1.5)", "22023"),
    ("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 9223372036854775808)", "22023"),
    ("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', -1)", "22023"),
    ("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1, 2.5)", "22023"),
    ("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1, 2147483648)", "22003"),
    ("SELECT heimdall.expand_dataset(gen_random_uuid(), 1.5)", "22023"),
    ("SELECT heimdall.reserve_samples(gen_random_uuid(), 2147483648)", "22003"),
])
def test_seeds_and_counts_get_clear_errors(conn, sql, sqlstate):
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(sql)
    assert exc.value.sqlstate == sqlstate, exc.value
