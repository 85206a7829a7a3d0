"""The database boundary without a server: URL precedence and its errors, the retry policy,
and the worker's settings (flags over environment variables over defaults, one-line
errors naming the variable). The server side (connect, give up, translate) is in
tests/integration/test_db_boundary.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from worker import db
from worker.errors import DatabaseUnavailable, InvalidInput, SettingsError
from worker.runner import Settings
from worker.settings import WORKER_MAX_READS, WORKER_UNTIL_IDLE, WORKER_VT_S

URL_ENV = "HEIMDALL_DATABASE_URL"
S3_ENV = {"HEIMDALL_S3_ENDPOINT": "127.0.0.1:9", "HEIMDALL_S3_ACCESS_KEY": "k",
          "HEIMDALL_S3_SECRET_KEY": "s"}


@pytest.fixture
def env(monkeypatch):
    """A clean environment for the settings under test."""
    for var in (URL_ENV, *S3_ENV, "HEIMDALL_S3_BUCKET", "HEIMDALL_S3_SECURE", WORKER_VT_S.var,
                WORKER_MAX_READS.var, WORKER_UNTIL_IDLE.var, "HEIMDALL_WORKER_POLL_S",
                "HEIMDALL_WORKER_MAX_CHUNKS", "HEIMDALL_WORKER_ID"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


# ------------------------------------------------------------------ URL resolution
def test_an_explicit_url_wins_over_the_environment(env):
    env.setenv(URL_ENV, "postgresql://from-env@h:1/a")
    assert db.resolve_url("postgresql://flag@h:1/b") == "postgresql://flag@h:1/b"
    assert db.Database("postgresql://flag@h:1/b").url == "postgresql://flag@h:1/b"


def test_the_environment_is_used_without_an_explicit_url(env):
    env.setenv(URL_ENV, "  postgresql://from-env@h:1/a \n")
    assert db.resolve_url() == "postgresql://from-env@h:1/a"
    assert db.resolve_url("") == db.resolve_url("   ") == db.resolve_url(None) == "postgresql://from-env@h:1/a"
    env.setenv(URL_ENV, "host=h port=1 dbname=a")          # key=value conninfo is a URL too
    assert db.Database().url == "host=h port=1 dbname=a"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_url_anywhere_is_one_error_naming_the_variable(env, value):
    if value is not None:
        env.setenv(URL_ENV, value)
    for call in (db.resolve_url, db.Database):
        with pytest.raises(SettingsError, match=f"no database given: set {URL_ENV}.*--database-url"):
            call()


def test_a_garbage_url_is_refused_naming_where_it_came_from_never_its_text(env):
    secret = "garbage with password=hunter2"
    env.setenv(URL_ENV, secret)
    with pytest.raises(SettingsError) as exc:
        db.Database()
    assert URL_ENV in str(exc.value) and "hunter2" not in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(SettingsError) as exc:
        db.resolve_url("postgresql://x@h:1/db?sslmode=sometimes&password=hunter2 = =")
    assert "--database-url" in str(exc.value) and "hunter2" not in str(exc.value)
    assert "hunter2" not in repr(db.Database("postgresql://u:hunter2@h:1/d"))


# ------------------------------------------------------------------ retry policy
class Flaky:
    """An operation that fails ``failures`` times with ``error`` before it succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseUnavailable)


def test_retry_gives_up_after_the_configured_attempts_with_the_last_error():
    op, waits = Flaky(10, DatabaseUnavailable("down")), []
    with pytest.raises(DatabaseUnavailable, match="down"):
        db.Retry(attempts=3, first_delay_s=0.001).call(op, _transient,
                                                        on_retry=lambda a, d, e: waits.append((a, d)))
    assert op.calls == 3 and [a for a, _ in waits] == [1, 2]
    assert waits[1][1] == 2 * waits[0][1]                       # the delay doubles


