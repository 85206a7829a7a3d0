"""IQ chunk objects in both stored dtypes (complex64, ci16_le): bytes, per-sample ranges and
sha256 of the whole-chunk and the streaming encoder, decoding to sqrt(mW), the IQ rows, the
layout check of validate --deep and the npz export (no database, no S3)."""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace

import numpy as np
import pytest

from heimdall_synth.export import _write_npz_shard
from heimdall_synth.reader import decode_iq
from heimdall_synth.validate import _npy_header, _object_layout_problem, _scale_ok
from worker.iqformat import ci16_to_complex64
from worker.rows import IQ_COLUMNS, iq_rows
from worker.storage import StreamingChunk, decode_codes, decode_sample, encode_chunk, npy_header


def _codes(n: int, r: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32767, 32768, size=(n, r, length, 2)).astype(np.int16)


def _c64(n: int, r: int, length: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return (g.standard_normal((n, r, length)) + 1j * g.standard_normal((n, r, length))).astype(np.complex64)


def _stream(arr: np.ndarray, dtype: str, block: int = 3) -> tuple[bytes, StreamingChunk]:
    n, r, length = arr.shape[:3]
    sc = StreamingChunk(n, r, length, max_blocks=100, dtype=dtype)
    for off in range(0, n, block):
        sc.add(arr[off:off + block])
    sc.close()
    return sc.reader().read(), sc


def test_complex64_objects_are_unchanged():
    iq = _c64(5, 3, 40)
    enc = encode_chunk(iq)
    buf = io.BytesIO()
    np.save(buf, iq, allow_pickle=False)
    assert enc.data == buf.getvalue() and enc.dtype == "complex64"
    assert enc.sample_nbytes == 3 * 40 * 8 and enc.shape == (3, 40)
    assert npy_header((5, 3, 40)) == enc.data[:enc.header_len] == npy_header((5, 3, 40), "complex64")
    assert enc.sha256 == [hashlib.sha256(iq[k].tobytes()).hexdigest() for k in range(5)]
    assert np.array_equal(decode_sample(enc.data[enc.offset(2):enc.offset(3)], (3, 40)), iq[2])


def test_ci16_objects_hold_int16_codes_in_half_the_bytes():
    codes = _codes(5, 3, 40)
    enc = encode_chunk(codes)
    c64 = encode_chunk(_c64(5, 3, 40))
    assert enc.dtype == "ci16_le" and enc.shape == (3, 40) and enc.sample_nbytes == 3 * 40 * 4
    assert len(enc.data) - enc.header_len == (len(c64.data) - c64.header_len) // 2
    back = np.load(io.BytesIO(enc.data), allow_pickle=False)
    assert back.dtype == np.dtype("<i2") and back.shape == (5, 3, 40, 2) and np.array_equal(back, codes)
    assert npy_header((5, 3, 40), "ci16_le") == enc.data[:enc.header_len]
    for k in range(5):
        raw = enc.data[enc.offset(k):enc.offset(k) + enc.sample_nbytes]
        assert hashlib.sha256(raw).hexdigest() == enc.sha256[k] == hashlib.sha256(codes[k].tobytes()).hexdigest()
        assert np.array_equal(decode_codes(raw, (3, 40)), codes[k])
    h = _npy_header(enc.data)
    assert h.descr == "<i2" and h.shape == (5, 3, 40, 2) and h.data_offset == enc.header_len


@pytest.mark.parametrize("dtype", ["complex64", "ci16_le"])
def test_streamed_object_equals_the_whole_chunk_encoding(dtype):
    arr = _codes(10, 2, 50) if dtype == "ci16_le" else _c64(10, 2, 50)
    data, sc = _stream(arr, dtype)
    enc = encode_chunk(arr)
    assert data == enc.data and len(data) == sc.total_len
    assert sc.sha256 == enc.sha256 and sc.sample_nbytes == enc.sample_nbytes and sc.dtype == enc.dtype
    assert [sc.offset(k) for k in range(10)] == [enc.offset(k) for k in range(10)]


def test_a_stream_refuses_blocks_of_the_other_dtype():
    sc = StreamingChunk(4, 2, 50, dtype="ci16_le")
    with pytest.raises(ValueError, match="does not fit"):
        sc.add(_c64(2, 2, 50))
    with pytest.raises(ValueError, match="does not fit"):
        StreamingChunk(4, 2, 50).add(_codes(2, 2, 50))
    with pytest.raises(ValueError):
        StreamingChunk(4, 2, 50, dtype="cf32_le")
    with pytest.raises(ValueError, match="int16"):
        encode_chunk(np.zeros((2, 3, 4, 3), np.int16))
    with pytest.raises(ValueError, match="shape"):
        encode_chunk(np.zeros((3, 4, 2), np.int16))


def test_decode_ci16_applies_the_scale_of_each_receiver():
    codes = _codes(1, 3, 64)[0]
    scale = [2.5e-16, 1e-12, 0.0]
    raw = codes.tobytes()
    got = decode_sample(raw, (3, 64), "ci16_le", scale)
    assert got.dtype == np.complex64 and got.shape == (3, 64)
    assert got.tobytes() == ci16_to_complex64(codes, np.array(scale, np.float32)).tobytes()
    p = np.mean(np.abs(got.astype(np.complex128)) ** 2, axis=1)
    want = (codes.astype(np.float64) ** 2).sum(-1).mean(-1) * np.array(scale, np.float32)
    np.testing.assert_allclose(p, want, rtol=1e-6)
    assert not got[2].any()
    with pytest.raises(ValueError, match="scale_mw"):
        decode_sample(raw, (3, 64), "ci16_le")
    row = {"sample_idx": 4, "shape": [3, 64], "dtype": "ci16_le", "scale_mw": scale}
    assert decode_iq(row, raw).tobytes() == got.tobytes()
    assert decode_iq({"shape": [3, 64]}, _c64(1, 3, 64)[0].tobytes()).dtype == np.complex64


class _B(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.sample_idx)


def test_iq_rows_write_dtype_and_a_scale_per_receiver_slot():
    n, r_max = 3, 4
    enc = encode_chunk(_codes(n, r_max, 16))
    b = _B(sample_idx=np.arange(10, 13), num_receivers=np.array([4, 2, 3]),
           iq_scale_mw=np.array([[1e-15] * 4, [2e-15, 3e-15, np.nan, np.nan], [1e-16] * 3 + [np.nan]]))
    rows = list(iq_rows("ds", b, "key", enc, 50_000))
    names = [c for c, _ in IQ_COLUMNS]
    got = [dict(zip(names, r, strict=True)) for r in rows]
    assert [g["dtype"] for g in got] == ["ci16_le"] * 3
    assert got[1]["scale_mw"] == [2e-15, 3e-15, 0.0, 0.0]            # padding slots: 0
    assert all(len(g["scale_mw"]) == r_max and g["shape"] == [r_max, 16] for g in got)
    assert [g["byte_length"] for g in got] == [r_max * 16 * 4] * 3
    assert [g["byte_offset"] for g in got] == [enc.offset(k) for k in range(3)]
    c64 = list(iq_rows("ds", b, "key", encode_chunk(_c64(n, r_max, 16)), 50_000))
    assert {r[names.index("dtype")] for r in c64} == {"complex64"}
    assert {r[names.index("scale_mw")] for r in c64} == {None}
    b.iq_scale_mw[2, 1] = np.nan                                      # a real receiver without scale
    with pytest.raises(ValueError, match="scale_mw"):
        list(iq_rows("ds", b, "key", enc, 50_000))


def _rows(enc, dtype: str, first: int = 0):
    return [{"sample_idx": first + k, "byte_offset": enc.offset(k), "byte_length": enc.sample_nbytes,
             "shape": list(enc.shape), "dtype": dtype, "sha256": enc.sha256[k],
             "scale_mw": [1e-15] * enc.shape[0] if dtype == "ci16_le" else None} for k in range(len(enc.sha256))]


def test_validate_checks_the_layout_of_each_dtype():
    ci16 = encode_chunk(_codes(4, 3, 20))
    c64 = encode_chunk(_c64(4, 3, 20))
    assert _object_layout_problem(_npy_header(ci16.data), len(ci16.data), _rows(ci16, "ci16_le"), 0, 3) is None
    assert _object_layout_problem(_npy_header(c64.data), len(c64.data), _rows(c64, "complex64"), 0, 3) is None
    # a complex64 object where the rows say ci16_le (and the reverse) is not what the worker wrote
    assert "expected '<i2'" in _object_layout_problem(_npy_header(c64.data), len(c64.data),
                                                      _rows(ci16, "ci16_le"), 0, 3)
    assert "expected '<c8'" in _object_layout_problem(_npy_header(ci16.data), len(ci16.data),
                                                      _rows(c64, "complex64"), 0, 3)
    # an int16 array without the I/Q axis, and a truncated object
    flat = encode_chunk(_codes(4, 3, 20)).data
    wrong = io.BytesIO()
    np.save(wrong, np.zeros((4, 3, 40), np.int16))
    assert "is not (n, 3, 20, 2)" in _object_layout_problem(_npy_header(wrong.getvalue()), len(wrong.getvalue()),
                                                            _rows(ci16, "ci16_le"), 0, 3)
    assert "bytes" in _object_layout_problem(_npy_header(flat), len(flat) - 4, _rows(ci16, "ci16_le"), 0, 3)
    mixed = _rows(ci16, "ci16_le")
    mixed[1]["dtype"] = "complex64"
    assert "disagree on the dtype" in _object_layout_problem(_npy_header(flat), len(flat), mixed, 0, 3)


def test_validate_wants_a_usable_scale_for_ci16_rows():
    ok = {"dtype": "ci16_le", "shape": [3, 20], "scale_mw": [1e-15, 2e-15, 0.0]}
    assert _scale_ok(ok) and _scale_ok({"dtype": "complex64", "shape": [3, 20], "scale_mw": None})
    for bad in ([0.0, 0.0, 0.0], [1e-15, float("nan"), 0.0], [1e-15, -1.0, 0.0], [1e-15, None, 0.0], [1e-15], None):
        assert not _scale_ok({**ok, "scale_mw": bad}), bad


def test_npz_export_of_ci16_holds_codes_and_scale(tmp_path):
    codes = _codes(3, 2, 30)
    enc = encode_chunk(codes)
    rows = [{**r, "num_receivers": 2, "scale_mw": [1e-15 * (k + 1), 2e-15]} for k, r in enumerate(_rows(enc, "ci16_le"))]
    data = ((r, enc.data[r["byte_offset"]:r["byte_offset"] + r["byte_length"]]) for r in rows)
    path = tmp_path / "iq.npz"
    _write_npz_shard(path, rows, data, 2, 30, "ci16_le")
    with np.load(path) as z:
        assert z["iq"].dtype == np.int16 and np.array_equal(z["iq"], codes)
        assert z["scale_mw"].dtype == np.float32 and z["scale_mw"].shape == (3, 2)
        np.testing.assert_array_equal(z["scale_mw"][:, 0], np.float32([1e-15, 2e-15, 3e-15]))
        assert list(z["sample_idx"]) == [0, 1, 2]


def test_stored_dtype_absent_means_complex64():
    from worker.iqformat import stored_dtype
    assert stored_dtype(None) == stored_dtype("") == "complex64"
    assert stored_dtype("ci16_le") == "ci16_le" and stored_dtype("complex64") == "complex64"
