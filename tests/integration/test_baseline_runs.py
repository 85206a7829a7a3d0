"""heimdall.record_baseline_run and heimdall.baseline_runs (issue 13): the database side of
`heimdall-synth baseline`. What it refuses, what it stores, who may call it."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.helpers import insert_samples

RECORD = "SELECT heimdall.record_baseline_run(%s, %s::numeric, %s::numeric, %s, %s)"
FIGURES = {"samples": 10, "fraction_solved": 0.9, "overall": {"cep50_m": 120.0}}


def dataset(conn, name="bl", n=10):
    ds = conn.execute("SELECT heimdall.create_dataset(%s, 'feature_based', %s, 3, 0)",
                      (name, Jsonb({"chunk_size": 10}))).fetchone()[0]
    if n:
        conn.execute("SELECT heimdall.reserve_samples(%s, %s)", (ds, n))
        insert_samples(conn, ds, 0, n - 1, iq=False)
    return ds


def test_a_run_is_stored_with_the_datasets_generator_version(conn):
    ds = dataset(conn)
    conn.execute("UPDATE heimdall.synthetic_datasets SET generator_version = 'g-1' WHERE id = %s", (ds,))
    run_id = conn.execute(RECORD, (ds, 0, 9, "solver/1", Jsonb(FIGURES))).fetchone()[0]
    again = conn.execute(RECORD, (ds, 2, 5, "solver/1", Jsonb({"x": 1}))).fetchone()[0]
    assert again > run_id                                   # a history: every call is a new run
    row = conn.execute("SELECT dataset_id, first_idx, last_idx, generator_version, solver_version, figures, "
                       "created_by = session_user FROM heimdall.baseline_runs WHERE id = %s",
                       (run_id,)).fetchone()
    assert row == (ds, 0, 9, "g-1", "solver/1", FIGURES, True)


@pytest.mark.parametrize("args, sqlstate, needle", [
    ((None, 0, 9, "s", {}), "P0002", "does not exist"),
    (("ds", -1, 9, "s", {}), "22023", "first_idx"),
    (("ds", 1.5, 9, "s", {}), "22023", "whole number"),
    (("ds", 5, 4, "s", {}), "22023", "last_idx (4) must be >= first_idx (5)"),
    (("ds", 0, 10, "s", {}), "22023", "not all committed: 10 of 11"),
    (("ds", 0, 9, "", {}), "22023", "solver_version"),
    (("ds", 0, 9, "a\nb", {}), "22023", "solver_version"),
    (("ds", 0, 9, "s", [1, 2]), "22023", "figures must be a JSON object"),
    (("ds", 0, 9, "s", None), "22023", "figures must be a JSON object"),
])
def test_bad_arguments_are_refused_naming_them(conn, args, sqlstate, needle):
    ds = dataset(conn)
    target, first, last, solver, figures = args
    target = ds if target == "ds" else uuid.uuid4()
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(RECORD, (target, first, last, solver, None if figures is None else Jsonb(figures)))
    assert exc.value.sqlstate == sqlstate and needle in str(exc.value), str(exc.value)
    assert conn.execute("SELECT count(*) FROM heimdall.baseline_runs").fetchone()[0] == 0


def test_runs_go_with_their_dataset(conn):
    ds = dataset(conn)
    conn.execute(RECORD, (ds, 0, 9, "s", Jsonb(FIGURES)))
    conn.execute("SELECT heimdall.delete_dataset(%s)", (ds,))
    assert conn.execute("SELECT count(*) FROM heimdall.baseline_runs").fetchone()[0] == 0


@pytest.fixture
def login(conn, db_url):
    made = []

    def _login(member_of: str) -> psycopg.Connection:
        name = f"bl_{uuid.uuid4().hex[:6]}"
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {member_of}')
        c = psycopg.connect(db_url.replace("postgres@", f"{name}@"), autocommit=True)
        made.append((name, c))
        return c

    yield _login
    for name, c in made:
        c.close()
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


def test_admin_records_a_reader_reads_and_nobody_writes_the_table(conn, login):
    ds = dataset(conn)
    admin, reader, worker = login("heimdall_admin"), login("heimdall_reader"), login("heimdall_worker")
    run_id = admin.execute(RECORD, (ds, 0, 9, "s", Jsonb(FIGURES))).fetchone()[0]
    assert reader.execute("SELECT figures FROM heimdall.baseline_runs WHERE id = %s", (run_id,)).fetchone()[0] == FIGURES
    with pytest.raises(pgerr.InsufficientPrivilege):
        reader.execute(RECORD, (ds, 0, 9, "s", Jsonb(FIGURES)))
    with pytest.raises(pgerr.InsufficientPrivilege):
        worker.execute("SELECT * FROM heimdall.baseline_runs")
    for c in (admin, reader):
        with pytest.raises(pgerr.InsufficientPrivilege):
            c.execute("INSERT INTO heimdall.baseline_runs (dataset_id, first_idx, last_idx, solver_version, figures) "
                      "VALUES (%s, 0, 9, 's', '{}')", (ds,))
        with pytest.raises(pgerr.InsufficientPrivilege):
            c.execute("UPDATE heimdall.baseline_runs SET figures = '{}'")
