"""sql/ (the current state) and `alembic upgrade head` build the same schema; the CLI
migrates up, down to base and up again on one database."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

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
        assert a[key] == b[key], f"{key} differ between sql/ and alembic head: run scripts/freeze-sql"


def test_released_revisions_never_read_live_files():
    for path in (db.ALEMBIC_DIR / "versions").glob("*.py"):
        text = path.read_text()
        assert "sql_build_files" not in text and "SQL_DIR" not in text and '"sql"' not in text, path


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEIMDALL_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env,
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
    r = subprocess.run([sys.executable, "-m", "worker.cli", "db", "upgrade"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "HEIMDALL_DATABASE_URL" in r.stderr and "Traceback" not in r.stderr
