"""``heimdall-synth export`` and ``heimdall-synth plot``: datasets as files a person can use.

Layout of ``export <dataset> --format F --out DIR`` (DIR/<name>/):

- ``features.parquet`` (every format): one row per sample, scalar columns as they are in
  ``heimdall.measurement_features`` (ground truth included), per-receiver arrays as list
  columns (length num_receivers), ``rejections`` as JSON text. float4 columns stay float32.
- ``--format npz``: ``iq_<first>-<last>.npz`` shards (inclusive, zero-padded indices) of at
  most ``--shard-size`` samples, arrays ``iq`` complex64 (n, R, L), ``sample_idx`` int64 (n,),
  ``num_receivers`` int16 (n,) (rows >= num_receivers of ``iq`` are padding).
- ``--format hdf5``: one ``iq.h5`` with datasets ``iq`` complex64 (n, R, L) chunked per
  sample, ``sample_idx``, ``num_receivers``; attributes name the dataset and sample rate.
- ``manifest.json``, written last: dataset id/name/type, config, seed, generator and code
  versions, exported range, counts, and sha256 + size of every file. A directory without
  a manifest is an unfinished export.

Only committed samples are exported: the contiguous committed prefix by default, or
``--range A:B`` (half-open) if every index in it is committed. IQ bytes are read by byte
range from the object store and checked against their sha256 before they are written.
All database reads happen in one REPEATABLE READ snapshot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from . import __version__, queries
from .cli import CliError, connect, emit
from .errors import HeimdallError, InvalidInput
from .maintenance import add_s3_arguments, store_from_args
from .rows import FEATURE_COLUMNS
from .storage import IQ_DTYPE, ObjectStore, decode_sample
from .training import committed_range, find_dataset, iter_iq_runs, reader_snapshot

FORMATS = ("parquet", "npz", "hdf5")
MANIFEST = "manifest.json"
FEATURES_FILE = "features.parquet"
HDF5_FILE = "iq.h5"
MANIFEST_VERSION = 1
# Feature rows per parquet row group / database page.
FEATURE_PAGE_ROWS = 5000
# Columns of measurement_features that are bookkeeping, not data.
_SKIP_COLUMNS = {"dataset_id"}


# ------------------------------------------------------------------------------ helpers
def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in ("numpy", "scipy", "numba", "pyarrow", "h5py"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "missing"
    return out


def parse_range(text: str | None) -> tuple[int | None, int | None] | None:
    """``"A:B"`` -> (A, B); ``"A:"`` / ``":B"`` leave one end open (None). None -> None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m:
        raise InvalidInput(f"--range must be A:B (half-open sample indices, e.g. 0:100), got {text!r}")
    a, b = (int(g) if g else None for g in m.groups())
    if a is not None and b is not None and b <= a:
        raise InvalidInput(f"--range {text!r} is empty: want A < B")
    return a, b


def safe_dirname(name: str) -> str:
    """A dataset name as one path component (names may hold '/', spaces, anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "dataset"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _arrow_type(pgtype: str):
    import pyarrow as pa

    scalar = {"int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(),
              "float8": pa.float64(), "text": pa.string(), "jsonb": pa.string(), "bool": pa.bool_(),
              "uuid": pa.string()}
    if pgtype.endswith("[]"):
        return pa.list_(scalar[pgtype[:-2]])
    return scalar[pgtype]


def features_schema():
    """Arrow schema of features.parquet, from the column list the worker writes with
    (worker.rows.FEATURE_COLUMNS), so a new column shows up here with its type."""
    import pyarrow as pa

    return pa.schema([(col, _arrow_type(t)) for col, t in FEATURE_COLUMNS if col not in _SKIP_COLUMNS])


class _Files:
    """Files of one export run: written to ``.tmp`` names, renamed into place when complete,
    removed again if the run fails (so a failed export leaves no half file behind)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: list[dict[str, Any]] = []
        self._tmp: list[Path] = []

    def tmp(self, name: str) -> Path:
        path = self.root / f".{name}.tmp"
        self._tmp.append(path)
        return path

    def commit(self, name: str, tmp: Path, **meta: Any) -> dict[str, Any]:
        final = self.root / name
        os.replace(tmp, final)
        self._tmp.remove(tmp)
        # Hash what is on disk (not what we meant to write): the manifest vouches for the file.
        entry = {"path": name, **meta, "bytes": final.stat().st_size, "sha256": file_sha256(final)}
        self.written.append(entry)
        return entry

    def replace(self, name: str, tmp: Path) -> None:
        """Move a finished file into place without listing it (the manifest itself)."""
        os.replace(tmp, self.root / name)
        self._tmp.remove(tmp)

    def abort(self) -> None:
        for p in [*self._tmp, *(self.root / e["path"] for e in self.written)]:
            p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ features
