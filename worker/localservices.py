"""Throwaway local services for tests, the demo and benchmarks.

``LocalPostgres`` runs a real PostgreSQL server from the installed binaries in a temporary
data directory on a free loopback port. PostgreSQL refuses to run as root, so when we are
root the server runs as the ``postgres`` OS user (``runuser``) with a data directory it
owns. ``LocalS3`` runs ``moto_server`` (a real S3-protocol HTTP server, in memory).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_pg_bindir() -> Path:
    """Directory holding pg_ctl: $HEIMDALL_PG_BINDIR, PATH, or /usr/lib/postgresql/<newest>/bin."""
    env = os.environ.get("HEIMDALL_PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise ServiceError("PostgreSQL server binaries not found (pg_ctl): install postgresql "
                       "or set HEIMDALL_PG_BINDIR")


class LocalPostgres:
    """A private PostgreSQL server: ``start()``, ``url``, ``stop()`` (also a context manager)."""

    def __init__(self, port: int | None = None, base_dir: str | None = None,
                 fast_unsafe: bool = True, user: str = "postgres") -> None:
        self.bindir = find_pg_bindir()
        self.port = port or free_port()
        self.user = user
        self.fast_unsafe = fast_unsafe
        self.as_root = os.geteuid() == 0
        # /tmp, not the caller's home: the postgres user must be able to reach it.
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="heimdall-pg-", dir="/tmp"))
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self.started = False
        # Attributes pytest-postgresql reads from a `depends_on` base fixture.
        self.host = "127.0.0.1"
        self.password: str | None = None
        self.options = ""
        self.maintenance_dbname = "postgres"
        self.template_dbname: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True)

    def start(self) -> LocalPostgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.base)], check=True)
            os.chmod(self.base, 0o755)
        if not (self.datadir / "PG_VERSION").exists():
            r = self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                           "-A", "trust", "-E", "UTF8", "--no-locale"])
            if r.returncode != 0:
                raise ServiceError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.base}",
                "-c max_connections=200"]
        if self.fast_unsafe:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        r = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                       "-o", " ".join(opts), "-w", "-t", "60", "start"])
        if r.returncode != 0:
            log = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise ServiceError(f"PostgreSQL did not start on port {self.port}: {r.stderr.strip()}\n{log}")
        self.started = True
        return self

    def stop(self, remove: bool = True) -> None:
        if self.started:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"])
            self.started = False
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalS3:
    """``moto_server`` on a free loopback port (in-memory S3 API; accepts any credentials)."""

    access_key = "heimdall"
    secret_key = "heimdall-secret"

    def __init__(self, port: int | None = None, enforce_auth: bool = False) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        # moto checks credentials against its IAM only when asked to: unknown keys -> 403
        self.env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if enforce_auth else None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> LocalS3:
        exe = Path(sys.executable).parent / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self.proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=self.env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"moto_server exited with code {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self          # it answered (403 when auth is enforced)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ServiceError(f"moto_server did not answer on {self.endpoint} within {timeout_s} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
