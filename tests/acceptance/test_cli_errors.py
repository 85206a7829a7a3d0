"""Issue 9, items 8 and 10 (CLI side): references that cannot hit the wrong dataset, names
printed safely, and a clear answer to every user mistake.

Every case runs the real CLI as a subprocess and checks what a person (or a script) sees:
the exit code (0 ok, 1 error, 2 usage, 3 validate warning, 4 validate critical), exactly
one line on stderr (or, with --json, one JSON object on stdout: error, sqlstate,
exit_code) and never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.acceptance.conftest import worker_env

NO_SCHEMA = "error: the database has no heimdall schema (or an old one): run `heimdall-synth db upgrade`"
SMALL = {"chunk_size": 5, "duration_ms": 20}


@pytest.fixture
def cli(db_url, s3_server, bucket):
    def _run(*args: str, url: str | None = None, module: str = "heimdall_synth", timeout: float = 120,
             **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                              env=worker_env(url or db_url, s3_server, bucket, **env), timeout=timeout)
    return _run


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stdout


def one_line(r: subprocess.CompletedProcess, code: int, *texts: str) -> str:
    """Exit ``code``, exactly one line on stderr holding every text, no traceback."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and r.stderr.endswith("\n"), r.stderr
    assert lines[0].startswith("error: "), r.stderr
    for text in texts:
        assert text in lines[0], (text, r.stderr)
    return lines[0]