def test_retry_succeeds_when_the_failure_passes_and_caps_the_delay():
    op, delays = Flaky(4, DatabaseUnavailable("down")), []
    assert db.Retry(attempts=10, first_delay_s=0.001, max_delay_s=0.002).call(
        op, _transient, on_retry=lambda a, d, e: delays.append(d)) == "ok"
    assert op.calls == 5 and delays == [0.001, 0.002, 0.002, 0.002]


def test_retry_never_repeats_what_is_not_transient_nor_after_a_stop_nor_past_the_deadline():
    op = Flaky(10, InvalidInput("bad"))
    with pytest.raises(InvalidInput):
        db.Retry(attempts=5, first_delay_s=0.001).call(op, _transient)
    assert op.calls == 1
    op = Flaky(10, DatabaseUnavailable("down"))
    with pytest.raises(DatabaseUnavailable):
        db.Retry(attempts=5, first_delay_s=0.001).call(op, _transient, should_stop=lambda: True)
    assert op.calls == 1
    op = Flaky(10**6, DatabaseUnavailable("down"))
    with pytest.raises(DatabaseUnavailable):
        db.Retry(attempts=None, deadline_s=0.05, first_delay_s=0.01, max_delay_s=0.01).call(op, _transient)
    assert 2 <= op.calls <= 7


def test_retry_refuses_a_policy_that_never_gives_up():
    with pytest.raises(ValueError):
        db.Retry(attempts=None)
    with pytest.raises(ValueError):
        db.Retry(attempts=0)


# ------------------------------------------------------------------ worker settings
def test_worker_settings_flags_over_environment_over_defaults(env):
    for var, value in {URL_ENV: "postgresql://w@h:1/d", **S3_ENV}.items():
        env.setenv(var, value)
    s = Settings.from_env()
    assert (s.vt_s, s.max_reads, s.poll_s, s.until_idle, s.max_chunks) == (120, 5, 0.5, False, None)
    assert s.database_url == "postgresql://w@h:1/d" and s.store.endpoint == "127.0.0.1:9"
    assert s.store.bucket == "heimdall-iq" and s.store.secure is False
    env.setenv(WORKER_VT_S.var, "30")
    env.setenv(WORKER_UNTIL_IDLE.var, "yes")
    env.setenv("HEIMDALL_S3_SECURE", "true")
    s = Settings.from_env()
    assert (s.vt_s, s.until_idle, s.store.secure) == (30, True, True)
    s = Settings.from_env(vt_s=7, database_url="postgresql://flag@h:1/d",
                          s3={"endpoint": "127.0.0.1:10", "secure": False, "bucket": None})
    assert (s.vt_s, s.database_url, s.store.endpoint, s.store.secure) == (7, "postgresql://flag@h:1/d",
                                                                          "127.0.0.1:10", False)


@pytest.mark.parametrize("var, value", [(WORKER_VT_S.var, "abc"), (WORKER_VT_S.var, "0"),
                                        (WORKER_VT_S.var, "1.5"), (WORKER_MAX_READS.var, "1e9"),
                                        ("HEIMDALL_WORKER_POLL_S", "nan"), (WORKER_UNTIL_IDLE.var, "maybe")])
def test_a_malformed_worker_variable_names_itself_and_its_value(env, var, value):
    for v, text in {URL_ENV: "postgresql://w@h:1/d", **S3_ENV, var: value}.items():
        env.setenv(v, text)
    with pytest.raises(SettingsError) as exc:
        Settings.from_env()
    assert var in str(exc.value) and repr(value) in str(exc.value)
    assert Settings.from_env(vt_s=5, max_reads=2, poll_s=1.0, until_idle=True)   # given values win


def test_python_m_worker_takes_no_arguments_and_reports_settings_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "worker", "--until-idle"], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": _root()})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "takes no arguments" in r.stderr
    r = subprocess.run([sys.executable, "-m", "worker"], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": _root(),
                                          "HEIMDALL_WORKER_VT_S": "\x1b[2Jsoon"})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: HEIMDALL_WORKER_VT_S must be") and "\x1b" not in r.stderr


def _root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2])
