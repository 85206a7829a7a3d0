"""SigMF files of a dataset's samples (``heimdall-synth export --format sigmf``).

SigMF (https://sigmf.org, the RF community's recording format) has no multi-receiver
recording: a capture by several receivers is a *Collection* of Recordings, one per receiver.
Per exported sample ``N`` (zero-padded to 10 digits), in ``sigmf/N/``:

- ``N_rxKK.sigmf-data``: the IQ of receiver ``KK`` (its index in the sample's
  ``receiver_ids``), exactly the bytes the object store holds (stored dtype ``complex64`` is
  SigMF ``cf32_le``, in sqrt(mW); ``ci16_le`` is SigMF ``ci16_le``, the receiver's ADC codes,
  whose power in mW is mean(I^2 + Q^2) x ``heimdall:scale_mw``; :data:`DATATYPES` maps every
  stored dtype), ``L`` samples.
- ``N_rxKK.sigmf-meta``: ``global``: ``core:datatype``, ``core:sample_rate``,
  ``core:sha512`` of the data file, ``core:geolocation`` = the receiver's position as a
  GeoJSON Point ``[lon, lat, alt_m]``, ``core:collection`` = ``N``, ``core:extensions``
  (``signal`` 1.0.0 and ``heimdall``, both optional), ``heimdall:receiver_id`` and the
  sample's coordinates (below). ``captures``: one, at sample 0: ``core:frequency`` = the
  carrier (``frequency_hz``) and ``core:datetime`` = when the sample was generated
  (``measurement_features.created_at``, UTC): a synthetic capture has no air time, and all
  receivers of a sample share it (one simultaneous capture). ``annotations`` (both over
  the whole recording):

  1. ground truth: ``core:label`` = the message kind (voice, tone, dtmf, audio),
     ``core:freq_lower_edge`` / ``core:freq_upper_edge`` = carrier -/+ half the channel
     (``bandwidth_hz`` of the config), ``signal:detail`` {type analog, mod_class fm,
     channel_bw} and ``signal:emitter`` {``seid`` = the sample index, ``power_tx`` =
     ``tx_power_dbm``, ``geolocation`` = the transmitter as a GeoJSON Point [lon, lat,
     alt_m]} (SigMF ``signal`` extension v1.0.0), plus ``heimdall:truth`` = this receiver's
     ground-truth columns (``true_*``, ``distance_m``, ``path_loss_db``, ``los``, ...);
  2. estimates: ``core:label`` "estimated", ``heimdall:estimated`` = this receiver's
     features estimated from the IQ (:data:`ESTIMATED`: what HeimdallDataset's features
     hold, plus ``toa_s`` and ``tdoa_std_s``).
- ``N.sigmf-collection``: ``core:streams`` = ``[{"name": "N_rxKK", "hash": sha512 of that
  .sigmf-meta}, ...]`` in receiver order, ``heimdall:sample`` = the sample's scalar columns
  (ground truth and quality: tx position and power, gdop, receivers detected, ...),
  ``heimdall:receiver_ids``.

With ``--sigmf-archive`` each Recording is instead one SigMF Archive ``N_rxKK.sigmf``: a
tar (POSIX pax) holding ``N_rxKK/N_rxKK.sigmf-meta`` and ``N_rxKK/N_rxKK.sigmf-data``
(the same bytes as the two files; SigMF tools open it directly, and the collection's
``core:streams`` hash is that of the .sigmf-meta inside).

The ``heimdall`` namespace (version :data:`NAMESPACE_VERSION`) is this document; every
key of it also appears in ``global`` of each .sigmf-meta: ``heimdall:dataset_id``,
``heimdall:dataset_name``, ``heimdall:seed``, ``heimdall:sample_idx``,
``heimdall:receiver_index``, ``heimdall:split`` (the sample's stable split),
``heimdall:iq_units`` ("sqrt(mW)" for cf32_le; for ci16_le "ADC codes; sqrt(mW) = code x
sqrt(heimdall:scale_mw)") and, ci16_le only, ``heimdall:scale_mw`` (this receiver's mW per
code^2, from the IQ row). NaN (a receiver that heard nothing) is written as null.

Padding receivers of a sample (rows >= num_receivers of its stored IQ) are not written.
Needs the ``sigmf`` package (the ``export`` extra), which checks the metadata of the
first sample of every export against the SigMF schema before anything else is written.
"""

from __future__ import annotations

import hashlib
import io
import math
import tarfile
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import PurePosixPath
from typing import Any, Protocol

