"""Export: datasets as files a person can use (``heimdall-synth export``).

Layout of ``export <dataset> --format F --out DIR`` (DIR/<name>/):

- ``features.parquet`` (every format): one row per sample, scalar columns as they are in
  ``heimdall.measurement_features`` (ground truth included), per-receiver arrays as list
  columns (length num_receivers), ``rejections`` as JSON text. float4 columns stay float32.
- ``--format npz``: ``iq_<first>-<last>.npz`` shards (inclusive, zero-padded indices) of at
  most ``--shard-size`` samples, arrays ``iq`` (n, R, L) in the stored dtype, ``sample_idx``
  int64 (n,), ``num_receivers`` int16 (n,) (rows >= num_receivers of ``iq`` are padding).
- ``--format hdf5``: one ``iq.h5`` with datasets ``iq`` chunked per sample, ``sample_idx``,
  ``num_receivers``; attributes name the dataset, sample rate, stored dtype and IQ units.

IQ is exported as stored, bit for bit (:data:`IQ_EXPORT`): ``complex64`` datasets as
complex64 (n, R, L) in sqrt(mW); ``ci16_le`` datasets (revision 0004's default) as the
receivers' int16 ADC codes (n, R, L, 2) (last axis I, Q) plus ``scale_mw`` float32 (n, R),
mW per code^2 (0 for padding rows): power in mW = mean(I^2 + Q^2) x scale_mw, and
``(iq[..., 0] + 1j * iq[..., 1]) * sqrt(scale_mw)[..., None]`` is the complex64 sqrt(mW)
signal (``worker.iqformat.ci16_to_complex64`` does exactly that, as HeimdallDataset).
- ``--format sigmf``: per sample ``sigmf/<idx>/``: one SigMF Recording per receiver
  (``.sigmf-data`` in the stored dtype, complex64 = ``cf32_le``; ``.sigmf-meta`` with the
  receiver's position, the emitter's truth in a ``signal:emitter`` annotation and the
  estimated features in the ``heimdall`` namespace) and a ``.sigmf-collection`` tying them
  (``heimdall_synth.sigmf_export`` documents every field); ``sigmf_archive``: each Recording
  as one ``.sigmf`` archive (tar) instead of its two files.
- ``DATASET_CARD.md`` (every format; ``heimdall_synth.card``): config in words and JSON,
  counts, detection / SNR / GDOP statistics of the exported range, the latest baseline run.
- ``manifest.json``, written last: dataset id/name/type, config, seed, generator and code
  versions, exported range, counts, and sha256 + size of every file. A directory without
  a manifest is an unfinished export.

Only committed samples are exported: the contiguous committed prefix by default, or
``--range A:B`` (half-open) if every index in it is committed; ``--split train|val|test``
keeps only that stable split's samples of it (``heimdall.split_of``; the IQ files then hold
those samples in index order, ``sample_idx`` says which). IQ bytes are read by byte
range from the object store and checked against their sha256 before they are written.
All database reads happen in one REPEATABLE READ snapshot.

Needs the ``export`` extra (pyarrow; h5py for hdf5; sigmf for sigmf): imported when an export runs, and a
missing one is a one-line error naming the extra.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from worker import __version__, db
from worker.errors import HeimdallError, InvalidInput
from worker.iqformat import NUMPY_DTYPES, array_shape, stored_dtype
from worker.rows import FEATURE_COLUMNS
from worker.storage import ObjectStore, decode_codes, decode_sample

from .card import CARD_FILE, card_markdown
from .extras import require
from .progress import progress_callback
from .reader import (
    committed_range,
    find_dataset,
    iter_iq_runs,
    reader_snapshot,
    safe_dirname,
    split_indices,
    split_params,
)
from .splits import SPLITS, fractions_of

FORMATS = ("parquet", "npz", "hdf5", "sigmf")
MANIFEST = "manifest.json"
FEATURES_FILE = "features.parquet"
HDF5_FILE = "iq.h5"
MANIFEST_VERSION = 1
# Feature rows per parquet row group / database page.
FEATURE_PAGE_ROWS = 5000
# Columns of measurement_features that are bookkeeping, not data.
_SKIP_COLUMNS = {"dataset_id"}
# How the IQ of each stored dtype is exported (npz, hdf5, manifest "iq"): the arrays and units.
IQ_EXPORT: dict[str, dict[str, Any]] = {
    "complex64": {"arrays": {"iq": "complex64 (n, R, L)"}, "units": "sqrt(mW)"},
    "ci16_le": {"arrays": {"iq": "int16 (n, R, L, 2): I, Q ADC codes", "scale_mw": "float32 (n, R)"},
                "units": "ADC codes; sqrt(mW) = code x sqrt(scale_mw), power mW = mean(I^2 + Q^2) x scale_mw"},
}


# ------------------------------------------------------------------------------ helpers
def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in ("numpy", "scipy", "numba", "pyarrow", "h5py", "sigmf"):
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pyarrow():
    return require("pyarrow", "export (features.parquet)")


def require_export_libraries(fmt: str) -> None:
    """Import what an export in ``fmt`` needs (MissingExtra naming the extra if absent), so
    a missing library fails before anything is read or written."""
    _pyarrow()
    require("pyarrow.parquet", "export (features.parquet)")
    if fmt == "hdf5":
        require("h5py", "export --format hdf5")
    if fmt == "sigmf":
        require("sigmf", "export --format sigmf")


def _arrow_type(pgtype: str):
    pa = _pyarrow()

    scalar = {"int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(),
              "float8": pa.float64(), "text": pa.string(), "jsonb": pa.string(), "bool": pa.bool_(),
              "uuid": pa.string()}
    if pgtype.endswith("[]"):
        return pa.list_(scalar[pgtype[:-2]])
    return scalar[pgtype]


def features_schema():
    """Arrow schema of features.parquet, from the column list the worker writes with
    (worker.rows.FEATURE_COLUMNS), so a new column shows up here with its type."""
    pa = _pyarrow()

    return pa.schema([(col, _arrow_type(t)) for col, t in FEATURE_COLUMNS if col not in _SKIP_COLUMNS])


class _Files:
    """Files of one export run: written to ``.tmp`` names, renamed into place when complete,
    removed again if the run fails (so a failed export leaves no half file behind)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: list[dict[str, Any]] = []
        self._tmp: list[Path] = []

    def tmp(self, name: str) -> Path:
        """Where to write ``name`` (a path relative to the root, folders made as needed)."""
        rel = Path(name)
        path = self.root / rel.parent / f".{rel.name}.tmp"
        path.parent.mkdir(parents=True, exist_ok=True)
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
            _remove_empty_dirs(p.parent, self.root)


