"""Database plumbing: connections, the SQL build order, pgmq installation, migrations.

The SQL in ``sql/`` is the current state of the schema. ``alembic/`` applies frozen,
versioned copies of it (an old revision never reads live files). ``build_from_sql``
builds a database straight from ``sql/``; a test asserts both paths give the same schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

_PACKAGE_DIR = Path(__file__).resolve().parent


def _schema_dir(in_wheel: str, in_repo: str) -> Path:
    """sql/ and alembic/ are top-level in the repository and ship inside the wheel as
    worker/sql and worker/migrations (pyproject.toml): an installed package finds them next
    to this file, a source tree (editable install, docker image at /app) one level up;
    $HEIMDALL_HOME (a directory holding sql/ and alembic/) overrides both."""
    home = os.environ.get("HEIMDALL_HOME")
    if home:
        return Path(home) / in_repo
    packaged = _PACKAGE_DIR / in_wheel
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent / in_repo


SQL_DIR = _schema_dir("sql", "sql")
ALEMBIC_DIR = _schema_dir("migrations", "alembic")
QUEUE_NAME = "heimdall_chunks"
DATABASE_URL_ENV = "HEIMDALL_DATABASE_URL"


STATEFUL_FILES = ("schema.sql", "config_keys.sql", "queue.sql")


def stateful_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """Objects that hold data (tables, indexes, config rows, the queue): a migration changes
    them with a hand-written delta, never by replaying them."""
    return [sql_dir / name for name in STATEFUL_FILES]


def replaceable_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """Objects without data (functions, triggers, views, grants): a migration drops them all
    (``DROP_REPLACEABLE_SQL``) and replays a frozen copy of these files."""
    return [
        *sorted((sql_dir / "functions").glob("*.sql")),
        sql_dir / "triggers.sql",
        sql_dir / "views.sql",
        sql_dir / "grants.sql",
    ]


def sql_build_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The files of ``sql/`` in the order that builds the schema."""
    return [*stateful_files(sql_dir), *replaceable_files(sql_dir)]


def _concatenate(paths: list[Path], sql_dir: Path) -> str:
    parts = []
    for path in paths:
        rel = path.relative_to(sql_dir)
        parts.append(f"-- >>> sql/{rel}\n{path.read_text()}\n")
    return "\n".join(parts)


def concatenated_sql(sql_dir: Path = SQL_DIR) -> str:
    """All of ``sql/`` as one script (what the first migration froze)."""
    return _concatenate(sql_build_files(sql_dir), sql_dir)


def replaceable_sql(sql_dir: Path = SQL_DIR) -> str:
    """The replaceable set of ``sql/`` as one script (what a later migration freezes)."""
    return _concatenate(replaceable_files(sql_dir), sql_dir)


def frozen_sections(frozen_sql: str) -> dict[str, str]:
    """Split a frozen script written by ``concatenated_sql`` back into its files
    (``{"sql/functions/x.sql": text, ...}``), to replay part of an older revision."""
    out: dict[str, str] = {}
    marker = "-- >>> "
    chunks = frozen_sql.split("\n" + marker)
    head = chunks[0][len(marker):] if chunks[0].startswith(marker) else None
    items = ([head] if head is not None else []) + chunks[1:]
    for item in items:
        name, _, body = item.partition("\n")
        out[name.strip()] = body
    return out


# Drops every replaceable object of the heimdall schema and takes back the roles' table
# privileges, whatever revision made them; frozen into each revision that replays a
# replaceable set (a released copy never changes, so later edits here do not touch it).
DROP_REPLACEABLE_SQL = """\
-- Drop the replaceable set (views, triggers, functions) and the roles' privileges; the
-- stateful objects (tables, rows, the queue) stay.
DO $drop$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS v FROM pg_class c
              WHERE c.relnamespace = 'heimdall'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.v);
    END LOOP;
    FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid
              WHERE c.relnamespace = 'heimdall'::regnamespace AND NOT t.tgisinternal LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
              WHERE p.pronamespace = 'heimdall'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s', r.f);
    END LOOP;
    FOR r IN SELECT rolname FROM pg_roles
              WHERE rolname IN ('heimdall_reader', 'heimdall_worker', 'heimdall_admin') LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA heimdall FROM %I', r.rolname);
    END LOOP;
END
$drop$;
"""


def database_url(url: str | None = None) -> str:
    """The libpq URL to use: the argument, else ``$HEIMDALL_DATABASE_URL``."""
    url = url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(f"no database given: set {DATABASE_URL_ENV} (a libpq URL) or pass --database-url")
    return url


def pgmq_install_sql() -> str:
    """pgmq's own SQL as shipped by the installed ``pgmq`` package."""
    from pgmq.install import get_embedded_install_sql

    return get_embedded_install_sql()


def ensure_pgmq(conn: psycopg.Connection, install_sql: str) -> str:
    """Make pgmq available in this database; returns how ('extension', 'present', 'sql').

    Uses ``CREATE EXTENSION`` where the server has the extension (the docker image);
    otherwise runs pgmq's SQL (not re-runnable, hence the presence check).
    """
    cur = conn.execute("SELECT to_regproc('pgmq.read') IS NOT NULL")
    if cur.fetchone()[0]:
        return "present"
    cur = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq'")
    if cur.fetchone():
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgmq")
        return "extension"
    conn.execute(install_sql)
    return "sql"


def build_from_sql(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> None:
    """Build the schema from the live ``sql/`` files (tests, schema comparison)."""
    ensure_pgmq(conn, pgmq_install_sql())
    for path in sql_build_files(sql_dir):
        conn.execute(path.read_text())


def alembic_config(url: str):
    """An alembic Config pointing at ``alembic/`` and the given libpq URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url))
    return cfg


def sqlalchemy_url(url: str) -> str:
    """libpq URL -> SQLAlchemy URL using the psycopg 3 driver (``%`` escaped for configparser)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    else:
        if not url.startswith("postgresql+psycopg://"):
            # keyword/value DSN ("host=... dbname=..."): pass through psycopg's conninfo
            url = "postgresql+psycopg:///?" + "&".join(
                f"{k}={v}" for k, v in psycopg.conninfo.conninfo_to_dict(url).items()
            )
    return url.replace("%", "%%")


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