from worker import __version__
from worker.errors import HeimdallError
from worker.iqformat import BYTES_PER_IQ_SAMPLE, CI16_LE, COMPLEX64, stored_dtype
from worker.rows import ESTIMATED_PER_RECEIVER, FEATURE_COLUMNS

from .extras import require
from .splits import split_of

SIGMF_DIR = "sigmf"
NAMESPACE = "heimdall"
NAMESPACE_VERSION = "1.0.0"
EXTENSIONS = [{"name": "signal", "version": "1.0.0", "optional": True},
              {"name": NAMESPACE, "version": NAMESPACE_VERSION, "optional": True}]
# stored IQ dtype (heimdall.synthetic_iq_samples.dtype) -> SigMF core:datatype, bytes per sample
DATATYPES: dict[str, tuple[str, int]] = {COMPLEX64: ("cf32_le", BYTES_PER_IQ_SAMPLE[COMPLEX64]),
                                         CI16_LE: ("ci16_le", BYTES_PER_IQ_SAMPLE[CI16_LE])}
IQ_UNITS_CI16 = f"ADC codes; sqrt(mW) = code x sqrt({NAMESPACE}:scale_mw)"

_ARRAYS = [c for c, t in FEATURE_COLUMNS if t.endswith("[]")]
_POSITION = {"receiver_ids", "rx_lat", "rx_lon", "rx_alt_m"}
# Per-receiver columns estimated from the IQ (the rest of the arrays are ground truth).
ESTIMATED: tuple[str, ...] = tuple(c for c in (*ESTIMATED_PER_RECEIVER, "toa_s", "tdoa_std_s") if c in _ARRAYS)
TRUTH: tuple[str, ...] = tuple(c for c in _ARRAYS if c not in _POSITION and c not in ESTIMATED)
SCALARS: tuple[str, ...] = tuple(c for c, t in FEATURE_COLUMNS
                                 if not t.endswith("[]") and c not in ("dataset_id", "sample_idx"))


class FileSink(Protocol):
    """What writes the files of an export (heimdall_synth.export._Files)."""

    def tmp(self, name: str) -> Any: ...

    def commit(self, name: str, tmp: Any, **meta: Any) -> dict[str, Any]: ...


def require_sigmf():
    return require("sigmf", "export --format sigmf")


def datatype_of(stored: str) -> tuple[str, int]:
    """SigMF ``core:datatype`` and bytes per complex sample of a stored IQ dtype."""
    try:
        return DATATYPES[stored]
    except KeyError:
        raise HeimdallError(f"IQ dtype {stored!r} has no SigMF datatype here (known: {sorted(DATATYPES)})") from None


def sample_dir(sample_idx: int) -> str:
    return f"{SIGMF_DIR}/{sample_idx:010d}"


def recording_name(sample_idx: int, k: int) -> str:
    return f"{sample_idx:010d}_rx{k:02d}"


def _json_value(v: Any) -> Any:
    """A database value as JSON: NaN / infinity -> null (JSON has neither), numbers as float."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if v is not None and not isinstance(v, (bool, int, float, str)):
        return float(v)                                 # Decimal and friends
    return v


def _at(values: Sequence[Any] | None, k: int) -> Any:
    return None if values is None else _json_value(values[k])


def _point(lon: float, lat: float, alt: float | None) -> dict[str, Any]:
    coords = [float(lon), float(lat)] + ([] if alt is None else [float(alt)])
    return {"type": "Point", "coordinates": coords}


def _datetime(value: Any) -> str:
    """ISO 8601 in UTC with a Z, as SigMF's core:datetime wants it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(ds: Mapping[str, Any], idx: int, split: str) -> dict[str, Any]:
    return {f"{NAMESPACE}:dataset_id": str(ds["id"]), f"{NAMESPACE}:dataset_name": ds["name"],
            f"{NAMESPACE}:seed": int(ds["seed"]), f"{NAMESPACE}:sample_idx": idx, f"{NAMESPACE}:split": split}