# ------------------------------------------------------------------------------ features
def write_features(conn: psycopg.Connection, dataset_id: Any, first: int, stop: int, path: Path,
                   split: Mapping[str, Any] | None = None, expected: int | None = None) -> int:
    """features.parquet for [first, stop), one row group per database page; rows written.
    ``split``: the split_params of one split (its rows only; ``expected`` of them)."""
    pa = _pyarrow()
    pq = require("pyarrow.parquet", "export (features.parquet)")

    schema = features_schema()
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for page_first in range(first, stop, FEATURE_PAGE_ROWS):
            rows = db.run(conn, "export_features_page", dataset_id=dataset_id, first=page_first,
                          stop=min(stop, page_first + FEATURE_PAGE_ROWS),
                          **(split or {"split": None, "seed": None, "splits": None}))
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
    if n != (stop - first if expected is None else expected):
        raise HeimdallError(f"read {n} feature rows for {first}:{stop}; the dataset changed meanwhile?")
    return n


# ------------------------------------------------------------------------------ IQ
def iq_layout(conn: psycopg.Connection, dataset_id: Any, first: int, stop: int) -> dict[str, Any]:
    """The one (receivers, L) shape and sample rate of [first, stop); error if it varies."""
    layouts = db.run(conn, "iq_layouts_in_range", dataset_id=dataset_id, first=first, stop=stop)
    if len(layouts) != 1:
        raise InvalidInput(f"samples {first}:{stop} have {len(layouts)} IQ layouts "
                           f"({[(x['shape'], x['sample_rate_hz']) for x in layouts]}); export "
                           "ranges with one layout each (--range)")
    lay = layouts[0]
    return {"receivers": int(lay["shape"][0]), "length": int(lay["shape"][1]), "dtype": lay["dtype"],
            "sample_rate_hz": int(lay["sample_rate_hz"])}


