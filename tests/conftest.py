"""Shared fixtures: one real PostgreSQL server per test session (started here, as the
``postgres`` OS user when we are root), a template database built with
``alembic upgrade head``, and a fresh database cloned from it for every test
(pytest-postgresql ``postgresql_noproc`` + ``postgresql`` factories).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import psycopg
import pytest
from pytest_postgresql import factories

from heimdall_synth.localservices import LocalPostgres, free_port
from worker import db

PG_PORT = int(os.environ.get("HEIMDALL_TEST_PG_PORT") or free_port())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """The session's PostgreSQL server (reuse one on $HEIMDALL_TEST_PG_PORT if it runs)."""
    if os.environ.get("HEIMDALL_TEST_PG_PORT"):
        # An already running server (e.g. a developer's): do not start or stop it.
        external = LocalPostgres.__new__(LocalPostgres)
        external.host, external.port, external.user = "127.0.0.1", PG_PORT, "postgres"
        external.password, external.options = None, ""
        external.maintenance_dbname, external.template_dbname = "postgres", None
        yield external
        return
    server = LocalPostgres(port=PG_PORT).start()
    try:
        yield server
    finally:
        server.stop()


def load_template(host: str, port: int, user: str, dbname: str, password: str | None = None,
                  **_: object) -> None:
    """Template database = what `heimdall-synth db upgrade` produces."""
    db.upgrade(f"postgresql://{user}@{host}:{port}/{dbname}")


postgresql_noproc = factories.postgresql_noproc(
    host="127.0.0.1", port=PG_PORT, user="postgres", dbname="heimdall_test",
    load=[load_template], depends_on="pg_server")
postgresql = factories.postgresql("postgresql_noproc")


@pytest.fixture
def conn(postgresql: psycopg.Connection) -> psycopg.Connection:
    """A connection (autocommit) to this test's own freshly cloned database."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def db_url(postgresql: psycopg.Connection) -> str:
    info = postgresql.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


@pytest.fixture
def connect(db_url: str) -> Iterator[Callable[..., psycopg.Connection]]:
    """Open extra connections to the test database (closed at teardown)."""
    opened: list[psycopg.Connection] = []

    def _connect(autocommit: bool = True) -> psycopg.Connection:
        c = psycopg.connect(db_url, autocommit=autocommit)
        opened.append(c)
        return c

    yield _connect
    for c in opened:
        c.close()