def recording_metadata(ds: Mapping[str, Any], feat: Mapping[str, Any], k: int, length: int, sample_rate_hz: int,
                       datatype: str, data_sha512: str, split: str,
                       scale_mw: float | None = None) -> dict[str, Any]:
    """The .sigmf-meta of receiver ``k`` of sample ``feat`` (see the module docstring);
    ``scale_mw``: mW per code^2 of a ci16_le recording (None for cf32_le)."""
    idx = int(feat["sample_idx"])
    freq = float(feat["frequency_hz"])
    half_bw = float(ds["config"]["bandwidth_hz"]) / 2
    rx_id = str(feat["receiver_ids"][k])
    glob = {
        "core:datatype": datatype,
        "core:sample_rate": float(sample_rate_hz),
        "core:num_channels": 1,
        "core:sha512": data_sha512,
        "core:geolocation": _point(feat["rx_lon"][k], feat["rx_lat"][k], feat["rx_alt_m"][k]),
        "core:collection": f"{idx:010d}",
        "core:recorder": f"heimdall-synth {__version__}",
        "core:description": f"dataset {ds['name']} sample {idx} receiver {rx_id} ({k + 1} of "
                            f"{int(feat['num_receivers'])}): synthetic",
        "core:extensions": EXTENSIONS,
        **_common(ds, idx, split),
        f"{NAMESPACE}:receiver_id": rx_id,
        f"{NAMESPACE}:receiver_index": k,
        f"{NAMESPACE}:iq_units": "sqrt(mW)" if scale_mw is None else IQ_UNITS_CI16,
        **({} if scale_mw is None else {f"{NAMESPACE}:scale_mw": float(scale_mw)}),
    }
    capture = {"core:sample_start": 0, "core:frequency": freq, "core:datetime": _datetime(feat["created_at"])}
    generator = f"heimdall-synth {ds.get('generator_version') or __version__}"
    truth = {
        "core:sample_start": 0, "core:sample_count": length,
        "core:label": str(feat["signal_kind"]),
        "core:freq_lower_edge": freq - half_bw, "core:freq_upper_edge": freq + half_bw,
        "core:generator": generator,
        "core:comment": "ground truth: the emitter of this synthetic sample",
        "signal:detail": {"type": "analog", "mod_class": "fm", "channel_bw": 2 * half_bw},
        "signal:emitter": {"seid": idx, "power_tx": _json_value(feat["tx_power_dbm"]),
                           "geolocation": _point(feat["tx_lon"], feat["tx_lat"], feat["tx_alt_m"])},
        f"{NAMESPACE}:truth": {c: _at(feat.get(c), k) for c in TRUTH},
    }
    estimated = {
        "core:sample_start": 0, "core:sample_count": length,
        "core:label": "estimated",
        "core:generator": generator,
        "core:comment": "features estimated from this recording's IQ (heimdall:estimated)",
        f"{NAMESPACE}:estimated": {c: _at(feat.get(c), k) for c in ESTIMATED},
    }
    return {"global": glob, "captures": [capture], "annotations": [truth, estimated]}


def collection_metadata(ds: Mapping[str, Any], feat: Mapping[str, Any], streams: list[dict[str, str]],
                        split: str) -> dict[str, Any]:
    """The .sigmf-collection of sample ``feat``: its recordings and the sample's scalars."""
    sigmf = require_sigmf()
    idx = int(feat["sample_idx"])
    return {"collection": {
        "core:version": sigmf.__specification__,
        "core:description": f"dataset {ds['name']} sample {idx}: one synthetic transmission heard by "
                            f"{len(streams)} receivers (one recording each)",
        "core:extensions": [e for e in EXTENSIONS if e["name"] == NAMESPACE],
        "core:streams": streams,
        **_common(ds, idx, split),
        f"{NAMESPACE}:receiver_ids": [str(r) for r in feat["receiver_ids"]],
        f"{NAMESPACE}:sample": {c: _json_value(feat.get(c)) for c in SCALARS},
    }}


def check_collection(collection: Mapping[str, Any]) -> None:
    """The collection against sigmf's collection schema, and ``core:streams`` as the SigMF
    specification words it: an array of objects {"name", "hash" (128 hex digits)}.

    (sigmf 1.x ships a collection schema whose ``core:streams`` items are arrays of
    strings, while its own writer and the specification's text use objects: that one
    property is checked here instead of by the schema.)"""
    sigmf = require_sigmf()
    import jsonschema  # a dependency of sigmf

    schema = sigmf.schema.get_schema(schema_file=sigmf.schema.SCHEMA_COLLECTION)
    body = {k: v for k, v in collection["collection"].items() if k != "core:streams"}
    jsonschema.validate({"collection": body}, schema)
    streams = collection["collection"]["core:streams"]
    for s in streams:
        if (set(s) != {"name", "hash"} or not isinstance(s["name"], str) or not isinstance(s["hash"], str)
                or len(s["hash"]) != 128 or any(ch not in "0123456789abcdef" for ch in s["hash"])):
            raise HeimdallError(f"collection stream {s!r} is not {{'name', 'hash' (sha512)}}")