def iter_iq_blocks(conn: psycopg.Connection, store: ObjectStore, dataset_id: Any, first: int, stop: int,
                   block: int, indices: list[int] | None = None
                   ) -> Iterator[tuple[int, int, list[Mapping[str, Any]], Iterator[tuple[Mapping[str, Any], bytes]]]]:
    """Per block of at most ``block`` samples: (first, stop, pointer rows, verified bytes).
    ``indices`` (ascending, within [first, stop)): only these samples (a split), ``block``
    of them at a time; stop is then one past the block's last index."""
    wanted: Sequence[int] = range(first, stop) if indices is None else indices   # a range stays small
    for k in range(0, len(wanted), block):
        sel = wanted[k:k + block]
        b0, b1 = sel[0], sel[-1] + 1
        rows = db.run(conn, "iq_rows_in_range", dataset_id=dataset_id, first=b0, stop=b1)
        if indices is not None:
            keep = set(sel)
            rows = [r for r in rows if r["sample_idx"] in keep]
        if [r["sample_idx"] for r in rows] != list(sel):
            raise HeimdallError(f"IQ rows of {b0}:{b1} changed while exporting")
        yield b0, b1, rows, iter_iq_runs(store, rows)


def _scales(rows: Sequence[Mapping[str, Any]], receivers: int) -> np.ndarray:
    """scale_mw of ci16_le rows as float32 (n, receivers); an absent or short one is an error."""
    out = np.zeros((len(rows), receivers), np.float32)
    for k, r in enumerate(rows):
        scale = r.get("scale_mw")
        if scale is None or len(scale) != receivers or any(v is None for v in scale):
            raise HeimdallError(f"ci16_le sample {r['sample_idx']} has no scale_mw for its {receivers} "
                                f"receiver slots: {scale!r}")
        out[k] = scale
    return out


def _write_npz_shard(path: Path, rows: list[Mapping[str, Any]], data: Iterator[tuple[Mapping[str, Any], bytes]],
                     receivers: int, length: int, dtype: str = "complex64") -> None:
    """Stream one .npz: the ``iq`` member is a .npy header followed by the samples' verified
    bytes, exactly as stored (little-endian complex64 (n, R, L), or ci16_le int16
    (n, R, L, 2) plus a ``scale_mw`` member), so memory stays at one object run and the
    exported IQ is bit-identical to the object store's."""
    n = len(rows)
    scale = _scales(rows, receivers) if dtype == "ci16_le" else None
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("iq.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": NUMPY_DTYPES[dtype][0].str, "fortran_order": False,
                     "shape": array_shape(n, receivers, length, dtype)})
            written = 0
            for _, raw in data:
                fh.write(raw)
                written += 1
            if written != n:
                raise HeimdallError(f"wrote {written} of {n} samples into {path.name}")
        members = [("sample_idx", np.array([r["sample_idx"] for r in rows], np.int64)),
                   ("num_receivers", np.array([r["num_receivers"] for r in rows], np.int16))]
        if scale is not None:
            members.append(("scale_mw", scale))
        for name, arr in members:
            with zf.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)


