"""Database plumbing: connections, the SQL build order, pgmq installation, migrations.

The SQL in ``sql/`` is the current state of the schema. ``alembic/`` applies frozen,
versioned copies of it (an old revision never reads live files). ``build_from_sql``
builds a database straight from ``sql/``; a test asserts both paths give the same schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

# sql/ and alembic/ live next to the package (editable install, docker image at /app);
# HEIMDALL_HOME points elsewhere if needed.
REPO_ROOT = Path(os.environ.get("HEIMDALL_HOME") or Path(__file__).resolve().parent.parent)
SQL_DIR = REPO_ROOT / "sql"
ALEMBIC_DIR = REPO_ROOT / "alembic"
QUEUE_NAME = "heimdall_chunks"
DATABASE_URL_ENV = "HEIMDALL_DATABASE_URL"


def sql_build_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The files of ``sql/`` in the order that builds the schema."""
    return [
        sql_dir / "schema.sql",
        sql_dir / "config_keys.sql",
        *sorted((sql_dir / "functions").glob("*.sql")),
        sql_dir / "triggers.sql",
        sql_dir / "views.sql",
        sql_dir / "queue.sql",
        sql_dir / "grants.sql",
    ]


def concatenated_sql(sql_dir: Path = SQL_DIR) -> str:
    """All of ``sql/`` as one script (what a migration freezes)."""
    parts = []
    for path in sql_build_files(sql_dir):
        rel = path.relative_to(sql_dir)
        parts.append(f"-- >>> sql/{rel}\n{path.read_text()}\n")
    return "\n".join(parts)


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
