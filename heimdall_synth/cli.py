"""``heimdall-synth``: the command line for humans, and the only module that knows argparse.

Each ``cmd_*`` turns parsed arguments into plain values, calls a plain function of
``heimdall_synth`` (or ``worker``) and prints what it returns (``heimdall_synth.output``).

Exit codes (``EXIT_*``; validate's in ``heimdall_synth.validate.EXIT_BY_STATUS``): 0 success
(and validate: healthy); 1 error (bad input, unknown dataset, malformed environment
variable, missing optional library, database refused or unreachable); 2 usage error
(argparse); 3 validate: warning; 4 validate: critical.
Every error a user can cause prints as one line (``error: ...``) on stderr, or with
``--json`` as one JSON object on stdout (``error``, ``sqlstate`` or null, ``exit_code``);
``--debug`` shows the traceback. Text that comes from the database (names, messages) is
printed with control characters escaped (``printable``), so a name cannot move the
cursor, recolour the terminal or fake a line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker import __version__, db, settings
from worker.errors import HeimdallError, printable, translate
from worker.storage import ObjectStore

from .output import cell, print_json, print_table
from .reader import find_dataset

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_CODES_HELP = "exit codes: 0 ok, 1 error, 2 usage; validate: 0 healthy, 3 warning, 4 critical"
NO_SCHEMA = "the database has no heimdall schema (or an old one): run `heimdall-synth db upgrade`"
# undefined table / function / schema: what a database without (the current) schema answers
SCHEMA_SQLSTATES = frozenset({"42P01", "42883", "3F000"})


class CliError(Exception):
    """An error to print as one line, exit code 1."""


# ------------------------------------------------------------------ arguments -> values
def number_type(setting: settings.Number) -> Callable[[str], Any]:
    """An argparse ``type`` with the bounds of a setting (worker.settings.Number): a bad
    flag is a usage error (exit 2). The setting's environment variable is read only when
    the flag is absent (``setting.get(args.x)``), by the command that uses it."""
    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = setting.kind.__name__      # argparse names the type in some messages
    return parse


def database(args: argparse.Namespace) -> db.Database:
    """The database of ``--database-url`` / $HEIMDALL_DATABASE_URL (worker.db.resolve_url)."""
    return db.Database(getattr(args, "database_url", None))


def connect(args: argparse.Namespace) -> psycopg.Connection:
    return database(args).connect()


def add_s3_arguments(x: argparse.ArgumentParser, bucket_note: str = "") -> None:
    """The one set of object-store flags; each overrides its $HEIMDALL_S3_* variable
    (``store_from_args``, i.e. worker.storage.ObjectStore.from_env)."""
    x.add_argument("--s3-endpoint", help="host:port (default $HEIMDALL_S3_ENDPOINT)")
    x.add_argument("--s3-access-key", help="default $HEIMDALL_S3_ACCESS_KEY")
    x.add_argument("--s3-secret-key", help="default $HEIMDALL_S3_SECRET_KEY")
    x.add_argument("--s3-bucket", help=f"default $HEIMDALL_S3_BUCKET or heimdall-iq{bucket_note}")
    x.add_argument("--s3-secure", choices=["true", "false"], default=None,
                   help="TLS to the object store (default $HEIMDALL_S3_SECURE or false)")


def s3_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {"endpoint": args.s3_endpoint, "access_key": args.s3_access_key,
            "secret_key": args.s3_secret_key, "bucket": args.s3_bucket, "secure": args.s3_secure}


def store_from_args(args: argparse.Namespace) -> ObjectStore:
    return ObjectStore.from_env(**s3_overrides(args))


def s3_configured(args: argparse.Namespace) -> bool:
    return bool(args.s3_endpoint or os.environ.get("HEIMDALL_S3_ENDPOINT", "").strip())


def emit(args: argparse.Namespace, data: Any, table: Sequence[dict[str, Any]] | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Print ``data`` as JSON with --json, else ``table`` (or ``data``) as an aligned table."""
    if getattr(args, "json", False):
        print_json(data)
        return
    print_table(table if table is not None else (data if isinstance(data, list) else [data]), columns)


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