def export_dataset(conn: psycopg.Connection, ref: str, fmt: str, out: Path,
                   store: ObjectStore | Callable[[], ObjectStore] | None = None,
                   requested: tuple[int | None, int | None] | None = None, shard_size: int = 1000,
                   overwrite: bool = False, progress: bool = False,
                   split: str | None = None, sigmf_archive: bool = False) -> tuple[Path, dict[str, Any]]:
    """Export dataset ``ref`` as ``fmt`` into ``out/<name>/``; returns that directory and the
    manifest written there. ``split`` ("train", "val", "test"): that stable split's samples
    of the range only.

    ``store`` (or a callable giving one, so parquet exports never need S3 settings) is read
    for npz/hdf5. Raises InvalidInput / NotFound for bad input, IQIntegrityError for IQ that
    is missing or does not match its sha256 (files of this run are removed again).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if shard_size < 1:
        raise InvalidInput("--shard-size must be >= 1")
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if sigmf_archive and fmt != "sigmf":
        raise InvalidInput("--sigmf-archive goes with --format sigmf")
    require_export_libraries(fmt)
    with reader_snapshot(conn):
        ds = find_dataset(conn, ref)
        if fmt != "parquet" and ds["dataset_type"] != "iq_raw":
            raise InvalidInput(f"dataset {ds['name']!r} is {ds['dataset_type']}: it has no IQ to export "
                               f"as {fmt}; use --format parquet")
        first, stop = committed_range(conn, ds, requested)
        indices = None if split is None else split_indices(conn, ds, first, stop, split)
        if fmt != "parquet" and callable(store):
            store = store()
        root = out / safe_dirname(ds["name"])
        old = _previous_export(root, overwrite)
        root.mkdir(parents=True, exist_ok=True)
        files = _Files(root)
        try:
            layout = _write_all(conn, ds, fmt, files, store, first, stop, shard_size, progress, split, indices,
                                sigmf_archive)
            card = files.tmp(CARD_FILE)      # DATASET_CARD.md: what this export holds (card.py)
            card.write_text(card_markdown(conn, ds, first, stop, export_format=fmt, split=split))
            files.commit(CARD_FILE, card, kind="card", first_idx=first, last_idx=stop - 1,
                         samples=stop - first if indices is None else len(indices))
            manifest = _manifest(ds, fmt, first, stop, layout, files.written, split, indices)
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
            _remove_empty_dirs((root / name).parent, root)
    return root, manifest


def _safe_relative(name: str) -> bool:
    """A path a manifest may list: relative, inside the export, no hidden or '..' parts."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p and p not in (".", "..") and not p.startswith(".")
                                                           for p in parts)