def write_features(conn: psycopg.Connection, dataset_id: Any, first: int, stop: int, path: Path) -> int:
    """features.parquet for [first, stop), one row group per database page; rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features_schema()
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for page_first in range(first, stop, FEATURE_PAGE_ROWS):
            rows = queries.run(conn, "export_features_page", dataset_id=dataset_id, first=page_first,
                               stop=min(stop, page_first + FEATURE_PAGE_ROWS))
            if rows and not set(schema.names) <= rows[0].keys():
                missing = sorted(set(schema.names) - rows[0].keys())
                raise HeimdallError(f"measurement_features lacks columns {missing} (schema older than code?)")
            cols = {}
            for field in schema:
                values = [r[field.name] for r in rows]
                if field.name == "rejections":
                    values = [json.dumps(v, sort_keys=True) for v in values]
                cols[field.name] = pa.array(values, type=field.type)
            writer.write_table(pa.table(cols, schema=schema))
            n += len(rows)
    if n != stop - first:
        raise HeimdallError(f"read {n} feature rows for {first}:{stop}; the dataset changed meanwhile?")
    return n


# ------------------------------------------------------------------------------ IQ
def iq_layout(conn: psycopg.Connection, dataset_id: Any, first: int, stop: int) -> dict[str, Any]:
    """The one (receivers, L) shape and sample rate of [first, stop); error if it varies."""
    layouts = queries.run(conn, "iq_layouts_in_range", dataset_id=dataset_id, first=first, stop=stop)
    if len(layouts) != 1:
        raise InvalidInput(f"samples {first}:{stop} have {len(layouts)} IQ layouts "
                           f"({[(x['shape'], x['sample_rate_hz']) for x in layouts]}); export "
                           "ranges with one layout each (--range)")
    lay = layouts[0]
    return {"receivers": int(lay["shape"][0]), "length": int(lay["shape"][1]), "dtype": lay["dtype"],
            "sample_rate_hz": int(lay["sample_rate_hz"])}


def iter_iq_blocks(conn: psycopg.Connection, store: ObjectStore, dataset_id: Any, first: int, stop: int,
                   block: int) -> Iterator[tuple[int, int, list[Mapping[str, Any]], Iterator[tuple[Mapping[str, Any], bytes]]]]:
    """Per block of at most ``block`` samples: (first, stop, pointer rows, verified bytes)."""
    for b0 in range(first, stop, block):
        b1 = min(stop, b0 + block)
        rows = queries.run(conn, "iq_rows_in_range", dataset_id=dataset_id, first=b0, stop=b1)
        if [r["sample_idx"] for r in rows] != list(range(b0, b1)):
            raise HeimdallError(f"IQ rows of {b0}:{b1} changed while exporting")
        yield b0, b1, rows, iter_iq_runs(store, rows)


def _write_npz_shard(path: Path, rows: list[Mapping[str, Any]], data: Iterator[tuple[Mapping[str, Any], bytes]],
                     receivers: int, length: int) -> None:
    """Stream one .npz: the ``iq`` member is a .npy header followed by the samples' verified
    bytes, exactly as stored (little-endian complex64), so memory stays at one object run
    and the exported IQ is bit-identical to the object store's."""
    n = len(rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("iq.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": IQ_DTYPE.str, "fortran_order": False, "shape": (n, receivers, length)})
            written = 0
            for _, raw in data:
                fh.write(raw)
                written += 1
            if written != n:
                raise HeimdallError(f"wrote {written} of {n} samples into {path.name}")
        for name, arr in (("sample_idx", np.array([r["sample_idx"] for r in rows], np.int64)),
                          ("num_receivers", np.array([r["num_receivers"] for r in rows], np.int16))):
            with zf.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)


