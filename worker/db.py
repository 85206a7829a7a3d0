"""The database boundary: every connection, named query and COPY of the Python side goes
through here; plus the SQL build order, pgmq installation and migrations.

:class:`Database` owns

* **URL resolution** (:func:`resolve_url`): an explicit URL (``--database-url``, an
  argument) wins, else ``$HEIMDALL_DATABASE_URL``; a missing or malformed one raises
  :class:`~worker.errors.SettingsError` naming it;
* **connect** with one timeout policy (``CONNECT_TIMEOUT_S``, an ``application_name``) and
  **retry with backoff** (:class:`Retry`: attempts and/or a deadline, doubling delays)
  while the server cannot be reached; anything else (wrong password, no such database)
  is not retried. Failures come back as ``worker.errors`` exceptions (``translate``:
  SQLSTATE -> exception, connection failures -> DatabaseUnavailable);
* **named queries** (``worker/queries.sql``; :func:`run`, :func:`one`) and **COPY**
  (:func:`copy_rows`), with errors translated the same way.

The SQL in ``sql/`` is the current state of the schema. ``alembic/`` applies frozen,
versioned copies of it (an old revision never reads live files). ``build_from_sql``
builds a database straight from ``sql/``; a test asserts both paths give the same schema.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .errors import DatabaseUnavailable, HeimdallError, SettingsError, translate

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


# ------------------------------------------------------------------------ the boundary
# Seconds libpq waits for a server to answer a connection attempt, for every connection.
CONNECT_TIMEOUT_S = 10


def resolve_url(url: str | None = None) -> str:
    """The libpq URL to use: ``url`` (a ``--database-url`` flag, an argument) when given and
    not blank, else ``$HEIMDALL_DATABASE_URL``. Raises SettingsError when there is none or
    it is not a libpq URL / conninfo string (the message names where it came from, never
    its content: it may hold a password)."""
    if url is not None and url.strip():
        source = "--database-url"
    else:
        source, url = DATABASE_URL_ENV, os.environ.get(DATABASE_URL_ENV, "")
        if not url.strip():
            raise SettingsError(f"no database given: set {DATABASE_URL_ENV} (a libpq URL, "
                                "postgresql://user@host:port/dbname) or pass --database-url")
    url = url.strip()
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise SettingsError(f"{source} is not a libpq URL (postgresql://user@host:port/dbname) "
                            "or 'key=value' conninfo string") from None
    return url


@dataclass(frozen=True)
class Retry:
    """How long to keep trying to reach the server: at most ``attempts`` connection attempts
    (None: no limit) and, when ``deadline_s`` is set, no new attempt after that many
    seconds; the delay between attempts starts at ``first_delay_s`` and doubles up to
    ``max_delay_s``. ``Retry()`` is one attempt (fail at once)."""

    attempts: int | None = 1
    deadline_s: float | None = None
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("Retry.attempts must be >= 1 (or None)")
        if self.attempts is None and self.deadline_s is None:
            raise ValueError("Retry needs attempts or deadline_s (it would never give up)")

    def call(self, op: Callable[[], Any], transient: Callable[[BaseException], bool], *,
             should_stop: Callable[[], bool] | None = None,
             on_retry: Callable[[int, float, BaseException], None] | None = None) -> Any:
        """``op()``, again after a delay while it raises an error ``transient`` accepts and
        the policy allows another attempt. The last error is raised as is; ``on_retry``
        (attempt, delay, error) is called before each wait."""
        start, delay, attempt = time.monotonic(), self.first_delay_s, 0
        while True:
            attempt += 1
            try:
                return op()
            except Exception as exc:
                elapsed = time.monotonic() - start
                out_of_attempts = self.attempts is not None and attempt >= self.attempts
                out_of_time = self.deadline_s is not None and elapsed + delay > self.deadline_s
                if (not transient(exc) or out_of_attempts or out_of_time
                        or (should_stop is not None and should_stop())):
                    raise
                if on_retry is not None:
                    on_retry(attempt, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)


def _unavailable(exc: BaseException) -> bool:
    """Worth another connection attempt: the server is unreachable, starting up or shutting
    down (DatabaseUnavailable: class 08, 57P), or out of connection slots (53300)."""
    return isinstance(exc, DatabaseUnavailable) or getattr(exc, "sqlstate", None) == "53300"


# Named queries: the Python side never builds SQL with f-strings; it calls a query of
# worker/queries.sql by name with parameters, run(conn, "claim_chunk", worker_id=...).
_QUERIES_FILE = _PACKAGE_DIR / "queries.sql"
_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def named_queries() -> dict[str, str]:
    """Every query of ``worker/queries.sql`` by name (read once)."""
    parts = _QUERY_NAME.split(_QUERIES_FILE.read_text())
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def run(conn: psycopg.Connection, query_name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Execute named query ``query_name`` with ``params``; rows as dicts (empty list if none).
    SQL errors come back as ``worker.errors`` exceptions."""
    try:
        sql = named_queries()[query_name]
    except KeyError:
        raise HeimdallError(f"no query named {query_name!r} in {_QUERIES_FILE.name}") from None
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        raise translate(exc) from exc


