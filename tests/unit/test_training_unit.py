"""Unit tests of the reader helpers (no database, no S3): range parsing, directory names,
the parquet schema, and how IQ byte ranges are fetched and verified."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from heimdall_synth.export import features_schema, parse_range, safe_dirname
from heimdall_synth.reader import IQIntegrityError, iter_iq_runs
from worker.errors import InvalidInput
from worker.rows import FEATURE_COLUMNS
from worker.storage import StorageError, encode_chunk


@pytest.mark.parametrize("text, want", [("0:10", (0, 10)), (" 5 : 7 ", (5, 7)), ("3:", (3, None)),
                                        (":9", (None, 9)), (":", (None, None)), (None, None)])
def test_parse_range(text, want):
    assert parse_range(text) == want


@pytest.mark.parametrize("text", ["10", "a:b", "-1:5", "5:5", "9:3", "1:2:3"])
def test_parse_range_rejects(text):
    with pytest.raises(InvalidInput):
        parse_range(text)


def test_safe_dirname():
    assert safe_dirname("field test/1") == "field_test_1"
    assert safe_dirname("ok-name_1.v2") == "ok-name_1.v2"
    assert safe_dirname("../..") == "dataset"


def test_features_schema_follows_the_worker_columns():
    import pyarrow as pa

    schema = features_schema()
    assert schema.names == [c for c, _ in FEATURE_COLUMNS if c != "dataset_id"]
    assert schema.field("tx_alt_m").type == pa.float32() and schema.field("tx_lat").type == pa.float64()
    assert schema.field("snr_db").type == pa.list_(pa.float32())
    assert schema.field("signal_present").type == pa.list_(pa.bool_())
    assert schema.field("rejections").type == pa.string()


class FakeStore:
    """ObjectStore stand-in: objects in a dict; records each ranged GET."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.gets = objects, []

    def get(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        self.gets.append((key, offset, length))
        if key not in self.objects:
            raise StorageError(f"GET {key} failed: NoSuchKey")
        blob = self.objects[key]
        return blob[offset:offset + length] if length else blob[offset:]


def _chunk(key: str, first: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    iq = (rng.normal(size=(n, 3, 16)) + 1j * rng.normal(size=(n, 3, 16))).astype(np.complex64)
    enc = encode_chunk(iq)
    rows = [{"sample_idx": first + k, "object_key": key, "byte_offset": enc.offset(k),
             "byte_length": enc.sample_nbytes, "sha256": enc.sha256[k]} for k in range(n)]
    return iq, enc.data, rows


def test_iter_iq_runs_one_get_per_object_and_bounded_runs():
    iq_a, blob_a, rows_a = _chunk("a", 0, 5, 1)
    iq_b, blob_b, rows_b = _chunk("b", 5, 4, 2)
    store = FakeStore({"a": blob_a, "b": blob_b})
    got = list(iter_iq_runs(store, rows_a + rows_b))
    assert [r["sample_idx"] for r, _ in got] == list(range(9))
    assert [raw for _, raw in got] == [iq_a[k].tobytes() for k in range(5)] + [iq_b[k].tobytes() for k in range(4)]
    assert [g[0] for g in store.gets] == ["a", "b"]
    store.gets.clear()
    per = rows_a[0]["byte_length"]
    list(iter_iq_runs(store, rows_a, max_run_bytes=2 * per))
    assert [(g[1], g[2]) for g in store.gets] == [(rows_a[0]["byte_offset"], 2 * per),
                                                 (rows_a[2]["byte_offset"], 2 * per),
                                                 (rows_a[4]["byte_offset"], per)]


def test_iter_iq_runs_refuses_bad_bytes():
    _, blob, rows = _chunk("a", 0, 3, 3)
    bad = bytearray(blob)
    bad[rows[1]["byte_offset"]] ^= 1
    with pytest.raises(IQIntegrityError, match="sample 1 is corrupt"):
        list(iter_iq_runs(FakeStore({"a": bytes(bad)}), rows))
    with pytest.raises(IQIntegrityError, match="sample 2 is truncated"):
        list(iter_iq_runs(FakeStore({"a": blob[:-5]}), rows))
    with pytest.raises(IQIntegrityError, match="samples 0-2 from object a.*NoSuchKey"):
        list(iter_iq_runs(FakeStore({}), rows))
    assert hashlib.sha256(blob[rows[0]["byte_offset"]:][:rows[0]["byte_length"]]).hexdigest() == rows[0]["sha256"]


def test_iter_iq_runs_reads_no_bytes_between_rows():
    """Rows of one split are not adjacent: each gap starts a new ranged GET, so no bytes of
    other samples are fetched (and memory stays within max_run_bytes)."""
    iq, blob, rows = _chunk("a", 0, 8, 3)
    store = FakeStore({"a": blob})
    pick = [rows[k] for k in (0, 1, 4, 7)]
    got = list(iter_iq_runs(store, pick))
    assert [raw for _, raw in got] == [iq[k].tobytes() for k in (0, 1, 4, 7)]
    per = rows[0]["byte_length"]
    assert [(g[1], g[2]) for g in store.gets] == [(rows[0]["byte_offset"], 2 * per), (rows[4]["byte_offset"], per),
                                                 (rows[7]["byte_offset"], per)]