def export_dataset(conn: psycopg.Connection, ref: str, fmt: str, out: Path,
                   store: ObjectStore | Callable[[], ObjectStore] | None = None,
                   requested: tuple[int | None, int | None] | None = None, shard_size: int = 1000,
                   overwrite: bool = False, progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Export dataset ``ref`` as ``fmt`` into ``out/<name>/``; returns that directory and the
    manifest written there.

    ``store`` (or a callable giving one, so parquet exports never need S3 settings) is read
    for npz/hdf5. Raises InvalidInput / NotFound for bad input, IQIntegrityError for IQ that
    is missing or does not match its sha256 (files of this run are removed again).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size < 1:
        raise InvalidInput("--shard-size must be >= 1")
    with reader_snapshot(conn):
        ds = find_dataset(conn, ref)
        if fmt != "parquet" and ds["dataset_type"] != "iq_raw":
            raise InvalidInput(f"dataset {ds['name']!r} is {ds['dataset_type']}: it has no IQ to export "
                               "as npz/hdf5; use --format parquet")
        first, stop = committed_range(conn, ds, requested)
        if fmt != "parquet" and callable(store):
            store = store()
        root = out / safe_dirname(ds["name"])
        old = _previous_export(root, overwrite)
        root.mkdir(parents=True, exist_ok=True)
        files = _Files(root)
        try:
            layout = _write_all(conn, ds, fmt, files, store, first, stop, shard_size, progress)
            manifest = _manifest(ds, fmt, first, stop, layout, files.written)
            tmp = files.tmp(MANIFEST)
            tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            files.replace(MANIFEST, tmp)
        except BaseException:
            files.abort()
            raise
    # The new manifest is in place: files of the previous export that it does not list go.
    keep = {e["path"] for e in files.written} | {MANIFEST}
    for name in old:
        if name not in keep:
            (root / name).unlink(missing_ok=True)
    return root, manifest


def _previous_export(root: Path, overwrite: bool) -> list[str]:
    """Files listed by an existing export in ``root``. Without --overwrite that is an error;
    with it the old manifest goes first, so no manifest ever describes files being replaced."""
    path = root / MANIFEST
    if not path.exists():
        return []
    if not overwrite:
        raise InvalidInput(f"{root} already holds an export (manifest.json); give --overwrite or "
                           "another --out")
    try:
        old = [e["path"] for e in json.loads(path.read_text()).get("files", [])
               if "/" not in e["path"] and not e["path"].startswith(".")]
    except (ValueError, KeyError, TypeError, AttributeError):
        old = []
    path.unlink()
    return old


def _write_all(conn: psycopg.Connection, ds: Mapping[str, Any], fmt: str, files: _Files,
               store: ObjectStore | None, first: int, stop: int, shard_size: int,
               progress: bool) -> dict[str, Any] | None:
    n = stop - first
    tmp = files.tmp(FEATURES_FILE)
    write_features(conn, ds["id"], first, stop, tmp)
    files.commit(FEATURES_FILE, tmp, kind="features", first_idx=first, last_idx=stop - 1, samples=n)
    if fmt == "parquet":
        return None
    assert store is not None
    layout = iq_layout(conn, ds["id"], first, stop)
    r, length = layout["receivers"], layout["length"]
    bar = _progress(n, progress)
    if fmt == "npz":
        for b0, b1, rows, data in iter_iq_blocks(conn, store, ds["id"], first, stop, shard_size):
            name = f"iq_{b0:010d}-{b1 - 1:010d}.npz"
            tmp = files.tmp(name)
            _write_npz_shard(tmp, rows, data, r, length)
            files.commit(name, tmp, kind="iq", first_idx=b0, last_idx=b1 - 1, samples=b1 - b0)
            bar(b1 - b0)
    else:
        import h5py

        tmp = files.tmp(HDF5_FILE)
        with h5py.File(tmp, "w") as h5:
            iq = h5.create_dataset("iq", shape=(n, r, length), dtype=np.complex64, chunks=(1, r, length))
            idx = h5.create_dataset("sample_idx", data=np.arange(first, stop, dtype=np.int64))
            nrx = h5.create_dataset("num_receivers", shape=(n,), dtype=np.int16)
            h5.attrs.update({"dataset_id": str(ds["id"]), "dataset_name": ds["name"],
                             "sample_rate_hz": layout["sample_rate_hz"], "first_idx": first,
                             "stop_idx": stop, "iq_units": "sqrt(mW)"})
            iq.attrs["axes"] = "sample, receiver, time"
            idx.attrs["note"] = "row k of iq is sample first_idx + k"
            for b0, b1, rows, data in iter_iq_blocks(conn, store, ds["id"], first, stop, shard_size):
                nrx[b0 - first:b1 - first] = [row["num_receivers"] for row in rows]
                for row, raw in data:
                    iq[int(row["sample_idx"]) - first] = decode_sample(raw, (r, length))
                bar(b1 - b0)
        files.commit(HDF5_FILE, tmp, kind="iq", first_idx=first, last_idx=stop - 1, samples=n)
    bar(None)
    return layout


def _progress(total: int, enabled: bool) -> Callable[[int | None], None]:
    """A progress callback (tqdm on stderr when it is a terminal); None closes it."""
    if not enabled:
        return lambda _n: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="sample", file=sys.stderr, desc="export IQ")

    def step(k: int | None) -> None:
        if k is None:
            bar.close()
        else:
            bar.update(k)
    return step


