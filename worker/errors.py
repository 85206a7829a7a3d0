"""Python exceptions for the SQLSTATEs the heimdall SQL API raises.

Every public SQL function documents the SQLSTATEs it raises; ``translate`` turns a
psycopg error into one of these so callers (CLI, worker) can react by kind.
"""

from __future__ import annotations

import psycopg


class HeimdallError(Exception):
    """Base class. ``sqlstate`` is the server's code when the error came from SQL."""

    sqlstate: str | None = None

    def __init__(self, message: str, sqlstate: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} (hint: {self.hint})" if self.hint else msg


class NotFound(HeimdallError):
    """P0002: unknown dataset, request or chunk."""


class InvalidInput(HeimdallError):
    """22023: bad argument or config value (the message names it)."""


class OutOfRange(InvalidInput):
    """22003: a count too large, or the index counter would overflow."""


class AlreadyExists(HeimdallError):
    """23505: a dataset with that name exists."""


class InvalidState(HeimdallError):
    """55000: the object is not in a state that allows the operation."""


class InvariantViolation(HeimdallError):
    """23514 / 23503: the database refused rows that would break an invariant."""


class DatabaseUnavailable(HeimdallError):
    """Class 08 / connection failures: the server cannot be reached."""


_BY_SQLSTATE: dict[str, type[HeimdallError]] = {
    "P0002": NotFound,
    "22023": InvalidInput,
    "22003": OutOfRange,
    "23505": AlreadyExists,
    "55000": InvalidState,
    "23514": InvariantViolation,
    "23503": InvariantViolation,
}


def translate(exc: psycopg.Error) -> HeimdallError:
    """Map a psycopg error to the matching HeimdallError (generic base class otherwise)."""
    diag = getattr(exc, "diag", None)
    sqlstate = getattr(exc, "sqlstate", None)
    message = (diag.message_primary if diag is not None and diag.message_primary else str(exc)).strip()
    hint = diag.message_hint if diag is not None else None
    if isinstance(exc, psycopg.OperationalError) and sqlstate is None:
        return DatabaseUnavailable(f"cannot reach the database: {message.splitlines()[0] if message else exc}")
    # 08: connection exceptions; 57P: the server ended the session (terminate, shutdown)
    if sqlstate and (sqlstate.startswith("08") or sqlstate.startswith("57P")):
        return DatabaseUnavailable(message, sqlstate)
    cls = _BY_SQLSTATE.get(sqlstate or "", HeimdallError)
    return cls(message, sqlstate, hint)
