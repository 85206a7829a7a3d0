"""Settings read from the environment: typed, bounded, read only by the code that uses them.

A setting is read when it is needed (a worker reads the worker's, ``gc`` reads its grace),
so a malformed variable fails only what uses it, with one line naming the variable and the
value. A value given explicitly (a CLI flag, an argument) wins and the variable is then
never read. ``parse`` is the same check for a flag's text (the CLI turns its ValueError
into a usage error).

The worker's own settings are listed here (``WORKER_*``) so that ``python -m worker``
(environment only) and ``heimdall-synth worker run`` (flags over the environment) share
one definition of each: name, type, bounds, default.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Number:
    """A finite int (whole number) or float in [minimum, maximum] from ``$var``."""

    var: str
    kind: type[int] | type[float]
    minimum: float
    maximum: float
    default: int | float | None
    unit: str = ""

    @property
    def expected(self) -> str:
        noun = "a whole number" if self.kind is int else "a number"
        unit = f" of {self.unit}" if self.unit else ""
        return f"{noun}{unit} in {_num(self.minimum)} .. {_num(self.maximum)}"

    def parse(self, text: str) -> Any:
        """The value of ``text``; ValueError ("must be ..., got ...") when it is not one."""
        try:
            value = self.kind(text.strip())
            good = math.isfinite(value) and self.minimum <= value <= self.maximum
        except (ValueError, OverflowError):
            good = False
        if not good:
            raise ValueError(f"must be {self.expected}, got {text!r}")
        return value

    def get(self, given: Any = None) -> Any:
        """``given`` when not None, else ``$var`` when set and not blank, else the default."""
        if given is not None:
            return given
        text = os.environ.get(self.var, "")
        if not text.strip():
            return self.default
        try:
            return self.parse(text)
        except ValueError as exc:
            raise SettingsError(f"{self.var} {exc}") from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Flag:
    """A boolean from ``$var`` (1/true/yes/on or 0/false/no/off, any case)."""

    var: str
    default: bool = False

    def get(self, given: bool | None = None) -> bool:
        if given is not None:
            return bool(given)
        text = os.environ.get(self.var)
        if text is None or not text.strip():
            return self.default
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{self.var} must be true or false, got {text!r}")


@dataclass(frozen=True)
class Text:
    """A string from ``$var`` (blank = unset)."""

    var: str
    default: str | None = None

    def get(self, given: str | None = None) -> str | None:
        if given is not None and given.strip():
            return given
        text = os.environ.get(self.var, "")
        return text if text.strip() else self.default


WORKER_VT_S = Number("HEIMDALL_WORKER_VT_S", int, 1, 86400, 120, "seconds")
WORKER_MAX_READS = Number("HEIMDALL_WORKER_MAX_READS", int, 1, 1000, 5)
WORKER_POLL_S = Number("HEIMDALL_WORKER_POLL_S", float, 0.01, 60, 0.5, "seconds")
WORKER_MAX_CHUNKS = Number("HEIMDALL_WORKER_MAX_CHUNKS", int, 1, 2**31 - 1, None)
WORKER_UNTIL_IDLE = Flag("HEIMDALL_WORKER_UNTIL_IDLE", False)
WORKER_ID = Text("HEIMDALL_WORKER_ID")