def _manifest(ds: Mapping[str, Any], fmt: str, first: int, stop: int, layout: dict[str, Any] | None,
              written: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "dataset": {"id": str(ds["id"]), "name": ds["name"], "type": ds["dataset_type"],
                    "config": ds["config"], "seed": ds["seed"],
                    "generator_version": ds["generator_version"],
                    "created_at": ds["created_at"].isoformat() if ds.get("created_at") else None},
        "code_version": __version__,
        # the libraries that shape generated bytes and exported files (bit-identity of
        # regenerated samples is promised for the same builds only)
        "library_versions": _library_versions(),
        "format": fmt,
        "range": {"first_idx": first, "stop_idx": stop, "last_idx": stop - 1},
        "counts": {"samples": stop - first, "files": len(written),
                   "bytes": sum(e["bytes"] for e in written)},
        "iq": None if layout is None else {**layout, "units": "sqrt(mW)",
                                          "axes": ["sample", "receiver", "time"]},
        "files": written,
        "created_at": datetime.now(UTC).isoformat(),
    }


# ------------------------------------------------------------------------------ CLI
def out_error(out: str, exc: OSError) -> CliError:
    """A file-system error under --out (not a directory, no permission, disk full...) as
    one line naming the option, the directory and the file that failed."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != out else ""
    return CliError(f"cannot write to --out {out}: {exc.strerror or exc}{where}")


def cmd_export(args: argparse.Namespace) -> int:
    requested = parse_range(args.range)
    with connect(args) as conn:
        try:
            root, manifest = export_dataset(conn, args.dataset, args.format, Path(args.out),
                                            store=lambda: store_from_args(args), requested=requested,
                                            shard_size=args.shard_size, overwrite=args.overwrite,
                                            progress=not args.json and sys.stderr.isatty())
        except OSError as exc:
            raise out_error(args.out, exc) from exc
    if args.json:
        emit(args, manifest)
        return 0
    rng, counts = manifest["range"], manifest["counts"]
    print(f"exported {manifest['dataset']['name']!r} samples {rng['first_idx']}:{rng['stop_idx']} "
          f"({counts['samples']}) as {manifest['format']} to {root}")
    emit(args, manifest["files"], columns=["path", "kind", "first_idx", "last_idx", "samples", "bytes"])
    print(f"{counts['files']} files, {counts['bytes']} bytes (+ {MANIFEST})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_dataset  # matplotlib only when plotting

    requested = parse_range(args.range)
    with connect(args) as conn:
        try:
            paths = plot_dataset(conn, args.dataset, Path(args.out), store=lambda: store_from_args(args),
                                 sample=args.sample, requested=requested, max_samples=args.max_samples)
        except OSError as exc:
            raise out_error(args.out, exc) from exc
    if args.json:
        emit(args, [str(p) for p in paths])
    else:
        for p in paths:
            print(p)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the ``export`` and ``plot`` sub-commands."""
    x = sub.add_parser("export", parents=[common],
                       help="write committed samples as parquet (features) or npz/hdf5 (IQ + features)",
                       description="Export the committed samples of a dataset into OUT/<name>/ with "
                                   "a manifest.json (sha256 of every file).")
    x.add_argument("dataset", help="id or name")
    x.add_argument("--format", choices=FORMATS, default="parquet",
                   help="parquet: features only; npz: IQ shards; hdf5: one IQ file (default parquet)")
    x.add_argument("--out", default=".", help="parent directory (default .)")
    x.add_argument("--range", metavar="A:B",
                   help="half-open sample indices, all committed (default: the committed prefix)")
    x.add_argument("--shard-size", type=_positive_int, default=1000,
                   help="samples per npz shard (default 1000)")
    x.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT/<name>/")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_export)

    x = sub.add_parser("plot", parents=[common], help="PNG overview plots of a dataset",
                       description="Map of receivers and TX colored by GDOP, histograms of SNR per "
                                   "receiver, GDOP and receivers detected, and (iq_raw) one sample's "
                                   "spectrograms and constellations. Writes OUT/<name>/plots/*.png.")
    x.add_argument("dataset", help="id or name")
    x.add_argument("--out", default=".", help="parent directory (default .)")
    x.add_argument("--sample", type=_nonnegative_int, default=None,
                   help="sample index for spectrogram/constellation (default 0; iq_raw only)")
    x.add_argument("--range", metavar="A:B", help="samples to summarize (default: the committed prefix)")
    x.add_argument("--max-samples", type=_positive_int, default=20000,
                   help="summarize at most this many samples (default 20000)")
    add_s3_arguments(x)
    x.set_defaults(func=cmd_plot)


__all__ = ["FORMATS", "export_dataset", "features_schema", "parse_range", "register",
           "safe_dirname"]