def json_error(r: subprocess.CompletedProcess, code: int, sqlstate: str | None, *texts: str) -> dict:
    """--json: one JSON object on stdout with error, sqlstate and exit_code; nothing on stderr."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stderr == "", r.stderr
    obj = json.loads(r.stdout)
    assert set(obj) == {"error", "sqlstate", "exit_code"}, obj
    assert obj["exit_code"] == code and obj["sqlstate"] == sqlstate, obj
    assert "\n" not in obj["error"]
    for text in texts:
        assert text in obj["error"], (text, obj)
    return obj


def create(conn: psycopg.Connection, name: str, n: int = 0, dataset_type: str = "feature_based") -> str:
    return str(conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, 7, %s)",
                            (name, dataset_type, Jsonb(SMALL), n)).fetchone()[0])


def rename_as_legacy(conn: psycopg.Connection, dataset_id: str, name: str) -> None:
    """Give a dataset a name today's CHECK refuses, as a database from before that CHECK
    may hold: drop the CHECK (superuser), rename with triggers off."""
    conn.execute("ALTER TABLE heimdall.synthetic_datasets "
                 "DROP CONSTRAINT IF EXISTS synthetic_datasets_name_printable")
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.synthetic_datasets SET name = %s WHERE id = %s", (name, dataset_id))


def names(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM heimdall.synthetic_datasets ORDER BY name")]


@pytest.fixture
def empty_db_url(conn) -> str:
    """A database on the same server without the heimdall schema (never upgraded)."""
    name = f"empty_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE DATABASE {name}")
    info = conn.info
    yield f"postgresql://{info.user}@{info.host}:{info.port}/{name}"
    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ------------------------------------------------------------------ references (item 8)
def test_a_reference_that_reads_as_a_uuid_is_the_id_never_a_name(cli, conn):
    alpha = create(conn, "alpha")
    beta = create(conn, "beta")
    for form in (alpha, alpha.upper(), alpha.replace("-", ""), "{" + alpha + "}"):
        rename_as_legacy(conn, beta, form)          # beta is *named* like alpha's id
        shown = json.loads(ok(cli("dataset", "show", form, "--json")))
        assert shown["dataset"]["id"] == alpha, (form, shown["dataset"])
    ok(cli("dataset", "delete", alpha.upper(), "--yes"))
    assert names(conn) == ["{" + alpha + "}"]           # beta (so named) is still there


def test_a_uuid_of_no_dataset_is_not_found_even_if_a_dataset_has_that_name(cli, conn):
    beta = create(conn, "beta")
    ghost = str(uuid.uuid4())
    rename_as_legacy(conn, beta, ghost)
    one_line(cli("dataset", "show", ghost), 1, f"dataset {ghost!r} does not exist")
    one_line(cli("dataset", "delete", ghost, "--yes"), 1, "does not exist")
    one_line(cli("validate", ghost.replace("-", "")), 1, "does not exist")
    assert names(conn) == [ghost]
    # and a name is still a name
    create(conn, "gamma")
    assert json.loads(ok(cli("dataset", "show", "gamma", "--json")))["dataset"]["name"] == "gamma"


def test_control_characters_in_names_and_messages_are_printed_escaped(cli, conn):
    ds = create(conn, "plain")
    evil = "evil\n\x1b[31mred\ttab\x9b"
    rename_as_legacy(conn, ds, evil)
    escaped = "evil\\n\\x1b[31mred\\ttab\\x9b"
    for args in (("dataset", "list"), ("dataset", "show", ds), ("status",)):
        out = ok(cli(*args))
        assert not any(c in out for c in "\x1b\t\x9b"), (args, out)
    listing = ok(cli("dataset", "list")).splitlines()
    assert len(listing) == 2 and escaped in listing[1], listing
    assert escaped in ok(cli("dataset", "show", ds))
    # --json keeps the real name (JSON escapes it)
    assert json.loads(ok(cli("dataset", "show", ds, "--json")))["dataset"]["name"] == evil
    # errors that carry a name or a value: one line, escaped
    line = one_line(cli("dataset", "delete", ds), 1, "without --yes")
    assert "\x1b" not in line
    line = one_line(cli("dataset", "show", "ghost\n\x1b[2J"), 1, "does not exist")
    assert "\x1b" not in line
    line = one_line(cli("status", "--request", "x\n\x1b[2Jy"), 1, "uuid")   # the server echoes the value
    assert "\x1b" not in line and "\\x1b" in line
    one_line(cli("dataset", "create", "a\nb", "--type", "iq_raw"), 1, "control characters")


# ------------------------------------------------------------------ environment (item 10)
WORKER_ENV_GARBAGE = [("HEIMDALL_WORKER_VT_S", "abc"), ("HEIMDALL_WORKER_VT_S", "1.5"),
                      ("HEIMDALL_WORKER_VT_S", "0"), ("HEIMDALL_WORKER_VT_S", "99999999999"),
                      ("HEIMDALL_WORKER_MAX_READS", "many"), ("HEIMDALL_WORKER_MAX_READS", "-1")]


def test_bad_worker_env_fails_the_worker_naming_it_and_breaks_nothing_else(cli):
    garbage = {"HEIMDALL_WORKER_VT_S": "abc", "HEIMDALL_WORKER_MAX_READS": "many"}
    assert ok(cli("dataset", "list", **garbage)).startswith("(none)")
    for var, value in WORKER_ENV_GARBAGE:
        one_line(cli("worker", "run", "--until-idle", **{var: value}), 1, var, repr(value))
    # python -m worker: the same settings from the environment only, the same one-line error
    one_line(cli(module="worker", HEIMDALL_WORKER_UNTIL_IDLE="1", **garbage), 1, "HEIMDALL_WORKER_")
    one_line(cli(module="worker", HEIMDALL_WORKER_UNTIL_IDLE="maybe"), 1, "HEIMDALL_WORKER_UNTIL_IDLE", "'maybe'")
    one_line(cli("--until-idle", module="worker"), 2, "takes no arguments", "heimdall-synth worker run")
    json_error(cli("worker", "run", "--until-idle", "--json", HEIMDALL_WORKER_VT_S="abc"), 1, None,
               "HEIMDALL_WORKER_VT_S")
    # the flags override the variables, which are then never read
    ok(cli("worker", "run", "--until-idle", "--vt", "5", "--max-reads", "2", **garbage))
    for flag, value in (("--vt", "abc"), ("--max-reads", "0"), ("--poll", "-1"), ("--max-chunks", "x")):
        r = cli("worker", "run", "--until-idle", flag, value)              # a bad flag: usage
        assert r.returncode == 2 and flag in r.stderr and "Traceback" not in r.stderr, r.stderr


GRACE_GARBAGE = ["abc", "-1", "nan", "inf", "1e30"]


def test_bad_gc_grace_env_fails_gc_naming_it_and_breaks_nothing_else(cli, store):
    ok(cli("dataset", "list", HEIMDALL_GC_GRACE_S="abc"))
    ok(cli("status", HEIMDALL_GC_GRACE_S="abc"))
    for value in GRACE_GARBAGE:
        one_line(cli("gc", "--dry-run", HEIMDALL_GC_GRACE_S=value), 1, "HEIMDALL_GC_GRACE_S", repr(value))
    json_error(cli("gc", "--dry-run", "--json", HEIMDALL_GC_GRACE_S="abc"), 1, None, "HEIMDALL_GC_GRACE_S")
    out = ok(cli("gc", "--dry-run", "--grace", "10", "--json", HEIMDALL_GC_GRACE_S="abc"))
    assert json.loads(out)["dry_run"] is True
    for value in ("nan", "-1"):
        r = cli("gc", "--dry-run", "--grace", value)           # a bad flag is a usage error
        assert r.returncode == 2 and "--grace" in r.stderr and "Traceback" not in r.stderr


def test_good_env_values_are_used(cli, conn, store):
    create(conn, "queued", n=5)
    out = ok(cli("gc", "--dry-run", "--json", HEIMDALL_GC_GRACE_S="0"))
    assert json.loads(out)["dry_run"] is True
    ok(cli("worker", "run", "--until-idle", HEIMDALL_WORKER_VT_S="30", HEIMDALL_WORKER_MAX_READS="3"))
    assert conn.execute("SELECT num_samples FROM heimdall.synthetic_datasets").fetchone()[0] == 5


# ------------------------------------------------------------------ files, migrations, schema
def test_unwritable_out_is_one_line_for_export_and_plot(cli, conn, tmp_path):
    create(conn, "flat", n=10)
    ok(cli("worker", "run", "--until-idle"))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "flat").write_text("a file where the export directory would go")
    for out in (a_file, a_file / "below", taken):
        one_line(cli("export", "flat", "--out", str(out)), 1, "--out", str(out))
        one_line(cli("plot", "flat", "--out", str(out)), 1, "--out", str(out))
        json_error(cli("export", "flat", "--out", str(out), "--json"), 1, None, "--out")
    ok(cli("export", "flat", "--out", str(tmp_path / "fine")))


@pytest.mark.parametrize("action", ["downgrade", "upgrade"])
def test_unknown_migration_revision_is_one_line(cli, conn, action):
    one_line(cli("db", action, "garbage"), 1, "garbage")
    json_error(cli("db", action, "garbage", "--json"), 1, None, "garbage")
    assert conn.execute("SELECT to_regproc('heimdall.create_dataset') IS NOT NULL").fetchone()[0]


@pytest.mark.parametrize("args, sqlstate", [
    (("dataset", "list"), "42P01"),
    (("dataset", "show", "x"), "42P01"),
    (("dataset", "create", "x", "--type", "iq_raw"), "3F000"),
    (("config", "keys"), "42P01"),
    (("status",), "42P01"),
    (("validate", "x"), "42P01"),
    (("gc", "--dry-run"), "42P01"),
])
def test_database_without_the_schema_says_so(cli, store, empty_db_url, args, sqlstate):
    line = one_line(cli(*args, url=empty_db_url), 1)
    assert line == NO_SCHEMA
    json_error(cli(*args, "--json", url=empty_db_url), 1, sqlstate, "heimdall-synth db upgrade")


def test_worker_on_a_database_without_the_schema_says_so(cli, empty_db_url):
    one_line(cli("worker", "run", "--until-idle", url=empty_db_url), 1, "heimdall-synth db upgrade")


def test_an_old_schema_says_so(cli, conn, store, empty_db_url):
    from worker import db

    db.upgrade(empty_db_url, "0001")          # the first release: no record_object_deletion yet
    store.put("datasets/00000000-0000-0000-0000-000000000001/iq/stray.npy", b"stray")
    assert one_line(cli("gc", "--grace", "0", url=empty_db_url), 1) == NO_SCHEMA
    assert [o.key for o in store.list("datasets/")] == ["datasets/00000000-0000-0000-0000-000000000001/iq/stray.npy"]


def test_a_missing_object_in_a_current_schema_is_not_blamed_on_the_schema(cli, conn):
    conn.execute("DROP VIEW heimdall.request_progress CASCADE")      # damaged, but at head
    line = one_line(cli("status"), 1, "heimdall.request_progress", "does not exist")
    assert "db upgrade" not in line


# ------------------------------------------------------------------ exit codes
def test_validate_exit_codes_are_distinct_from_errors(cli, conn, store):
    ds = create(conn, "victim", n=10, dataset_type="iq_raw")
    ok(cli("worker", "run", "--until-idle"))
    r = cli("validate", "victim")
    assert r.returncode == 0 and "HEALTHY" in r.stdout, (r.returncode, r.stdout, r.stderr)
    store.put(f"datasets/{ds}/iq/stray.bin", b"junk")                   # orphan object: warning
    r = cli("validate", "victim")
    assert r.returncode == 3 and "WARNING" in r.stdout, (r.returncode, r.stdout, r.stderr)
    r = cli("validate", "victim", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["status"] == "warning"
    with conn.transaction():                                            # an IQ row lost: critical
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("DELETE FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s AND sample_idx = 3",
                      (ds,))
    r = cli("validate", ds)
    assert r.returncode == 4 and "CRITICAL" in r.stdout, (r.returncode, r.stdout, r.stderr)
    r = cli("validate", ds, "--json")
    assert r.returncode == 4 and json.loads(r.stdout)["status"] == "critical"
    one_line(cli("validate", "nope"), 1, "does not exist")                # an error is 1, never 3/4
    assert cli("validate").returncode == 2                                # usage
    help_text = ok(cli("--help"))
    assert "3" in help_text and "4" in help_text and "critical" in help_text


# ------------------------------------------------------------------ --json errors
def test_json_errors_are_one_object_on_stdout(cli, conn):
    json_error(cli("dataset", "show", "ghost", "--json"), 1, None, "dataset 'ghost' does not exist")
    json_error(cli("--json", "dataset", "show", "ghost"), 1, None, "does not exist")
    json_error(cli("dataset", "create", "x", "--type", "iq_raw", "--config", '{"max_gdop": 0}', "--json"),
               1, "22023", "max_gdop")
    create(conn, "dup")
    json_error(cli("dataset", "create", "dup", "--type", "iq_raw", "--json"), 1, "23505", "dup")
    json_error(cli("dataset", "create", "x", "--type", "iq_raw", "--config", "{nope", "--json"), 1, None,
               "--config is not valid JSON")
    json_error(cli("dataset", "list", "--json", url="postgresql://nobody@127.0.0.1:1/nowhere"), 1, None,
               "cannot reach the database")
    obj = json_error(cli("dataset", "expand", "dup", "many", "--json"), 2, None, "many")   # usage
    assert "invalid int value" in obj["error"]
    json_error(cli("frobnicate", "--json"), 2, None, "frobnicate")
    # without --json the same mistakes are one line on stderr
    one_line(cli("dataset", "create", "dup", "--type", "iq_raw"), 1, "dup")
