"""``heimdall-synth``: the command line for humans.

Exit codes: 0 success; 1 error (bad input, unknown dataset, database refused);
2 usage error (argparse); validate: 0 healthy, 1 warning, 2 critical.
SQL errors print as one line (``error: ...``); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import __version__, db, queries
from .errors import HeimdallError, NotFound, translate


class CliError(Exception):
    """An error to print as one line, exit code 1."""


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
    return str(v)


# --------------------------------------------------------------------------------- db
def _migrate(args: argparse.Namespace, fn: Callable[[str, str], None], verb: str) -> int:
    from sqlalchemy.exc import DBAPIError

    url = _url(args)
    try:
        fn(url, args.revision)
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
    print(f"deleted dataset {ds['name']} ({ds['id']}); its objects are removed by `heimdall-synth gc`")
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
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None]] = []


def build_parser() -> argparse.ArgumentParser:
    # Common options are accepted before or after the sub-command; SUPPRESS keeps a
    # sub-parser from resetting a value given earlier on the line.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="libpq URL (default: $HEIMDALL_DATABASE_URL)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable JSON output")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")

    p = argparse.ArgumentParser(prog="heimdall-synth",
                                description="Generate, grow and check synthetic RF datasets.",
                                epilog="exit codes: 0 ok, 1 error, 2 usage; validate: 0/1/2 = healthy/warning/critical")
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


def main(argv: Sequence[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (HeimdallError, CliError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        if args.debug:
            raise
        print(f"error: {translate(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Run the imported module's main, so exception classes are the package's own.
    from worker.cli import main as _main

    sys.exit(_main())
