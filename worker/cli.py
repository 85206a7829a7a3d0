"""``heimdall-synth``: the command line for humans.

Exit codes (``EXIT_*``; validate's in ``worker.validate.EXIT_BY_STATUS``): 0 success (and
validate: healthy); 1 error (bad input, unknown dataset, malformed environment variable,
database refused or unreachable); 2 usage error (argparse); 3 validate: warning;
4 validate: critical.
Every error a user can cause prints as one line (``error: ...``) on stderr, or with
``--json`` as one JSON object on stdout (``error``, ``sqlstate`` or null, ``exit_code``);
``--debug`` shows the traceback. Text that comes from the database (names, messages) is
printed with control characters escaped (``printable``), so a name cannot move the
cursor, recolour the terminal or fake a line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import __version__, db, queries
from .errors import HeimdallError, NotFound, translate

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_CODES_HELP = ("exit codes: 0 ok, 1 error, 2 usage; validate: 0 healthy, 3 warning, 4 critical")
NO_SCHEMA = "the database has no heimdall schema (or an old one): run `heimdall-synth db upgrade`"
# undefined table / function / schema: what a database without (the current) schema answers
SCHEMA_SQLSTATES = frozenset({"42P01", "42883", "3F000"})


class CliError(Exception):
    """An error to print as one line, exit code 1."""


class EnvError(CliError):
    """A malformed environment variable (the message names it)."""


def printable(value: Any) -> str:
    """``value`` as text with every non-printable character (control characters, ANSI
    escapes, line and paragraph separators, bidi overrides) written as its Python escape
    (``\\n``, ``\\x1b``, ``\\u202e``): one line, nothing the terminal would act on."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# ------------------------------------------------------------------ environment variables
class _EnvValue(str):
    """The raw text of an environment variable, used as an argparse default. argparse runs
    a string default through the argument's ``type`` only when the sub-command owning the
    argument is parsed and the flag is absent: the variable is parsed lazily, by the command
    that uses it, and a malformed one fails there, naming the variable."""

    var: str

    def __new__(cls, text: str, var: str) -> _EnvValue:
        obj = super().__new__(cls, text)
        obj.var = var
        return obj