def one(conn: psycopg.Connection, query_name: str, /, **params: Any) -> dict[str, Any] | None:
    """The first row of named query ``query_name`` (None if it returns none)."""
    rows = run(conn, query_name, **params)
    return rows[0] if rows else None


def copy_rows(conn: psycopg.Connection, stage_table: str, columns: list[tuple[str, str]],
              rows: Iterable[tuple]) -> int:
    """Binary COPY of ``rows`` into this session's staging table ``pg_temp.<stage_table>``
    (``columns``: (name, postgres type) pairs, e.g. ``worker.rows.FEATURE_COLUMNS``);
    returns the number of rows. Errors come back translated."""
    from psycopg import sql

    stmt = sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(stage_table), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))
    n = 0
    try:
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            copy.set_types([t for _, t in columns])
            for row in rows:
                copy.write_row(row)
                n += 1
    except psycopg.Error as exc:
        raise translate(exc) from exc
    return n


class Database:
    """One database: its URL (:func:`resolve_url`), how to connect (``CONNECT_TIMEOUT_S``,
    ``application_name``) and how long to retry (:class:`Retry`). Cheap: holds no
    connection. ``connect()`` returns a plain psycopg connection (autocommit by default)
    to use with :func:`run` / :func:`one` / :func:`copy_rows`."""

    def __init__(self, url: str | None = None, *, retry: Retry = Retry(),
                 application_name: str = "heimdall-synth") -> None:
        self.url = resolve_url(url)
        self.retry = retry
        self.application_name = application_name

    def connect(self, *, autocommit: bool = True, retry: Retry | None = None,
                should_stop: Callable[[], bool] | None = None,
                on_retry: Callable[[int, float, BaseException], None] | None = None) -> psycopg.Connection:
        """A new connection. While the server cannot be reached it is tried again as
        ``retry`` (default: this database's policy) allows, and then DatabaseUnavailable
        says how often and for how long; every other failure (authentication, unknown
        database) is raised at once, translated."""
        policy = retry or self.retry
        attempts = [0]
        start = time.monotonic()

        def once() -> psycopg.Connection:
            attempts[0] += 1
            try:
                return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S,
                                       application_name=self.application_name)
            except psycopg.Error as exc:
                raise translate(exc) from exc

        try:
            return policy.call(once, _unavailable, should_stop=should_stop, on_retry=on_retry)
        except DatabaseUnavailable as exc:
            if attempts[0] == 1:
                raise
            reason = str(exc).removeprefix("cannot reach the database: ")
            raise DatabaseUnavailable(
                f"cannot reach the database after {attempts[0]} attempts in "
                f"{time.monotonic() - start:.1f} s: {reason}") from exc

    # the named queries and COPY, also reachable from a Database
    run = staticmethod(run)
    one = staticmethod(one)
    copy_rows = staticmethod(copy_rows)

    def upgrade(self, revision: str = "head") -> None:
        upgrade(self.url, revision)

    def downgrade(self, revision: str) -> None:
        downgrade(self.url, revision)

    def __repr__(self) -> str:   # never the URL: it may hold a password
        return f"Database(application_name={self.application_name!r}, retry={self.retry})"


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
