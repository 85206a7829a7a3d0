"""sql/ (the current state) and `alembic upgrade head` build the same schema; the CLI
migrates up, down to base and up again on one database."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.helpers import fill_pending_chunks, insert_samples
from worker import db

FINGERPRINT = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'heimdall' AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'heimdall'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'heimdall' ORDER BY 1""",
    "triggers": """
        SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
         WHERE c.relnamespace = 'heimdall'::regnamespace AND NOT t.tgisinternal ORDER BY 1""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text
          FROM pg_proc p WHERE p.pronamespace = 'heimdall'::regnamespace ORDER BY 1""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'heimdall' ORDER BY 1""",
    "privileges": """
        SELECT relname, relkind, relacl::text FROM pg_class
         WHERE relnamespace = 'heimdall'::regnamespace ORDER BY 1""",
    "comments": """
        SELECT objoid::regclass::text, objsubid, description FROM pg_description d
          JOIN pg_class c ON c.oid = d.objoid WHERE c.relnamespace = 'heimdall'::regnamespace
         ORDER BY 1, 2""",
    "column_privileges": """
        SELECT a.attrelid::regclass::text, a.attname, a.attacl::text FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relnamespace = 'heimdall'::regnamespace AND a.attacl IS NOT NULL ORDER BY 1, 2""",
    "default_privileges": """
        SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, defaclacl::text
          FROM pg_default_acl ORDER BY 1, 2, 3""",
    "config_keys": "SELECT * FROM heimdall.config_keys ORDER BY key",
    "queues": "SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta ORDER BY 1",
}


def fingerprint(url: str) -> dict[str, list]:
    with psycopg.connect(url) as c:
        return {name: c.execute(sql).fetchall() for name, sql in FINGERPRINT.items()}


def make_db(conn: psycopg.Connection, name: str, base_url: str) -> str:
    conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def test_sql_dir_and_alembic_head_build_the_same_schema(conn, db_url):
    from_sql = make_db(conn, "from_sql", db_url)
    from_alembic = make_db(conn, "from_alembic", db_url)
    with psycopg.connect(from_sql) as c:
        db.build_from_sql(c)
    db.upgrade(from_alembic)
    a, b = fingerprint(from_sql), fingerprint(from_alembic)
    assert a["functions"] and a["triggers"] and a["views"] and a["config_keys"]
    for key in FINGERPRINT:
        assert a[key] == b[key], f"{key} differ between sql/ and alembic head: run scripts/freeze-revision"


def test_released_revisions_never_read_live_files():
    for path in (db.ALEMBIC_DIR / "versions").glob("*.py"):
        text = path.read_text()
        assert "sql_build_files" not in text and "SQL_DIR" not in text and '"sql"' not in text, path


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEIMDALL_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_upgrade_downgrade_base_upgrade(conn, db_url):
    url = make_db(conn, "cli_migrations", db_url)
    r = run_cli("db", "upgrade", url=url)
    assert r.returncode == 0, r.stderr
    with psycopg.connect(url, autocommit=True) as c:
        ds = c.execute("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1, 10)").fetchone()[0]
        assert ds is not None
    r = run_cli("db", "downgrade", "base", url=url)
    assert r.returncode == 0, r.stderr
    with psycopg.connect(url) as c:
        assert c.execute("SELECT to_regnamespace('heimdall')").fetchone()[0] is None
        assert c.execute("SELECT count(*) FROM pgmq.meta WHERE queue_name = 'heimdall_chunks'").fetchone()[0] == 0
    r = run_cli("db", "upgrade", url=url)
    assert r.returncode == 0, r.stderr
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM heimdall.synthetic_datasets").fetchone()[0] == 0
        c.execute("SELECT heimdall.create_dataset('x', 'iq_raw', '{}', 1, 10)")
        assert c.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 1