def env_default(var: str, fallback: str) -> str:
    """Default of a flag: ``$var`` when set and not empty, else ``fallback`` (both parsed
    by the flag's ``type``, e.g. ``number_type``)."""
    text = os.environ.get(var, "")
    return _EnvValue(text, var) if text.strip() else fallback


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def number_type(kind: type[int] | type[float], minimum: float, maximum: float,
                unit: str = "") -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` (int: whole number) in [minimum, maximum].
    A bad flag is a usage error (argparse, exit 2); a bad ``env_default`` value raises
    EnvError naming the variable (exit 1)."""
    noun = "a whole number" if kind is int else "a number"
    expected = f"{noun}{' of ' + unit if unit else ''} in {_num(minimum)} .. {_num(maximum)}"

    def parse(text: str) -> Any:
        try:
            value = kind(text.strip())
            good = math.isfinite(value) and minimum <= value <= maximum
        except (ValueError, OverflowError):
            good = False
        if good:
            return value
        if isinstance(text, _EnvValue):
            raise EnvError(f"{text.var} must be {expected}, got {text!r}")
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")

    return parse


def connect(args: argparse.Namespace) -> psycopg.Connection:
    try:
        url = db.database_url(args.database_url)
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise translate(exc) from exc


def resolve_dataset(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """The dataset ``ref`` names: a reference that reads as a uuid is an id (never a name),
    anything else an exact name (query ``find_dataset``)."""
    row = queries.one(conn, "find_dataset", ref=ref)
    if row is None:
        raise NotFound(f"dataset {ref!r} does not exist (give its id or exact name)")
    return row


def emit(args: argparse.Namespace, data: Any, table: Sequence[dict[str, Any]] | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Print ``data`` as JSON with --json, else ``table`` as an aligned text table."""
    if getattr(args, "json", False):
        print(json.dumps(data, default=str, indent=2))
        return
    rows = table if table is not None else (data if isinstance(data, list) else [data])
    if not rows:
        print("(none)")
        return
    cols = list(columns or rows[0].keys())
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return printable(v)


# --------------------------------------------------------------------------------- db
def _migrate(args: argparse.Namespace, fn: Callable[[str, str], None], verb: str) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    url = _url(args)
    try:
        fn(url, args.revision)
    except CommandError as exc:          # unknown revision, downgrade past base, ...
        raise CliError(f"db {args.db_command}: {exc}") from exc
    except DBAPIError as exc:
        orig = exc.orig if isinstance(exc.orig, psycopg.Error) else None
        if orig is not None:
            raise translate(orig) from exc
        raise CliError(f"migration failed: {str(exc).splitlines()[0]}") from exc
    print(f"database {verb} to {args.revision}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    return _migrate(args, db.upgrade, "upgraded")


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    return _migrate(args, db.downgrade, "downgraded")


def _url(args: argparse.Namespace) -> str:
    try:
        return db.database_url(args.database_url)
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc


# ---------------------------------------------------------------------------- dataset
def _parse_config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if text.startswith("@"):
        try:
            with open(text[1:]) as fh:
                text = fh.read()
        except OSError as exc:
            raise CliError(f"cannot read config file {text[1:]!r}: {exc.strerror}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--config is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CliError("--config must be a JSON object")
    return value


def cmd_dataset_create(args: argparse.Namespace) -> int:
    config = _parse_config(args.config)
    with connect(args) as conn:
        row = queries.one(conn, "create_dataset", name=args.name, dataset_type=args.type,
                          config=Jsonb(config), seed=args.seed, num_samples=args.num_samples)
        ds = resolve_dataset(conn, str(row["id"]))
        emit(args, _dataset_summary(ds), columns=["id", "name", "dataset_type", "seed", "next_idx"])
        if args.wait and args.num_samples:
            from .progress import wait_for_dataset

            return wait_for_dataset(conn, ds["id"], json_mode=args.json)
    return 0


def cmd_dataset_expand(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = resolve_dataset(conn, args.dataset)
        row = queries.one(conn, "expand_dataset", dataset_id=ds["id"], n=args.n)
        prog = queries.one(conn, "request_progress", request_id=row["request_id"])
        emit(args, prog, columns=["request_id", "dataset_name", "first_idx", "last_idx", "chunks_total"])
        if args.wait:
            from .progress import wait_for_request

            return wait_for_request(conn, row["request_id"], json_mode=args.json)
    return 0


def _dataset_summary(ds: dict[str, Any]) -> dict[str, Any]:
    return {k: ds[k] for k in ("id", "name", "dataset_type", "seed", "num_samples", "next_idx",
                               "generator_version", "created_at", "health_status")}


def cmd_dataset_list(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = queries.run(conn, "list_datasets")
    emit(args, rows, columns=["id", "name", "dataset_type", "num_samples", "reserved",
                              "ready_prefix", "chunks_open", "failed_chunks", "status"])
    return 0


def cmd_dataset_show(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = resolve_dataset(conn, args.dataset)
        health = queries.one(conn, "dataset_health", dataset_id=ds["id"])
        requests = queries.run(conn, "requests_of_dataset", dataset_id=ds["id"])
    if args.json:
        emit(args, {"dataset": ds, "health": health, "requests": requests})
        return 0
    for k, v in {**_dataset_summary(ds), **{k: health[k] for k in health if k not in ds}}.items():
        print(f"{k:>22}: {_fmt(v)}")
    print("\nrequests:")
    emit(args, requests, columns=["request_id", "kind", "first_idx", "last_idx", "chunks_done",
                                  "chunks_total", "state", "samples_per_s"])
    print("\nconfig:")
    print(json.dumps(ds["config"], indent=2))
    return 0


def cmd_dataset_delete(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = resolve_dataset(conn, args.dataset)
        if not args.yes:
            raise CliError(f"refusing to delete dataset {ds['name']!r} ({ds['num_samples']} samples) "
                           "without --yes")
        queries.one(conn, "delete_dataset", dataset_id=ds["id"])
    print(f"deleted dataset {printable(ds['name'])} ({ds['id']}); its objects are removed by "
          "`heimdall-synth gc`")
    return 0


def cmd_config_keys(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = queries.run(conn, "config_keys")
    emit(args, rows, columns=["key", "value_type", "default_value", "min_value", "max_value", "unit"])
    return 0


def cmd_config_normalize(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        row = queries.one(conn, "normalize_config", config=Jsonb(_parse_config(args.config)))
    print(json.dumps(row["config"], indent=2))
    return 0


# ------------------------------------------------------------------------------ parser
Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as a JSON object on stdout when ``--json`` is on the line
    (``json_errors``, set by ``main``); exit code 2 either way."""

    json_errors = False

    def error(self, message: str):  # type: ignore[override]
        if Parser.json_errors:
            sys.exit(report_error(message, None, EXIT_USAGE, json_mode=True))
        super().error(message)


EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]] = []


def build_parser() -> argparse.ArgumentParser:
    # Common options are accepted before or after the sub-command; SUPPRESS keeps a
    # sub-parser from resetting a value given earlier on the line.
    common = Parser(add_help=False)
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="libpq URL (default: $HEIMDALL_DATABASE_URL)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable JSON output")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")

    p = Parser(prog="heimdall-synth", description="Generate, grow and check synthetic RF datasets.",
               epilog=EXIT_CODES_HELP)
    # The top level gets its own copies (parents= would share the action objects, and a
    # default set here would leak into every sub-parser).
    p.add_argument("--database-url", default=None, help="libpq URL (default: $HEIMDALL_DATABASE_URL)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"heimdall-synth {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pdb = sub.add_parser("db", help="schema migrations", parents=[common])
    dbs = pdb.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    x = dbs.add_parser("upgrade", help="apply migrations (default: to head)", parents=[common])
    x.add_argument("revision", nargs="?", default="head")
    x.set_defaults(func=cmd_db_upgrade)
    x = dbs.add_parser("downgrade", help="revert migrations, e.g. `downgrade base`", parents=[common])
    x.add_argument("revision")
    x.set_defaults(func=cmd_db_downgrade)

    pds = sub.add_parser("dataset", help="create, expand, list, show, delete datasets", parents=[common])
    dss = pds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    x = dss.add_parser("create", help="create a dataset", parents=[common])
    x.add_argument("name")
    x.add_argument("--type", required=True, choices=["feature_based", "iq_raw"])
    x.add_argument("--config", help="JSON object, or @file.json (see `config keys`)")
    x.add_argument("--seed", type=int, default=None, help="generation seed (default: random)")
    x.add_argument("-n", "--num-samples", type=int, default=0, help="samples to request now")
    x.add_argument("--wait", action="store_true", help="wait for the samples (progress bar)")
    x.set_defaults(func=cmd_dataset_create)
    x = dss.add_parser("expand", help="request more samples", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.add_argument("n", type=int)
    x.add_argument("--wait", action="store_true", help="wait for the request (progress bar)")
    x.set_defaults(func=cmd_dataset_expand)
    x = dss.add_parser("list", help="all datasets with health", parents=[common])
    x.set_defaults(func=cmd_dataset_list)
    x = dss.add_parser("show", help="one dataset: health, requests, config", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.set_defaults(func=cmd_dataset_show)
    x = dss.add_parser("delete", help="delete a dataset (objects: see gc)", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.add_argument("--yes", action="store_true", help="really delete")
    x.set_defaults(func=cmd_dataset_delete)

    pc = sub.add_parser("config", help="config keys, defaults and limits", parents=[common])
    cs = pc.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    x = cs.add_parser("keys", help="list keys with defaults and limits", parents=[common])
    x.set_defaults(func=cmd_config_keys)
    x = cs.add_parser("normalize", help="show the normalized form of a config", parents=[common])
    x.add_argument("config", nargs="?", default="{}")
    x.set_defaults(func=cmd_config_normalize)

    for register in EXTRA_COMMANDS:
        register(sub, common)
    return p


EXTRA_MODULES = ("worker.runner", "worker.maintenance", "worker.validate", "worker.export", "worker.demo")


def _load_extra_commands() -> None:
    # Sub-commands that live in their own modules: each exposes register(sub, common).
    import importlib

    for name in EXTRA_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if mod.register not in EXTRA_COMMANDS:
            EXTRA_COMMANDS.append(mod.register)


def report_error(message: str, sqlstate: str | None, code: int, json_mode: bool) -> int:
    """Print one error: ``error: ...`` on stderr, or with --json one JSON object on stdout.
    Returns ``code``."""
    text = printable(message)
    if json_mode:
        print(json.dumps({"error": text, "sqlstate": sqlstate, "exit_code": code}))
    else:
        print(f"error: {text}", file=sys.stderr)
    return code


def schema_missing(database_url: str | None) -> bool:
    """After an undefined table/function/schema error: does the database lack the heimdall
    schema, or hold an older revision than this code's migrations? False when the schema is
    current (the error is then something else) or when that cannot be told."""
    try:
        url = db.database_url(database_url)
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            if not queries.one(conn, "schema_present")["present"]:
                return True
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine, pool

        cfg = db.alembic_config(url)
        engine = create_engine(cfg.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        try:
            with engine.connect() as c:
                current = set(MigrationContext.configure(
                    c, opts={"version_table_schema": "public"}).get_current_heads())
        finally:
            engine.dispose()
        # no version table: built from sql/ directly, not by migrations; cannot tell
        return bool(current) and current != set(ScriptDirectory.from_config(cfg).get_heads())
    except Exception:
        return False


def _flag_on_line(argv: Sequence[str], flag: str) -> bool:
    tokens = list(argv)
    return flag in (tokens[:tokens.index("--")] if "--" in tokens else tokens)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode, debug = _flag_on_line(argv, "--json"), _flag_on_line(argv, "--debug")
    _load_extra_commands()
    parser = build_parser()
    Parser.json_errors = json_mode
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)    # env_default values are parsed here: EnvError
        json_mode, debug = bool(getattr(args, "json", False)), bool(getattr(args, "debug", False))
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (HeimdallError, CliError, psycopg.Error, OSError) as exc:
        if debug:
            raise
        err = translate(exc) if isinstance(exc, psycopg.Error) else exc
        sqlstate = getattr(err, "sqlstate", None)
        message = str(err)
        if isinstance(exc, OSError) and exc.filename and exc.strerror:
            message = f"{exc.filename}: {exc.strerror}"
        if sqlstate in SCHEMA_SQLSTATES and schema_missing(getattr(args, "database_url", None)):
            message = NO_SCHEMA
        return report_error(message, sqlstate, EXIT_ERROR, json_mode)
    finally:
        Parser.json_errors = False


if __name__ == "__main__":  # pragma: no cover
    # Run the imported module's main, so exception classes are the package's own.
    from worker.cli import main as _main

    sys.exit(_main())
