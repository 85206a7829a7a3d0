"""SigMF files of one sample (heimdall_synth.sigmf_export), without a database: every file
loads with the sigmf package, its metadata passes SigMF's schema, the data is the stored
bytes in the stored dtype (cf32_le for complex64, ci16_le for complex int16), padding
receivers are left out, and NaN becomes null. The database-backed round trip is in
tests/acceptance/test_export_sigmf_splits.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

sigmf = pytest.importorskip("sigmf")

from heimdall_synth.export import _Files  # noqa: E402
from heimdall_synth.sigmf_export import (  # noqa: E402
    DATATYPES,
    ESTIMATED,
    TRUTH,
    check_collection,
    datatype_of,
    write_sample,
)
from heimdall_synth.splits import split_of  # noqa: E402
from worker.errors import HeimdallError  # noqa: E402

DS = {"id": uuid.UUID(int=7), "name": "unit", "seed": 11, "generator_version": "test",
      "config": {"bandwidth_hz": 12500, "splits": {"train": 0.5, "val": 0.25, "test": 0.25}}}


def feature_row(idx: int = 42, nr: int = 3) -> dict:
    row = {"sample_idx": idx, "frequency_hz": 145e6, "signal_kind": "tone", "num_receivers": nr,
           "receiver_ids": [f"rx{k}" for k in range(nr)], "rx_lat": [45 + k / 10 for k in range(nr)],
           "rx_lon": [7 + k / 10 for k in range(nr)], "rx_alt_m": [100.0 + k for k in range(nr)],
           "tx_lat": 45.05, "tx_lon": 7.5, "tx_alt_m": 321.5, "tx_power_dbm": 37.0, "gdop": 2.5,
           "created_at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "rejections": {"gdop": 1}}
    for c in (*ESTIMATED, *TRUTH):
        row[c] = [float(k) + 0.5 for k in range(nr)]
    row["snr_db"] = [12.0, float("nan"), 3.0]           # an undetected receiver: NaN -> null
    row["signal_present"] = [True, False, True]
    return row


def write(tmp_path, dtype: str, stored: np.ndarray, feat: dict, validate: bool = True, archive: bool = False,
          scale_mw: list[float] | None = None):
    files = _Files(tmp_path)
    iq_row = {"sample_idx": feat["sample_idx"], "shape": list(stored.shape[:2]), "dtype": dtype,
              "sample_rate_hz": 50000, "scale_mw": scale_mw}
    write_sample(files, DS, feat, iq_row, stored.tobytes(), validate=validate, archive=archive)
    return files.written


def load_sample(folder, idx: int, autoscale: bool = True):
    coll = sigmf.fromfile(folder / f"{idx:010d}.sigmf-collection")     # checks each meta's sha512
    assert isinstance(coll, sigmf.SigMFCollection)
    check_collection(coll._metadata)
    recs = []
    for name in coll.get_stream_names():
        rec = sigmf.fromfile(folder / f"{name}.sigmf-meta", autoscale=autoscale)   # checks core:sha512
        rec.validate()
        recs.append(rec)
    return coll, recs


def test_complex64_is_cf32_le_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    stored = (rng.normal(size=(4, 64)) + 1j * rng.normal(size=(4, 64))).astype("<c8")   # 4 rows, 3 real
    feat = feature_row()
    written = write(tmp_path, "complex64", stored, feat)
    folder = tmp_path / "sigmf" / "0000000042"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"0000000042_rx{k:02d}.sigmf-{x}" for k in range(3) for x in ("data", "meta")]
        + ["0000000042.sigmf-collection"])                             # the padding row is not written
    assert {e["kind"] for e in written} == {"sigmf-data", "sigmf-meta", "sigmf-collection"}
    coll, recs = load_sample(folder, 42)
    assert coll.get_stream_names() == [f"0000000042_rx{k:02d}" for k in range(3)]
    split = split_of(11, 42, DS["config"]["splits"])
    assert coll.get_collection_field("heimdall:split") == split
    assert coll.get_collection_field("heimdall:sample")["gdop"] == 2.5
    for k, rec in enumerate(recs):
        g = rec.get_global_info()
        assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == 50000
        assert g["core:geolocation"] == {"type": "Point", "coordinates": [7 + k / 10, 45 + k / 10, 100.0 + k]}
        assert g["heimdall:receiver_id"] == f"rx{k}" and g["heimdall:receiver_index"] == k
        assert g["heimdall:split"] == split
        cap = rec.get_captures()[0]
        assert cap["core:frequency"] == 145e6 and cap["core:datetime"] == "2026-01-02T03:04:05.678000Z"
        truth, est = rec.get_annotations()
        assert truth["signal:emitter"] == {"seid": 42, "power_tx": 37.0,
                                           "geolocation": {"type": "Point", "coordinates": [7.5, 45.05, 321.5]}}
        assert truth["core:label"] == "tone" and truth["core:sample_count"] == 64
        assert truth["core:freq_lower_edge"] == 145e6 - 6250 and truth["core:freq_upper_edge"] == 145e6 + 6250
        assert est["heimdall:estimated"]["snr_db"] == (None if k == 1 else [12.0, None, 3.0][k])
        assert est["heimdall:estimated"]["signal_present"] == [True, False, True][k]
        got = rec.read_samples()
        assert got.dtype == np.complex64 and got.tobytes() == stored[k].tobytes()
        assert (folder / f"0000000042_rx{k:02d}.sigmf-data").read_bytes() == stored[k].tobytes()


def test_complex_int16_is_ci16_le(tmp_path):
    """A stored dtype of interleaved little-endian int16 pairs is written as it is, as ci16_le."""
    assert datatype_of("ci16_le") == ("ci16_le", 4)
    rng = np.random.default_rng(2)
    stored = rng.integers(-32768, 32767, size=(3, 50, 2), dtype="<i2")
    scale = [1e-15, 2.5e-16, 4e-14]
    write(tmp_path, "ci16_le", stored, feature_row(idx=7), scale_mw=scale)
    _, recs = load_sample(tmp_path / "sigmf" / "0000000007", 7, autoscale=False)
    for k, rec in enumerate(recs):
        assert rec.get_global_field("core:datatype") == "ci16_le"
        assert rec.get_global_field("heimdall:scale_mw") == scale[k]         # mW per code^2
        assert "scale_mw" in rec.get_global_field("heimdall:iq_units")
        raw = rec.read_samples()
        assert np.array_equal(raw.real, stored[k, :, 0]) and np.array_equal(raw.imag, stored[k, :, 1])


def test_ci16_le_without_its_scale_is_refused(tmp_path):
    stored = np.zeros((3, 50, 2), dtype="<i2")
    with pytest.raises(HeimdallError, match="scale_mw"):
        write(tmp_path, "ci16_le", stored, feature_row(idx=8))
    with pytest.raises(HeimdallError, match="scale_mw"):
        write(tmp_path, "ci16_le", stored, feature_row(idx=8), scale_mw=[1e-15, 0.0, 1e-15])


def test_unknown_dtype_and_short_bytes_are_refused(tmp_path):
    with pytest.raises(HeimdallError, match="no SigMF datatype"):
        datatype_of("complex128")
    files = _Files(tmp_path)
    with pytest.raises(HeimdallError, match="bytes of IQ"):
        write_sample(files, DS, feature_row(), {"sample_idx": 42, "shape": [3, 64], "dtype": "complex64",
                                                "sample_rate_hz": 50000}, b"\0" * 100)
    assert set(DATATYPES) >= {"complex64"}


def test_the_validation_can_fail(tmp_path):
    """The checks the tests rely on reject broken metadata: a wrong datatype, a stream
    without its hash, a data file that no longer matches core:sha512."""
    stored = np.zeros((3, 8), "<c8")
    write(tmp_path, "complex64", stored, feature_row(idx=1))
    folder = tmp_path / "sigmf" / "0000000001"
    meta = json.loads((folder / "0000000001_rx00.sigmf-meta").read_text())
    meta["global"]["core:datatype"] = "complex float please"
    with pytest.raises(Exception, match="does not match"):
        sigmf.SigMFFile(metadata=meta).validate()
    coll = json.loads((folder / "0000000001.sigmf-collection").read_text())
    coll["collection"]["core:streams"][0] = {"name": "0000000001_rx00"}
    with pytest.raises(HeimdallError, match="sha512"):
        check_collection(coll)
    (folder / "0000000001_rx01.sigmf-data").write_bytes(b"\1" * 64)
    with pytest.raises(sigmf.error.SigMFFileError):
        sigmf.fromfile(folder / "0000000001_rx01.sigmf-meta")


def test_archives_hold_the_same_recordings(tmp_path):
    """--sigmf-archive: one .sigmf (pax tar) per receiver, opened by sigmf directly and through
    the collection; the same metadata and bytes as the two files; same input, same archive."""
    import hashlib
    import tarfile

    rng = np.random.default_rng(3)
    stored = (rng.normal(size=(3, 32)) + 1j * rng.normal(size=(3, 32))).astype("<c8")
    write(tmp_path / "files", "complex64", stored, feature_row(idx=5))
    written = write(tmp_path / "tar", "complex64", stored, feature_row(idx=5), archive=True)
    assert sorted(e["kind"] for e in written) == ["sigmf-archive"] * 3 + ["sigmf-collection"]
    plain, folder = tmp_path / "files" / "sigmf" / "0000000005", tmp_path / "tar" / "sigmf" / "0000000005"
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"0000000005_rx0{k}.sigmf" for k in range(3)] + [
        "0000000005.sigmf-collection"])
    assert (folder / "0000000005.sigmf-collection").read_bytes() == (plain / "0000000005.sigmf-collection").read_bytes()
    coll = sigmf.fromfile(folder / "0000000005.sigmf-collection")
    for k, stream in enumerate(coll.get_stream_names()):
        path = folder / f"{stream}.sigmf"
        with tarfile.open(path) as tar:
            assert tar.getnames() == [stream, f"{stream}/{stream}.sigmf-meta", f"{stream}/{stream}.sigmf-data"]
            meta = tar.extractfile(f"{stream}/{stream}.sigmf-meta").read()
        assert meta == (plain / f"{stream}.sigmf-meta").read_bytes()
        assert hashlib.sha512(meta).hexdigest() == coll.get_collection_field("core:streams")[k]["hash"]
        for rec in (sigmf.fromfile(path), coll.get_SigMFFile(stream_name=stream)):   # checks core:sha512
            rec.validate()
            assert rec.read_samples().tobytes() == stored[k].tobytes()
    first = (folder / "0000000005_rx00.sigmf").read_bytes()
    write(tmp_path / "again", "complex64", stored, feature_row(idx=5), archive=True)
    assert (tmp_path / "again" / "sigmf" / "0000000005" / "0000000005_rx00.sigmf").read_bytes() == first