def _remove_empty_dirs(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``root`` while they are empty."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


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
        old = [e["path"] for e in json.loads(path.read_text()).get("files", []) if _safe_relative(e["path"])]
    except (ValueError, KeyError, TypeError, AttributeError):
        old = []
    path.unlink()
    return old


def _write_all(conn: psycopg.Connection, ds: Mapping[str, Any], fmt: str, files: _Files,
               store: ObjectStore | None, first: int, stop: int, shard_size: int,
               progress: bool, split: str | None = None, indices: list[int] | None = None,
               sigmf_archive: bool = False) -> dict[str, Any] | None:
    n = stop - first if indices is None else len(indices)
    tmp = files.tmp(FEATURES_FILE)
    write_features(conn, ds["id"], first, stop, tmp, None if split is None else split_params(ds, split), n)
    files.commit(FEATURES_FILE, tmp, kind="features", first_idx=first, last_idx=stop - 1, samples=n)
    if fmt == "parquet":
        return None
    assert store is not None
    layout = iq_layout(conn, ds["id"], first, stop)
    r, length, dtype = layout["receivers"], layout["length"], stored_dtype(layout["dtype"])
    if dtype not in IQ_EXPORT:
        raise HeimdallError(f"IQ dtype {dtype!r} cannot be exported (known: {sorted(IQ_EXPORT)})")
    bar = progress_callback(n, progress, "export IQ")
    if fmt == "npz":
        for b0, b1, rows, data in iter_iq_blocks(conn, store, ds["id"], first, stop, shard_size, indices):
            name = f"iq_{b0:010d}-{b1 - 1:010d}.npz"
            tmp = files.tmp(name)
            _write_npz_shard(tmp, rows, data, r, length, dtype)
            files.commit(name, tmp, kind="iq", first_idx=b0, last_idx=b1 - 1, samples=len(rows))
            bar(len(rows))
    elif fmt == "sigmf":
        _write_sigmf(conn, ds, files, store, first, stop, shard_size, split, indices, bar, sigmf_archive)
    else:
        h5py = require("h5py", "export --format hdf5")
        tmp = files.tmp(HDF5_FILE)
        with h5py.File(tmp, "w") as h5:
            shape = array_shape(n, r, length, dtype)
            iq = h5.create_dataset("iq", shape=shape, dtype=NUMPY_DTYPES[dtype][0], chunks=(1, *shape[1:]))
            scale = (h5.create_dataset("scale_mw", shape=(n, r), dtype=np.float32) if dtype == "ci16_le"
                     else None)
            order = np.arange(first, stop, dtype=np.int64) if indices is None else np.array(indices, np.int64)
            # row of a sample in iq: idx - first, or (a split) its place in the index list
            row_of = ({int(v): k for k, v in enumerate(order)}.__getitem__ if indices is not None
                      else (lambda i: i - first))
            idx = h5.create_dataset("sample_idx", data=order)
            nrx = h5.create_dataset("num_receivers", shape=(n,), dtype=np.int16)
            h5.attrs.update({"dataset_id": str(ds["id"]), "dataset_name": ds["name"],
                             "sample_rate_hz": layout["sample_rate_hz"], "first_idx": first,
                             "stop_idx": stop, "iq_units": IQ_EXPORT[dtype]["units"], "iq_dtype": dtype,
                             "split": split or "all"})
            iq.attrs["axes"] = "sample, receiver, time" + (", I/Q" if dtype == "ci16_le" else "")
            if scale is not None:
                scale.attrs["units"] = "mW per code^2 (0: padding receiver slot)"
            idx.attrs["note"] = "row k of iq is sample sample_idx[k]"
            for _, _, rows, data in iter_iq_blocks(conn, store, ds["id"], first, stop, shard_size, indices):
                for row in rows:
                    nrx[row_of(int(row["sample_idx"]))] = row["num_receivers"]
                if scale is not None:
                    for row, sc in zip(rows, _scales(rows, r), strict=True):
                        scale[row_of(int(row["sample_idx"]))] = sc
                for row, raw in data:
                    iq[row_of(int(row["sample_idx"]))] = (decode_codes(raw, (r, length)) if dtype == "ci16_le"
                                                          else decode_sample(raw, (r, length)))
                bar(len(rows))
        files.commit(HDF5_FILE, tmp, kind="iq", first_idx=first, last_idx=stop - 1, samples=n)
    bar(None)
    return layout


def _write_sigmf(conn: psycopg.Connection, ds: Mapping[str, Any], files: _Files, store: ObjectStore, first: int,
                 stop: int, block: int, split: str | None, indices: list[int] | None,
                 bar: Callable[[int | None], None], archive: bool = False) -> None:
    """SigMF recordings and a collection per sample (heimdall_synth.sigmf_export)."""
    from .sigmf_export import write_sample

    params = {"split": None, "seed": None, "splits": None} if split is None else split_params(ds, split)
    checked = False
    for b0, b1, rows, data in iter_iq_blocks(conn, store, ds["id"], first, stop, min(block, FEATURE_PAGE_ROWS),
                                             indices):
        feats = {int(f["sample_idx"]): f for f in db.run(conn, "export_features_page", dataset_id=ds["id"],
                                                         first=b0, stop=b1, **params)}
        for row, raw in data:
            write_sample(files, ds, feats[int(row["sample_idx"])], row, raw, validate=not checked, archive=archive)
            checked = True
        bar(len(rows))


def _manifest(ds: Mapping[str, Any], fmt: str, first: int, stop: int, layout: dict[str, Any] | None,
              written: list[dict[str, Any]], split: str | None = None,
              indices: list[int] | None = None) -> dict[str, Any]:
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
        # the stable split exported (null: every sample of the range); split_of(seed, idx,
        # fractions) of heimdall_synth.splits tells any sample's split
        "split": {"name": split, "fractions": fractions_of(ds["config"]), "rule": "heimdall.split_of"},
        "counts": {"samples": stop - first if indices is None else len(indices), "files": len(written),
                   "bytes": sum(e["bytes"] for e in written)},
        "iq": None if layout is None else {
            **layout, "units": IQ_EXPORT[stored_dtype(layout["dtype"])]["units"],
            "arrays": IQ_EXPORT[stored_dtype(layout["dtype"])]["arrays"],
            "axes": ["sample", "receiver", "time"] + (["iq"] if layout["dtype"] == "ci16_le" else [])},
        "files": written,
        "created_at": datetime.now(UTC).isoformat(),
    }


__all__ = ["FORMATS", "MANIFEST", "export_dataset", "features_schema", "parse_range", "require_export_libraries",
           "safe_dirname"]