def test_cli_upgrade_without_database_names_the_setting(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HEIMDALL_DATABASE_URL"}
    r = subprocess.run([sys.executable, "-m", "heimdall_synth", "db", "upgrade"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "HEIMDALL_DATABASE_URL" in r.stderr and "Traceback" not in r.stderr


def test_0001_replaceable_is_cut_from_the_released_0001():
    versions = db.ALEMBIC_DIR / "versions"
    released = db.frozen_sections((versions / "0001_initial.sql").read_text())
    replay = db.frozen_sections((versions / "0001_replaceable.sql").read_text().split("\n\n", 1)[1])
    expected = [k for k in released if k.startswith("sql/functions/")] + [
        "sql/triggers.sql", "sql/views.sql", "sql/grants.sql"]
    assert list(replay) == expected
    assert all(replay[k].strip() == released[k].strip() for k in expected)


def test_every_unreleased_revision_replays_the_live_replaceable_set():
    """The newest revision's frozen replaceable set is sql/ now (scripts/freeze-revision)."""
    newest = sorted((db.ALEMBIC_DIR / "versions").glob("*_replaceable.sql"))[-1]
    assert newest.read_text() == db.replaceable_sql(), f"run scripts/freeze-revision {newest.name[:4]}"


# Data written through 0001's API, as its workers did (old signatures), so an upgrade is
# tested on a database that holds what a real one holds.
def _fill_0001(c: psycopg.Connection) -> dict:
    ds = c.execute("SELECT heimdall.create_dataset('old', 'iq_raw', '{\"chunk_size\": 5}', 7, 15)").fetchone()[0]
    fb = c.execute("SELECT heimdall.create_dataset('old-fb', 'feature_based', '{}', 8, 3)").fetchone()[0]
    for _ in range(2):       # two of old's three chunks done; its third and old-fb's stay pending
        chunk_id, msg_id, d, first, last = c.execute(
            "SELECT chunk_id, msg_id, dataset_id, first_idx, last_idx FROM heimdall.claim_chunk('w', 60, 5) "
            "WHERE true").fetchone()
        with c.transaction():
            c.execute("SELECT heimdall.begin_chunk_commit(%s)", (chunk_id,))
            insert_samples(c, d, first, last, iq=(d == ds))
            c.execute("SELECT heimdall.complete_chunk(%s, %s, 'gen-1')", (chunk_id, msg_id))
    c.execute("SELECT heimdall.validate_dataset(%s)", (ds,))
    return {"ds": ds, "fb": fb}


# Columns 0003 and 0004 appended to the sample tables (issues 11, 12): NULL in rows written before
# it (checked below), left out of the row text so a row compares across upgrade and downgrade.
ADDED_0003 = ("'{tx_height_agl_m,rx_height_agl_m,path_loss_median_db,excess_delay_s,tx_antenna_gain_db,"
              "rx_antenna_gain_db,polarization_loss_db,tdoa_std_s,true_tx_freq_offset_hz,"
              "true_clock_offset_s,"
              # revision 0004 (issue 12 items 4 and 6; synthetic_iq_samples: scale_mw)
              "clipped_fraction,true_signal_start_s,true_signal_stop_s,ctcss_hz,scale_mw}'::text[]")


def _snapshot(c: psycopg.Connection) -> dict:
    tables = ["synthetic_datasets", "measurement_features", "synthetic_iq_samples", "generation_requests",
              "audit_log", "deleted_datasets", "dead_letters"]   # config_keys: compared by fingerprint
    row = f"(to_jsonb(x) - {ADDED_0003})::text"
    snap = {t: c.execute(f"SELECT md5(string_agg({row}, '|' ORDER BY {row})), count(*) "
                         f"FROM heimdall.{t} x").fetchone() for t in tables}
    snap["chunks"] = c.execute("SELECT id, dataset_id, kind, first_idx, last_idx, state, attempts, msg_id "
                               "FROM heimdall.generation_chunks ORDER BY id").fetchall()
    snap["queue"] = c.execute("SELECT msg_id, message FROM pgmq.q_heimdall_chunks ORDER BY msg_id").fetchall()
    return snap


def test_upgrade_a_0001_database_holding_data_then_downgrade(conn, db_url):
    old = make_db(conn, "with_data", db_url)
    fresh_head = make_db(conn, "fresh_head", db_url)
    fresh_0001 = make_db(conn, "fresh_0001", db_url)
    db.upgrade(old, "0001")
    db.upgrade(fresh_0001, "0001")
    with psycopg.connect(fresh_head) as c:
        db.build_from_sql(c)
    with psycopg.connect(old, autocommit=True) as c:
        ids = _fill_0001(c)
        before = _snapshot(c)
        assert before["measurement_features"][1] == 10 and len(before["queue"]) == 2

    db.upgrade(old, "head")
    a, b = fingerprint(old), fingerprint(fresh_head)
    for key in FINGERPRINT:
        assert a[key] == b[key], f"{key}: an upgraded 0001 database differs from a fresh build of sql/"
    with psycopg.connect(old, autocommit=True) as c:
        assert _snapshot(c) == before                 # every row kept, and its meaning
        assert c.execute("SELECT count(*) FROM heimdall.measurement_features WHERE num_nonnulls("
                         "tx_height_agl_m, rx_height_agl_m, path_loss_median_db, excess_delay_s, tx_antenna_gain_db, "
                         "rx_antenna_gain_db, polarization_loss_db, tdoa_std_s, true_tx_freq_offset_hz, "
                         "true_clock_offset_s) > 0"
                         ).fetchone()[0] == 0
        assert c.execute("SELECT heimdall.validate_dataset(%s) ->> 'status'", (ids["ds"],)).fetchone()[0] == "healthy"
        # the chunk left pending by 0001 is finished by a worker of the new protocol
        assert fill_pending_chunks(c, generator_version="gen-1") == 2
        assert c.execute("SELECT num_samples FROM heimdall.synthetic_datasets WHERE id = %s",
                         (ids["ds"],)).fetchone()[0] == 15
        after_work = _snapshot(c)

    db.downgrade(old, "0001")
    a, b = fingerprint(old), fingerprint(fresh_0001)
    for key in FINGERPRINT:
        assert a[key] == b[key], f"{key}: a downgraded database differs from a fresh 0001"
    with psycopg.connect(old, autocommit=True) as c:
        got = _snapshot(c)
        for t in ("synthetic_datasets", "measurement_features", "synthetic_iq_samples"):
            assert got[t] == after_work[t], t


def test_committed_default_config_equals_the_database(conn):
    """Unit tests and the RF benchmark run without PostgreSQL on worker/default_config.json;
    the database is the home of defaults: regenerate with scripts/dump-default-config."""
    from worker.config import default_config_snapshot
    assert conn.execute("SELECT heimdall.normalize_config('{}')").fetchone()[0] == default_config_snapshot()


def test_downgrade_below_0004_refuses_while_ci16_rows_exist(conn, db_url):
    """0003's IQ table knows complex64 only: a downgrade below 0004 with ci16_le pointer rows
    fails naming them (55000) and changes nothing; without them it goes through."""
    import uuid

    url = make_db(conn, "ci16_downgrade", db_url)
    db.upgrade(url, "head")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SET session_replication_role = replica")      # the row's CHECKs alone decide
        c.execute("INSERT INTO heimdall.synthetic_iq_samples (dataset_id, sample_idx, object_key, byte_offset,"
                  " byte_length, sha256, shape, dtype, sample_rate_hz, scale_mw)"
                  " VALUES (%s, 0, 'k', 0, 1200, %s, '{3,100}', 'ci16_le', 50000, '{1e-12,1e-12,0}')",
                  (str(uuid.uuid4()), "0" * 64))
    with pytest.raises(Exception, match="ci16_le IQ rows exist"):
        db.downgrade(url, "0003")
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0004"
        assert c.execute("SELECT count(*) FROM heimdall.synthetic_iq_samples WHERE dtype = 'ci16_le'"
                         ).fetchone()[0] == 1
        c.execute("DELETE FROM heimdall.synthetic_iq_samples")
    db.downgrade(url, "0003")
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"
        assert c.execute("SELECT count(*) FROM heimdall.config_keys WHERE key = 'iq_dtype'").fetchone()[0] == 0