def _write_archive(path: Any, base: str, meta: bytes, data: bytes, mtime: float) -> None:
    """A SigMF Archive: an uncompressed pax tar of ``base/base.sigmf-meta`` and
    ``base/base.sigmf-data``, with fixed owners and times (same input, same bytes)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo(base)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, mtime
        tar.addfile(folder)
        for ext, blob in (("sigmf-meta", meta), ("sigmf-data", data)):
            info = tarfile.TarInfo(f"{base}/{base}.{ext}")
            info.size, info.mode, info.mtime = len(blob), 0o644, mtime
            tar.addfile(info, io.BytesIO(blob))


def write_sample(files: FileSink, ds: Mapping[str, Any], feat: Mapping[str, Any], iq_row: Mapping[str, Any],
                 raw: bytes, *, validate: bool = False, archive: bool = False) -> None:
    """The files of one sample: per real receiver a .sigmf-data (its slice of ``raw``, the
    verified stored bytes) and .sigmf-meta (``archive``: both in one .sigmf archive), then
    the .sigmf-collection. ``validate``: check the metadata against the SigMF schema first
    (once per export is enough: every sample's metadata has the same structure)."""
    sigmf = require_sigmf()
    idx = int(feat["sample_idx"])
    if int(iq_row["sample_idx"]) != idx:
        raise HeimdallError(f"IQ row of sample {iq_row['sample_idx']} paired with features of {idx}")
    datatype, itemsize = datatype_of(stored_dtype(iq_row.get("dtype")))
    rows, length = (int(v) for v in iq_row["shape"])
    if len(raw) != rows * length * itemsize:
        raise HeimdallError(f"sample {idx}: {len(raw)} bytes of IQ for shape {rows}x{length} of {datatype}")
    nr = int(feat["num_receivers"])
    if nr > rows:
        raise HeimdallError(f"sample {idx} has {nr} receivers but IQ for only {rows}")
    split = split_of(int(ds["seed"]), idx, ds["config"].get("splits"))
    folder = PurePosixPath(sample_dir(idx))
    per = length * itemsize
    scales = None
    if datatype == "ci16_le":
        scales = iq_row.get("scale_mw")
        if scales is None or len(scales) != rows or any(v is None or not v > 0 for v in scales[:nr]):
            raise HeimdallError(f"sample {idx}: ci16_le IQ without a positive scale_mw per receiver ({scales!r})")
    streams = []
    for k in range(nr):
        base = recording_name(idx, k)
        data = raw[k * per:(k + 1) * per]
        meta = recording_metadata(ds, feat, k, length, int(iq_row["sample_rate_hz"]), datatype,
                                  hashlib.sha512(data).hexdigest(), split,
                                  None if scales is None else float(scales[k]))
        recording = sigmf.SigMFFile(metadata=meta)
        if validate:
            recording.validate()
        text = (recording.dumps(pretty=True) + "\n").encode()
        if archive:
            name = str(folder / f"{base}.sigmf")
            tmp = files.tmp(name)
            _write_archive(tmp, base, text, data, feat["created_at"].timestamp())
            files.commit(name, tmp, kind="sigmf-archive", first_idx=idx, last_idx=idx, samples=1)
        else:
            for ext, blob in (("sigmf-data", data), ("sigmf-meta", text)):
                name = str(folder / f"{base}.{ext}")
                tmp = files.tmp(name)
                tmp.write_bytes(blob)
                files.commit(name, tmp, kind=ext, first_idx=idx, last_idx=idx, samples=1)
        streams.append({"name": base, "hash": hashlib.sha512(text).hexdigest()})
    coll = collection_metadata(ds, feat, streams, split)
    if validate:
        check_collection(coll)
    doc = sigmf.SigMFCollection(metadata=coll, skip_checksums=True)
    name = str(folder / f"{idx:010d}.sigmf-collection")
    tmp = files.tmp(name)
    tmp.write_bytes((doc.dumps(pretty=True) + "\n").encode())
    files.commit(name, tmp, kind="sigmf-collection", first_idx=idx, last_idx=idx, samples=1)


__all__ = ["DATATYPES", "ESTIMATED", "EXTENSIONS", "NAMESPACE", "NAMESPACE_VERSION", "SCALARS", "SIGMF_DIR", "TRUTH",
           "check_collection", "collection_metadata", "datatype_of", "recording_metadata", "recording_name",
           "require_sigmf", "sample_dir", "write_sample"]