def _out_error(out: str, exc: OSError) -> CliError:
    """A file-system error under --out (not a directory, no permission, disk full...) as
    one line naming the option, the directory and the file that failed."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != out else ""
    return CliError(f"cannot write to --out {out}: {exc.strerror or exc}{where}")


def _parse_range(text: str | None) -> tuple[int | None, int | None] | None:
    from .export import parse_range

    return parse_range(text)


# --------------------------------------------------------------------------------- db
def _migrate(args: argparse.Namespace, verb: str) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    target = database(args)
    try:
        (target.upgrade if verb == "upgraded" else target.downgrade)(args.revision)
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
    return _migrate(args, "upgraded")


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    return _migrate(args, "downgraded")


# ---------------------------------------------------------------------------- dataset
def _dataset_summary(ds: dict[str, Any]) -> dict[str, Any]:
    return {k: ds[k] for k in ("id", "name", "dataset_type", "seed", "num_samples", "next_idx",
                               "generator_version", "created_at", "health_status")}


def cmd_dataset_create(args: argparse.Namespace) -> int:
    config = _parse_config(args.config)
    with connect(args) as conn:
        _check_terrain_stations(args, conn, config)
        row = db.one(conn, "create_dataset", name=args.name, dataset_type=args.type,
                     config=Jsonb(config), seed=args.seed, num_samples=args.num_samples)
        ds = find_dataset(conn, str(row["id"]))
        emit(args, _dataset_summary(ds), columns=["id", "name", "dataset_type", "seed", "next_idx"])
        if args.wait and args.num_samples:
            from .progress import wait_for_dataset

            return wait_for_dataset(conn, ds["id"], json_mode=args.json)
    return 0


def cmd_dataset_expand(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = find_dataset(conn, args.dataset)
        row = db.one(conn, "expand_dataset", dataset_id=ds["id"], n=args.n)
        prog = db.one(conn, "request_progress", request_id=row["request_id"])
        emit(args, prog, columns=["request_id", "dataset_name", "first_idx", "last_idx", "chunks_total"])
        if args.wait:
            from .progress import wait_for_request

            return wait_for_request(conn, row["request_id"], json_mode=args.json)
    return 0


def cmd_dataset_list(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = db.run(conn, "list_datasets")
    emit(args, rows, columns=["id", "name", "dataset_type", "num_samples", "reserved",
                              "ready_prefix", "chunks_open", "failed_chunks", "status"])
    return 0


def cmd_dataset_show(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = find_dataset(conn, args.dataset)
        health = db.one(conn, "dataset_health", dataset_id=ds["id"])
        requests = db.run(conn, "requests_of_dataset", dataset_id=ds["id"])
    if args.json:
        print_json({"dataset": ds, "health": health, "requests": requests})
        return 0
    for k, v in {**_dataset_summary(ds), **{k: health[k] for k in health if k not in ds}}.items():
        print(f"{k:>22}: {cell(v)}")
    print("\nrequests:")
    print_table(requests, ["request_id", "kind", "first_idx", "last_idx", "chunks_done",
                           "chunks_total", "state", "samples_per_s"])
    print("\nconfig:")
    print(json.dumps(ds["config"], indent=2))
    return 0


def cmd_dataset_delete(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        ds = find_dataset(conn, args.dataset)
        if not args.yes:
            raise CliError(f"refusing to delete dataset {ds['name']!r} ({ds['num_samples']} samples) "
                           "without --yes")
        db.one(conn, "delete_dataset", dataset_id=ds["id"])
    print(f"deleted dataset {printable(ds['name'])} ({ds['id']}); its objects are removed by "
          "`heimdall-synth gc`")
    return 0


def cmd_config_keys(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        rows = db.run(conn, "config_keys")
    emit(args, rows, columns=["key", "value_type", "default_value", "min_value", "max_value", "unit"])
    return 0


def cmd_config_normalize(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        row = db.one(conn, "normalize_config", config=Jsonb(_parse_config(args.config)))
    print(json.dumps(row["config"], indent=2))
    return 0


# ----------------------------------------------------------------------------- worker
def cmd_worker_run(args: argparse.Namespace) -> int:
    from worker.runner import Settings, run_worker

    return run_worker(Settings.from_env(
        database_url=getattr(args, "database_url", None), vt_s=args.vt, max_reads=args.max_reads,
        poll_s=args.poll, worker_id=args.worker_id, until_idle=args.until_idle or None,
        max_chunks=args.max_chunks, s3=s3_overrides(args)))


# ------------------------------------------------------------------------ maintenance
STATUS_COLUMNS = ["request_id", "dataset_name", "kind", "first_idx", "last_idx", "state", "chunks_done",
                  "chunks_total", "chunks_failed", "samples_per_s", "eta"]


def cmd_status(args: argparse.Namespace) -> int:
    from .maintenance import request_rows

    with connect(args) as conn:
        if args.wait and (args.request or args.dataset):
            from .progress import wait_for_dataset, wait_for_request

            if args.request:
                return wait_for_request(conn, args.request, json_mode=args.json)
            return wait_for_dataset(conn, find_dataset(conn, args.dataset)["id"], json_mode=args.json)
        rows = request_rows(conn, dataset=args.dataset, request=args.request)
    emit(args, rows, columns=STATUS_COLUMNS)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from .maintenance import retry_failed

    with connect(args) as conn:
        emit(args, retry_failed(conn, args.dataset))
    return 0


def cmd_request_action(args: argparse.Namespace) -> int:
    from .maintenance import request_action

    with connect(args) as conn:
        rows = request_action(conn, args.command, args.request)
    emit(args, rows if args.command == "abandon" else rows[0])
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from .maintenance import GC_GRACE_S, collect_garbage

    grace = GC_GRACE_S.get(args.grace)
    store = store_from_args(args)
    with connect(args) as conn:
        result = collect_garbage(conn, store, grace, dry_run=args.dry_run)
    if not args.json:
        result = {k: v for k, v in result.items() if k != "keys"}
    emit(args, result)
    return 0


# --------------------------------------------------------------------- validate, repair
def _store_for(args: argparse.Namespace) -> Callable[[str], ObjectStore | None]:
    from .validate import needs_store

    def store_for(dataset_type: str) -> ObjectStore | None:
        return store_from_args(args) if needs_store(dataset_type, s3_configured(args)) else None
    return store_for


def _print_validate_summary(report: dict[str, Any]) -> None:
    c = report["counts"]
    print(f"dataset {printable(report['name'])} ({report['dataset_id']}): {report['status'].upper()}")
    print(f"  num_samples {c['num_samples']}  reserved {c['reserved']}  feature rows {c['feature_rows']}  "
          f"IQ rows {c['iq_rows']}  open chunks {c['open_chunks']}")
    if not report["issues"]:
        print("  no issues")
        return
    print()
    print_table([
        {"severity": i["severity"], "kind": i["kind"],
         "range": f"{i['first_idx']}..{i['last_idx']}" if i.get("first_idx") is not None else (i.get("key") or "-"),
         "count": i.get("count"), "detail": i.get("detail")} for i in report["issues"]],
        ["severity", "kind", "range", "count", "detail"])


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import EXIT_BY_STATUS, validate_dataset

    with connect(args) as conn:
        report = validate_dataset(conn, args.dataset, _store_for(args), deep=args.deep,
                                  stuck_after_s=args.stuck_after)
    if args.json:
        print_json(report)
    else:
        _print_validate_summary(report)
    return EXIT_BY_STATUS[report["status"]]


def cmd_repair(args: argparse.Namespace) -> int:
    from .validate import repair_dataset

    with connect(args) as conn:
        result = repair_dataset(conn, args.dataset, _store_for(args), apply=args.apply,
                                deep=not args.shallow, grace_s=args.grace, stuck_after_s=args.stuck_after)
    actions = result["actions"]
    if args.json:
        print_json(result)
        return 0
    print(f"dataset {printable(result['dataset'])}: {result['status_before']}; {len(actions)} action(s) "
          f"{'applied' if args.apply else 'planned (dry run: add --apply)'}")
    if actions:
        print_table(actions, ["action", "first_idx", "last_idx", "count", "reason", "key"])
    if args.apply and any(a["action"] == "regenerate" for a in actions):
        print("repair chunks enqueued: run workers (e.g. `heimdall-synth worker run --until-idle`), "
              "then validate again", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------ export, plot
def cmd_export(args: argparse.Namespace) -> int:
    from .export import MANIFEST, export_dataset, require_export_libraries

    require_export_libraries(args.format)        # a missing extra fails before any work
    requested = _parse_range(args.range)
    with connect(args) as conn:
        try:
            root, manifest = export_dataset(conn, args.dataset, args.format, Path(args.out),
                                            store=lambda: store_from_args(args), requested=requested,
                                            shard_size=args.shard_size, overwrite=args.overwrite,
                                            progress=not args.json and sys.stderr.isatty(), split=args.split,
                                            sigmf_archive=args.sigmf_archive)
        except OSError as exc:
            raise _out_error(args.out, exc) from exc
    if args.json:
        print_json(manifest)
        return 0
    rng, counts = manifest["range"], manifest["counts"]
    split = manifest.get("split", {}).get("name")
    print(f"exported {printable(repr(manifest['dataset']['name']))} samples {rng['first_idx']}:{rng['stop_idx']} "
          + (f"split {split} " if split else "") + f"({counts['samples']}) as {manifest['format']} to {root}")
    print_table(manifest["files"], ["path", "kind", "first_idx", "last_idx", "samples", "bytes"])
    print(f"{counts['files']} files, {counts['bytes']} bytes (+ {MANIFEST})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_dataset, require_plot_libraries

    require_plot_libraries()                     # a missing extra fails before any work
    if args.kind == "propagation" and args.sample is not None:
        raise CliError("--sample selects the sample of --kind overview; --kind propagation summarizes every link")
    requested = _parse_range(args.range)
    with connect(args) as conn:
        try:
            if args.kind == "propagation":
                from .propagation_plot import plot_propagation

                paths = plot_propagation(conn, args.dataset, Path(args.out), requested=requested,
                                         max_samples=args.max_samples)
            else:
                paths = plot_dataset(conn, args.dataset, Path(args.out), store=lambda: store_from_args(args),
                                     sample=args.sample, requested=requested, max_samples=args.max_samples)
        except OSError as exc:
            raise _out_error(args.out, exc) from exc
    if args.json:
        print_json([str(p) for p in paths])
    else:
        for p in paths:
            print(p)
    return 0


# --------------------------------------------------------------------- baseline, card
def _print_baseline(summary: dict[str, Any]) -> None:
    f = summary["figures"]
    o, st = f["overall"], f["status"]
    where = (f"run {summary['run_id']} recorded" if summary.get("run_id") is not None
             else "not recorded (--no-store)")
    split = f" in the {f['split']} split" if f.get("split") else ""
    print(f"baseline of {printable(repr(summary['dataset']))} samples {summary['first_idx']}:"
          f"{summary['last_idx'] + 1}{split} ({f['samples']}): {where}")
    print(f"  solved {100 * f['fraction_solved']:.1f} % ({st.get('solved', 0)} of {f['samples']}; "
          f"too few receivers {st.get('too_few_receivers', 0)}, diverged {st.get('diverged', 0)})")
    print(f"  CEP50 {cell(o['cep50_m'])} m   CEP90 {cell(o['cep90_m'])} m   RMSE {cell(o['rmse_m'])} m")
    if f.get("tdoa_sigma_s"):
        print(f"  TDOA sigma {f['tdoa_sigma_s'] * 1e9:.3g} ns ({f['sigma_source']}); guide GDOP*c*sigma_TOA "
              f"with sigma_TOA = {f['toa_sigma_s'] * 1e9:.3g} ns")
    print("\nby GDOP:")
    print_table(f["by_gdop"], ["gdop_min", "gdop_max", "samples", "solved", "cep50_m", "cep90_m", "rmse_m",
                               "gdop_c_sigma_m"])
    print("\nby receivers used:")
    print_table(f["by_receivers"], ["receivers", "samples", "solved", "cep50_m", "cep90_m", "rmse_m"])


def cmd_baseline(args: argparse.Namespace) -> int:
    from .baseline_run import latest_run, record_run, run_baseline

    if args.latest:
        if args.plot or args.per_sample or args.range or args.split or args.tdoa_sigma_ns is not None:
            raise CliError("--latest prints the latest recorded run; it takes no --range, --split, --plot, "
                           "--per-sample or --tdoa-sigma-ns")
        with connect(args) as conn:
            row = latest_run(conn, args.dataset)
        summary = {**row, "recorded": True}
        if args.json:
            print_json(summary)
        else:
            _print_baseline(summary)
        return 0
    if args.plot:
        from .plots import require_plot_libraries

        require_plot_libraries()                 # a missing extra fails before any work
    requested = _parse_range(args.range)
    sigma = None if args.tdoa_sigma_ns is None else args.tdoa_sigma_ns * 1e-9
    paths: list[Path] = []
    with connect(args) as conn:
        try:
            run = run_baseline(conn, args.dataset, requested, tdoa_sigma_s=sigma, record=False,
                               per_sample=Path(args.per_sample) if args.per_sample else None, split=args.split)
        except OSError as exc:
            raise CliError(f"cannot write --per-sample {args.per_sample}: {exc.strerror or exc}") from exc
        if args.plot:                            # plots first: a run is recorded only if all went well
            from .plots import plot_baseline

            try:
                paths = plot_baseline(run, Path(args.plot))
            except OSError as exc:
                raise CliError(f"cannot write to --plot {args.plot}: {exc.strerror or exc}") from exc
        if not args.no_store:
            record_run(conn, run)
    summary = {**run.summary(), "plots": [str(p) for p in paths]}
    if args.json:
        print_json(summary)
        return 0
    _print_baseline(summary)
    for p in paths:
        print(p)
    return 0


def cmd_dataset_card(args: argparse.Namespace) -> int:
    from .card import dataset_card

    requested = _parse_range(args.range)
    with connect(args) as conn:
        text = dataset_card(conn, args.dataset, requested, split=args.split)
    if args.json:
        print_json({"card": text})
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


# ---------------------------------------------------------------------------- terrain
def _degrees(lo: int, hi: int, pos: str, neg: str) -> str:
    def one(v: int) -> str:
        return f"{abs(v)}{pos if v >= 0 else neg}"
    return f"{one(lo)}..{one(hi)}"


def terrain_summary(result: dict[str, Any]) -> str:
    """The one line ``terrain import`` prints for the set it imported (or found)."""
    what = (f"imported terrain set {printable(repr(result['name']))}" if result["created"]
            else f"terrain set {printable(repr(result['name']))} is already registered with these tiles "
                 "(nothing changed)")
    return (f"{what}: {result['num_tiles']} SRTM{result['resolution_arcsec']} tiles "
            f"({result['resolution_arcsec']} arcsec), {_degrees(result['lat_min'], result['lat_max'], 'N', 'S')} "
            f"{_degrees(result['lon_min'], result['lon_max'], 'E', 'W')}, {result['bytes']:,} bytes, "
            f"sha256 {result['sha256']}; uploaded {result['uploaded']}, already stored {result['already_stored']}")


def cmd_terrain_import(args: argparse.Namespace) -> int:
    from .terrain import import_terrain_set

    store = store_from_args(args)
    progress = None if args.json else (lambda msg: print(printable(msg), file=sys.stderr, flush=True))
    with connect(args) as conn:
        result = import_terrain_set(conn, store, args.name, args.directory, progress=progress)
    if args.json:
        print_json(result)
    else:
        print(terrain_summary(result))
    return 0


def cmd_terrain_list(args: argparse.Namespace) -> int:
    from .terrain import list_terrain_sets

    with connect(args) as conn:
        rows = list_terrain_sets(conn)
    rows = [{**r, "created_at": r["created_at"].isoformat() if r.get("created_at") is not None else None}
            for r in rows]
    emit(args, rows, columns=["name", "resolution_arcsec", "num_tiles", "lat_min", "lat_max", "lon_min",
                              "lon_max", "bytes", "datasets", "created_at", "sha256"])
    return 0


def _check_terrain_stations(args: argparse.Namespace, conn: psycopg.Connection, config: dict[str, Any]) -> None:
    """``dataset create`` with a terrain set and fixed stations: refuse (CliError) what the
    workers would refuse for every chunk, a station whose ``alt_m`` contradicts the set's
    ground (heimdall_synth.terrain.check_stations; loads the set into the local tile cache
    as a worker does). Skipped without an object store or with --no-terrain-check."""
    given = config.get("propagation")
    if args.no_terrain_check or not isinstance(given, dict) or not given.get("terrain"):
        return                          # the default has no terrain set: only a given one names it
    normalized = db.one(conn, "normalize_config", config=Jsonb(config))["config"]
    prop = normalized.get("propagation") or {}
    if not prop.get("terrain") or normalized.get("receivers", {}).get("mode") != "fixed":
        return
    if not s3_configured(args):
        print(f"note: the stations' alt_m was not checked against terrain set {printable(repr(prop['terrain']))} "
              "(no object store configured: --s3-* / $HEIMDALL_S3_*); the workers check it", file=sys.stderr)
        return
    from .terrain import check_stations

    errors = check_stations(conn, store_from_args(args), normalized)
    if errors:
        raise CliError(f"terrain set {prop['terrain']!r}: " + "; ".join(errors)
                       + " (the workers would fail every chunk; nothing was created)")


# ------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    import time

    from .demo import require_demo_libraries, run_demo
    from .localservices import ServiceError

    if not args.samples or any(n <= 0 for n in args.samples):
        raise CliError("--samples needs positive counts")
    try:
        require_demo_libraries()
    except ServiceError as exc:
        raise CliError(str(exc)) from exc
    t0 = time.monotonic()
    try:
        summary = run_demo(args.out, args.samples, workers=args.workers, chunk_size=args.chunk_size,
                           duration_ms=args.duration_ms, seed=args.seed, keep=args.keep)
    except KeyboardInterrupt:
        print("interrupted: services stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        raise CliError(f"demo failed: {exc}") from exc
    summary["elapsed_s"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\nheimdall-synth demo: done")
        for k, v in summary.items():
            if k != "services":
                print(f"  {k:>14}: {v}")
        if args.keep:
            print("\nservices left running (--keep). Connect with:\n  " + summary["psql"])
            print("and point the CLI at them with:\n  export " + summary["env"])
    return 0


# ------------------------------------------------------------------------------ parser
class Parser(argparse.ArgumentParser):
    """argparse with usage errors as a JSON object on stdout when ``--json`` is on the line
    (``json_errors``, set by ``main``); exit code 2 either way."""

    json_errors = False

    def error(self, message: str):  # type: ignore[override]
        if Parser.json_errors:
            sys.exit(report_error(message, None, EXIT_USAGE, json_mode=True))
        super().error(message)


def _positive(kind: type[int] | type[float] = int, maximum: float = 2**31 - 1) -> Callable[[str], Any]:
    return number_type(settings.Number("", kind, 1, maximum, None))


def _nonnegative(maximum: float = 2**31 - 1) -> Callable[[str], Any]:
    return number_type(settings.Number("", int, 0, maximum, None))


def _add_dataset_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    pds = sub.add_parser("dataset", help="create, expand, list, show, delete datasets", parents=[common])
    dss = pds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    x = dss.add_parser("create", help="create a dataset", parents=[common])
    x.add_argument("name")
    x.add_argument("--type", required=True, choices=["feature_based", "iq_raw"])
    x.add_argument("--config", help="JSON object, or @file.json (see `config keys`)")
    x.add_argument("--seed", type=int, default=None, help="generation seed (default: random)")
    x.add_argument("-n", "--num-samples", type=int, default=0, help="samples to request now")
    x.add_argument("--wait", action="store_true", help="wait for the samples (progress bar)")
    x.add_argument("--no-terrain-check", action="store_true",
                   help="with a terrain set: skip checking the fixed stations' alt_m against its ground "
                        "(the check loads the set's tiles into the local cache)")
    add_s3_arguments(x)
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
    x = dss.add_parser("card", help="print the dataset card (DATASET_CARD.md: config, counts, statistics, "
                                    "baseline, how to load)", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.add_argument("--range", metavar="A:B", help="samples the statistics cover (default: the committed prefix)")
    x.add_argument("--split", choices=["train", "val", "test"], help="only the samples of this stable split")
    x.set_defaults(func=cmd_dataset_card)

    pc = sub.add_parser("config", help="config keys, defaults and limits", parents=[common])
    cs = pc.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    x = cs.add_parser("keys", help="list keys with defaults and limits", parents=[common])
    x.set_defaults(func=cmd_config_keys)
    x = cs.add_parser("normalize", help="show the normalized form of a config", parents=[common])
    x.add_argument("config", nargs="?", default="{}")
    x.set_defaults(func=cmd_config_normalize)


def _add_worker_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = settings
    pw = sub.add_parser("worker", help="run a worker", parents=[common])
    ws = pw.add_subparsers(dest="worker_command", required=True, metavar="ACTION")
    x = ws.add_parser("run", help="claim chunks and generate them until stopped", parents=[common],
                      description="A worker process: `python -m worker` with flags over the "
                                  "HEIMDALL_* environment variables.")
    x.add_argument("--until-idle", action="store_true",
                   help="exit 0 once the queue is empty and no chunk is in flight "
                        f"(default ${s.WORKER_UNTIL_IDLE.var} or false)")
    add_s3_arguments(x, " (created if missing)")
    x.add_argument("--vt", type=number_type(s.WORKER_VT_S), default=None,
                   help=f"visibility timeout of a claimed chunk, {s.WORKER_VT_S.expected} "
                        f"(default ${s.WORKER_VT_S.var} or {s.WORKER_VT_S.default})")
    x.add_argument("--max-reads", type=number_type(s.WORKER_MAX_READS), default=None,
                   help=f"deliveries before a chunk is marked failed, {s.WORKER_MAX_READS.expected} "
                        f"(default ${s.WORKER_MAX_READS.var} or {s.WORKER_MAX_READS.default})")
    x.add_argument("--poll", type=number_type(s.WORKER_POLL_S), default=None,
                   help=f"seconds between polls of an empty queue, {s.WORKER_POLL_S.expected} "
                        f"(default ${s.WORKER_POLL_S.var} or {s.WORKER_POLL_S.default})")
    x.add_argument("--worker-id", default=None,
                   help=f"shown in progress views (default ${s.WORKER_ID.var} or host:pid)")
    x.add_argument("--max-chunks", type=number_type(s.WORKER_MAX_CHUNKS), default=None,
                   help=f"exit after this many chunks (default ${s.WORKER_MAX_CHUNKS.var} or no limit)")
    x.set_defaults(func=cmd_worker_run)


def _add_maintenance_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from .maintenance import GC_GRACE_S

    x = sub.add_parser("status", help="requests and their progress", parents=[common])
    x.add_argument("dataset", nargs="?", help="only this dataset (id or name)")
    x.add_argument("--request", help="one request id")
    x.add_argument("--wait", action="store_true", help="wait with a progress bar until finished")
    x.set_defaults(func=cmd_status)

    x = sub.add_parser("retry", help="re-enqueue the failed chunks of a dataset", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.set_defaults(func=cmd_retry)

    for name, helptext in (("pause", "pause a request (running chunks finish)"),
                           ("resume", "resume a paused request"),
                           ("abandon", "give back the unfinished tail of a request")):
        x = sub.add_parser(name, help=helptext, parents=[common])
        x.add_argument("request", help="request id")
        x.set_defaults(func=cmd_request_action)

    x = sub.add_parser("gc", help="remove objects of deleted datasets and unreferenced objects",
                       parents=[common])
    add_s3_arguments(x)
    x.add_argument("--grace", type=number_type(GC_GRACE_S), default=None,
                   help="only remove objects older than this many seconds "
                        f"(default ${GC_GRACE_S.var} or {GC_GRACE_S.default:g})")
    x.add_argument("--dry-run", action="store_true", help="list what would be removed")
    x.set_defaults(func=cmd_gc)

    stuck = number_type(settings.Number("", int, 0, 86400 * 365, None))
    x = sub.add_parser("validate", help="check a dataset (exit 0 healthy, 3 warning, 4 critical)",
                       parents=[common])
    x.add_argument("dataset", help="id or name")
    x.add_argument("--deep", action="store_true", help="also hash every sample's bytes")
    x.add_argument("--stuck-after", type=stuck, default=None,
                   help="a running chunk is stuck this many seconds after its visibility timeout "
                        "(default: heimdall.stuck_after_s(), 600)")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_validate)

    x = sub.add_parser("repair", help="fix what validate finds (dry run unless --apply)", parents=[common])
    x.add_argument("dataset", help="id or name")
    x.add_argument("--apply", action="store_true", help="carry the actions out")
    x.add_argument("--shallow", action="store_true", help="skip hashing sample bytes before repairing")
    x.add_argument("--grace", type=number_type(settings.Number("", float, 0, 86400 * 3650, None, "seconds")),
                   default=3600.0, help="orphans younger than this stay (s)")
    x.add_argument("--stuck-after", type=stuck, default=None, help="see validate")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_repair)


def _add_file_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    formats = ("parquet", "npz", "hdf5", "sigmf")   # heimdall_synth.export.FORMATS (not imported here)
    x = sub.add_parser("export", parents=[common],
                       help="write committed samples as parquet (features) or npz/hdf5/sigmf (IQ + features)",
                       description="Export the committed samples of a dataset into OUT/<name>/ with "
                                   "a manifest.json (sha256 of every file). Needs the export extra: "
                                   "pip install 'heimdall-synth[export]'.")
    x.add_argument("dataset", help="id or name")
    x.add_argument("--format", choices=formats, default="parquet",
                   help="parquet: features only; npz: IQ shards; hdf5: one IQ file; sigmf: a SigMF collection "
                        "per sample, one recording per receiver (default parquet)")
    x.add_argument("--out", default=".", help="parent directory (default .)")
    x.add_argument("--range", metavar="A:B",
                   help="half-open sample indices, all committed (default: the committed prefix)")
    x.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="only this stable split's samples of the range (fixed per sample at creation by "
                        "the config key splits; default: every sample)")
    x.add_argument("--shard-size", type=_positive(), default=1000, help="samples per npz shard (default 1000)")
    x.add_argument("--sigmf-archive", action="store_true",
                   help="with --format sigmf: each receiver's recording as one .sigmf archive (tar)")
    x.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT/<name>/")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_export)

    x = sub.add_parser("plot", parents=[common], help="PNG overview plots of a dataset",
                       description="Map of receivers and TX colored by GDOP, histograms of SNR per "
                                   "receiver, GDOP and receivers detected, and (iq_raw) one sample's "
                                   "spectrograms and constellations. Writes OUT/<name>/plots/*.png. "
                                   "--kind propagation: detection probability and RSSI vs distance next to "
                                   "the model's median (propagation_links.png). "
                                   "Needs the plots extra: pip install 'heimdall-synth[plots]'.")
    x.add_argument("dataset", help="id or name")
    x.add_argument("--kind", choices=("overview", "propagation"), default="overview",
                   help="overview: map, SNR, GDOP, receivers detected, one sample's IQ; propagation: who hears "
                        "the transmitter, detection probability and RSSI vs distance with the ITM median "
                        "(default overview)")
    x.add_argument("--out", default=".", help="parent directory (default .)")
    x.add_argument("--sample", type=_nonnegative(), default=None,
                   help="sample index for spectrogram/constellation (default 0; iq_raw only)")
    x.add_argument("--range", metavar="A:B", help="samples to summarize (default: the committed prefix)")
    x.add_argument("--max-samples", type=_positive(), default=20000,
                   help="summarize at most this many samples (default 20000)")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_plot)

    x = sub.add_parser("baseline", parents=[common],
                       help="classical TDOA multilateration: the accuracy a model must beat",
                       description="Solve every sample's transmitter position from its estimated TDOAs "
                                   "(never the truth), score it against the truth (CEP50, CEP90, RMSE "
                                   "overall, by GDOP bin and by receivers used; fraction solved) and record "
                                   "the run in heimdall.baseline_runs (role heimdall_admin; --no-store for "
                                   "readers). --plot needs the plots extra.")
    x.add_argument("dataset", help="id or name")
    x.add_argument("--range", metavar="A:B",
                   help="half-open sample indices, all committed (default: the committed prefix)")
    x.add_argument("--plot", metavar="DIR", help="write error_cdf.png, error_vs_gdop.png, error_map.png "
                                                 "to DIR/<name>/baseline/")
    x.add_argument("--tdoa-sigma-ns", type=number_type(settings.Number("", float, 0.001, 1e9, None, "ns")),
                   default=None,
                   help="TDOA sigma (ns) for the GDOP*c*sigma guide (default: median tdoa_std_s; none "
                        "without it)")
    x.add_argument("--per-sample", metavar="FILE", help="write each sample's error and estimate as CSV")
    x.add_argument("--no-store", action="store_true", help="compute and print only; record nothing")
    x.add_argument("--split", choices=["train", "val", "test"], help="only the samples of this stable split")
    x.add_argument("--latest", action="store_true", help="print the latest recorded run instead of solving")
    x.set_defaults(func=cmd_baseline)

    x = sub.add_parser("demo", help="run the whole life of a dataset on local throwaway services",
                       parents=[common],
                       description="Needs the local, export and plots extras: "
                                   "pip install 'heimdall-synth[local,export,plots]'.")
    x.add_argument("--samples", type=int, nargs="+", default=[50, 100, 200],
                   help="create with the first count, then expand by each of the others (default 50 100 200)")
    x.add_argument("--workers", type=_positive(int, 64), default=2, help="worker processes (default 2)")
    x.add_argument("--chunk-size", type=_positive(int, 10000), default=50, help="samples per chunk (default 50)")
    x.add_argument("--duration-ms", type=float, default=None, help="IQ length per receiver (default: config default)")
    x.add_argument("--seed", type=int, default=2026)
    x.add_argument("--out", default="heimdall-demo-out", help="where exports, plots and logs go")
    x.add_argument("--keep", action="store_true", help="leave Postgres and S3 running and print how to connect")
    x.set_defaults(func=cmd_demo)


def _add_terrain_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    pt = sub.add_parser("terrain", help="terrain sets (SRTM tiles) for ITM point-to-point mode", parents=[common])
    ts = pt.add_subparsers(dest="terrain_command", required=True, metavar="ACTION")
    x = ts.add_parser("import", parents=[common], help="validate, upload and register a directory of SRTM tiles",
                      description="Import DIR/*.hgt (SRTM1 3601 x 3601 or SRTM3 1201 x 1201, named like "
                                  "N45E007.hgt, unzipped) as terrain set NAME: checks names and sizes, uploads "
                                  "the tiles to the object store, registers the set (immutable; the same tiles "
                                  "again change nothing, other tiles under the name are refused before any "
                                  "upload). Needs heimdall_admin.")
    x.add_argument("name", help="terrain set name: 1 to 100 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    x.add_argument("directory", help="directory holding the .hgt tiles")
    add_s3_arguments(x, " (created if missing)")
    x.set_defaults(func=cmd_terrain_import)
    x = ts.add_parser("list", parents=[common], help="registered terrain sets: resolution, tiles, coverage, "
                                                     "digest, datasets using each")
    x.set_defaults(func=cmd_terrain_list)


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

    _add_dataset_commands(sub, common)
    _add_worker_commands(sub, common)
    _add_maintenance_commands(sub, common)
    _add_file_commands(sub, common)
    _add_terrain_commands(sub, common)
    return p


# -------------------------------------------------------------------------------- main
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
        target = db.Database(database_url)
        with target.connect() as conn:
            if not db.one(conn, "schema_present")["present"]:
                return True
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine, pool

        cfg = db.alembic_config(target.url)
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
    parser = build_parser()
    Parser.json_errors = json_mode
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
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
    from heimdall_synth.cli import main as _main

    sys.exit(_main())
