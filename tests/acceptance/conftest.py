"""Acceptance fixtures: a real S3 server (SeaweedFS on loopback, random credentials) and
real worker subprocesses (`python -m worker`, what a worker container runs: settings from
the environment only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from heimdall_synth.localservices import LocalS3
from worker.storage import ObjectStore


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    server = LocalS3().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: LocalS3) -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(s3_server: LocalS3, bucket: str) -> ObjectStore:
    s = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket)
    s.ensure_bucket()
    return s


# flags of `heimdall-synth worker run` -> the variables `python -m worker` reads instead
WORKER_FLAG_ENV = {"--until-idle": "HEIMDALL_WORKER_UNTIL_IDLE", "--vt": "HEIMDALL_WORKER_VT_S",
                   "--max-reads": "HEIMDALL_WORKER_MAX_READS", "--poll": "HEIMDALL_WORKER_POLL_S",
                   "--max-chunks": "HEIMDALL_WORKER_MAX_CHUNKS", "--worker-id": "HEIMDALL_WORKER_ID"}


def worker_settings_env(*flags: str) -> dict[str, str]:
    """Worker flags (``"--until-idle", "--max-reads", "2"``) as environment variables."""
    env, it = {}, iter(flags)
    for flag in it:
        env[WORKER_FLAG_ENV[flag]] = "1" if flag == "--until-idle" else next(it)
    return env


def worker_env(db_url: str, s3: LocalS3, bucket: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HEIMDALL_DATABASE_URL": db_url, "HEIMDALL_S3_ENDPOINT": s3.endpoint,
           "HEIMDALL_S3_ACCESS_KEY": s3.access_key, "HEIMDALL_S3_SECRET_KEY": s3.secret_key,
           "HEIMDALL_S3_BUCKET": bucket, "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


@pytest.fixture
def spawn_worker(db_url: str, s3_server: LocalS3, bucket: str, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def _spawn(*args: str, s3: LocalS3 | None = None, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(procs)}.log", "w+")
        settings = worker_settings_env("--vt", "3", "--poll", "0.1", *args)
        p = subprocess.Popen([sys.executable, "-m", "worker"],
                             env=worker_env(db_url, s3 or s3_server, bucket, **settings, **env),
                             stdout=log, stderr=subprocess.STDOUT, text=True)
        p.logfile = log
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        p.logfile.close()


def log_text(p: subprocess.Popen) -> str:
    p.logfile.flush()
    p.logfile.seek(0)
    return p.logfile.read()


def wait_for_log(p: subprocess.Popen, needle: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if needle in log_text(p):
            return
        if p.poll() is not None:
            raise AssertionError(f"worker exited ({p.returncode}) before {needle!r}:\n{log_text(p)}")
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not seen in worker log within {timeout_s} s:\n{log_text(p)}")


def finish(p: subprocess.Popen, timeout_s: float = 300) -> str:
    p.wait(timeout_s)
    out = log_text(p)
    assert p.returncode == 0, out
    return out
