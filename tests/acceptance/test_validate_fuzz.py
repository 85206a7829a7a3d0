"""`validate --deep` and `repair` survive any object content (issue 9 item 7).

Whatever bytes an IQ object holds (a .npy header that is not a dict, wrong dtype or shape,
truncated, empty, not .npy at all, hostile literals), the deep check reports critical
damage covering exactly the indices of that object, never a traceback, never aborting the
check of other objects; `repair --apply` + a worker run give back the original bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.validate import REGENERATE_KINDS, _npy_header, object_store_issues, validate
from tests.acceptance.conftest import finish, worker_env
from worker.storage import ObjectStore, npy_header

CHUNK = 3
# complex64 objects: the corruptions below edit a complex64 .npy (ci16_le objects: test_iq_ci16.py)
SMALL = {"chunk_size": CHUNK, "duration_ms": 4, "iq_dtype": "complex64"}


# ---- corruptions: original object bytes -> bad object bytes ------------------------------

def _split(orig: bytes) -> tuple[str, bytes]:
    """(header dict text, sample data) of a version 1.0 .npy written by the worker."""
    assert orig[:8] == b"\x93NUMPY\x01\x00"
    hlen = int.from_bytes(orig[8:10], "little")
    return orig[10:10 + hlen].decode("latin1"), orig[10 + hlen:]


def _v1(text: str | bytes, data: bytes, hlen: int | None = None) -> bytes:
    """A version 1.0 .npy with header ``text`` padded to the original length when it fits."""
    raw = text.encode("latin1") if isinstance(text, str) else text
    if hlen is not None and len(raw) < hlen:
        raw = raw.ljust(hlen - 1) + b"\n"
    if len(raw) > 0xFFFF:
        return b"\x93NUMPY\x02\x00" + len(raw).to_bytes(4, "little") + raw + data
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + data


def _header(orig: bytes, **changes: object) -> bytes:
    """The original object with some header values replaced (same header length if it fits)."""
    text, data = _split(orig)
    import ast
    d = ast.literal_eval(text)
    d.update(changes)
    return _v1(repr(d), data, len(text))


def _text(orig: bytes, text: str | bytes) -> bytes:
    old, data = _split(orig)
    return _v1(text, data, len(old))


def _shape(orig: bytes) -> tuple[int, int, int]:
    import ast
    return ast.literal_eval(_split(orig)[0])["shape"]


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _wrong_layout(orig: bytes) -> bytes:
    n, r, length = _shape(orig)
    return _npy(np.zeros((n, r, length + 1), np.complex64))


def _fewer_samples(orig: bytes) -> bytes:
    n, r, length = _shape(orig)
    return _npy(np.zeros((n - 1, r, length), np.complex64))


def _as_version_2(orig: bytes) -> bytes:
    text, data = _split(orig)        # a valid .npy of the same array, header 2 bytes longer
    return b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text.encode("latin1") + data


def _length_past_end(orig: bytes) -> bytes:
    return orig[:6] + b"\x02\x00" + (0xFFFFFFF0).to_bytes(4, "little") + orig[12:]


def _flip_version(orig: bytes) -> bytes:
    return orig[:6] + b"\x07\x09" + orig[8:]


def _garbage_header(orig: bytes) -> bytes:
    text, data = _split(orig)
    rng = random.Random(7)
    return _v1(bytes(rng.choice(range(0x80, 0x100)) for _ in range(len(text))), data)


def _nested(opening: str, closing: str, depth: int) -> Callable[[bytes], bytes]:
    return lambda orig: _v1(opening * depth + closing * depth, _split(orig)[1])


def _huge_literal(orig: bytes) -> bytes:
    n, r, length = _shape(orig)
    return _v1("{'descr': '<c8', 'fortran_order': False, 'shape': (" + "9" * 50_000 + f", {r}, {length}), }}",
               _split(orig)[1])


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "header_is_a_list": lambda o: _text(o, repr(list(__import__("ast").literal_eval(_split(o)[0]).items()))),
    "header_empty_dict": lambda o: _text(o, "{}"),
    "header_none": lambda o: _text(o, "None"),
    "header_extra_key": lambda o: _header(o, extra=1),
    "header_missing_descr": lambda o: _text(o, _split(o)[0].replace("'descr': '<c8', ", "")),
    "shape_is_a_string": lambda o: _header(o, shape=str(_shape(o))),
    "shape_is_a_list": lambda o: _header(o, shape=list(_shape(o))),
    "shape_of_floats": lambda o: _header(o, shape=tuple(float(x) for x in _shape(o))),
    "shape_huge": lambda o: _header(o, shape=(10**30, *_shape(o)[1:])),
    "shape_negative": lambda o: _header(o, shape=(-_shape(o)[0], *_shape(o)[1:])),
    "descr_f8": lambda o: _header(o, descr="<f8"),
    "descr_unknown": lambda o: _header(o, descr="zz9"),
    "descr_not_a_string": lambda o: _header(o, descr=8),
    "descr_object": lambda o: _header(o, descr="|O"),
    "fortran_order_true": lambda o: _header(o, fortran_order=True),
    "fortran_order_not_bool": lambda o: _header(o, fortran_order=0),
    "truncated_by_1_byte": lambda o: o[:-1],
    "truncated_inside_header": lambda o: o[:20],
    "one_byte_too_long": lambda o: o + b"\x00",
    "padded_by_1_mib": lambda o: o + bytes(1 << 20),            # not even read
    "empty_object": lambda o: b"",
    "random_bytes": lambda o: random.Random(3).randbytes(len(o)),
    "bad_magic": lambda o: b"\x93NUMPZ" + o[6:],
    "odd_version_bytes": _flip_version,
    "valid_npy_wrong_layout": _wrong_layout,
    "valid_npy_fewer_samples": _fewer_samples,
    "valid_npy_version_2_shifts_data": _as_version_2,
    "header_length_past_end": _length_past_end,
    "non_latin1_garbage_header": _garbage_header,
    "null_byte_in_header": lambda o: _text(o, _split(o)[0].replace("'<c8'", "'<c\x008'")),
    "nested_lists": _nested("[", "]", 30_000),
    "nested_parentheses": _nested("(", ")", 30_000),
    "unary_minus_chain": lambda o: _v1("-" * 60_000 + "1", _split(o)[1]),
    "huge_int_literal": _huge_literal,
    "header_beyond_cap": lambda o: _v1("{'descr': '<c8', " + " " * 200_000 + "}", _split(o)[1]),
}


# ---- fixtures ---------------------------------------------------------------------------

def make_dataset(conn, spawn_worker, name: str, n: int):
    ds = conn.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s, 5, %s)",
                      (name, Jsonb(SMALL), n)).fetchone()[0]
    finish(spawn_worker("--until-idle"))
    return ds


def objects(conn, ds) -> dict[str, tuple[int, int]]:
    """object key -> (first_idx, last_idx) of the samples its rows point to."""
    return {k: (lo, hi) for k, lo, hi in conn.execute(
        "SELECT object_key, min(sample_idx), max(sample_idx) FROM heimdall.synthetic_iq_samples "
        "WHERE dataset_id = %s GROUP BY 1 ORDER BY 2", (ds,))}


def cli(db_url, s3, bucket, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                          env=worker_env(db_url, s3, bucket), timeout=120)


def validate_cli(db_url, s3, bucket, ds) -> dict:
    r = cli(db_url, s3, bucket, "validate", str(ds), "--deep", "--json")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stdout.strip(), r.stderr
    return json.loads(r.stdout)


def covered(report, severity="critical") -> list[int]:
    return sorted(i for x in report["issues"] if x["severity"] == severity
                  for i in range(x["first_idx"], x["last_idx"] + 1))


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ---- each kind alone: exactly that object's indices ---------------------------------------

def test_each_bad_object_alone_is_critical_damage_of_exactly_its_indices(conn, store, spawn_worker):
    """One chunk object overwritten at a time (the same check `validate --deep` runs; the
    CLI runs over every kind in the test below)."""
    ds = make_dataset(conn, spawn_worker, "fuzzed", 3 * CHUNK)
    key, (lo, hi) = list(objects(conn, ds).items())[1]         # the middle chunk
    orig = store.get(key)
    failures = []
    for name, corrupt in CORRUPTIONS.items():
        bad = corrupt(orig)
        assert bad != orig, name
        store.put(key, bad)
        report = validate(conn, store, ds, deep=True)            # raises = the test fails
        kinds = {x["kind"] for x in report["issues"]}
        if (report["status"] != "critical" or covered(report) != list(range(lo, hi + 1))
                or not kinds <= set(REGENERATE_KINDS) or {x["key"] for x in report["issues"]} != {key}):
            failures.append((name, report["status"], report["issues"]))
        store.put(key, orig)
    assert failures == []
    assert validate(conn, store, ds, deep=True)["status"] == "healthy"


# ---- the CLI end to end: every chunk damaged differently, one repair round ----------------

def test_cli_validate_and_repair_every_bad_object_bit_identically(conn, store, spawn_worker, db_url,
                                                                  s3_server, bucket):
    names = list(CORRUPTIONS)
    ds = make_dataset(conn, spawn_worker, "fuzzed", len(names) * CHUNK)
    keys = objects(conn, ds)
    assert len(keys) == len(names)
    original = {k: sha(store.get(k)) for k in keys}
    damaged = {}
    for (key, _), name in zip(keys.items(), names, strict=True):
        store.put(key, CORRUPTIONS[name](store.get(key)))
        damaged[key] = name
    report = validate_cli(db_url, s3_server, bucket, ds)
    assert report["status"] == "critical"
    assert covered(report) == list(range(len(names) * CHUNK))         # none hides another
    by_key = defaultdict(list)
    for x in report["issues"]:
        by_key[x["key"]].append((x["kind"], x["first_idx"], x["last_idx"]))
    assert {damaged[k]: by_key[k] for k in keys} == \
        {damaged[k]: [("corrupt_object", lo, hi)] for k, (lo, hi) in keys.items()}

    r = cli(db_url, s3_server, bucket, "repair", str(ds), "--apply", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    applied = json.loads(r.stdout)
    assert applied["status_before"] == "critical"
    assert [(a["first_idx"], a["last_idx"]) for a in applied["actions"] if a["action"] == "regenerate"] \
        == [(0, len(names) * CHUNK - 1)]
    finish(spawn_worker("--until-idle"))
    after = validate_cli(db_url, s3_server, bucket, ds)
    assert after["status"] == "healthy", after["issues"]
    assert objects(conn, ds) == keys
    assert {k: sha(store.get(k)) for k in keys} == original          # whole objects, bit-identical


# ---- races and isolation (in process, real store) -----------------------------------------

class DeletesAfterListing(ObjectStore):
    """A real store where another party deletes an object between LIST and GET."""

    victim: str = ""

    def list(self, prefix):
        yield from super().list(prefix)
        self.remove([self.victim])


def test_object_deleted_between_list_and_get_is_missing_not_a_crash(conn, store, spawn_worker, s3_server):
    ds = make_dataset(conn, spawn_worker, "racy", 3 * CHUNK)
    keys = objects(conn, ds)
    key, (lo, hi) = list(keys.items())[2]
    racing = DeletesAfterListing(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, store.bucket)
    racing.victim = key
    other, _ = list(keys.items())[0]
    store.put(other, b"")                                # damage elsewhere is still found
    issues = object_store_issues(conn, racing, ds, deep=True)
    assert sorted((x["kind"], x["first_idx"], x["last_idx"]) for x in issues) == \
        [("corrupt_object", 0, CHUNK - 1), ("missing_object", lo, hi)]
    report = validate(conn, store, ds, deep=True)
    assert report["status"] == "critical"


# ---- _npy_header as a unit: total over any bytes ------------------------------------------

def _check_result(blob: bytes, got) -> None:
    if got is None:
        return
    shape, descr, fortran_order = got[0], got[1], got[2]
    assert isinstance(shape, tuple) and all(type(x) is int and x >= 0 for x in shape), got
    assert isinstance(descr, str) and isinstance(fortran_order, bool), got
    assert got.data_offset <= len(blob)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_npy_header_is_total_on_each_corruption(name):
    header = npy_header((CHUNK, 4, 40))
    orig = header + bytes(CHUNK * 4 * 40 * 8)
    blob = CORRUPTIONS[name](orig)
    got = _npy_header(blob)
    _check_result(blob, got)
    if got is not None:            # what still parses is not what the worker writes
        assert ((got[0], got[1], got[2]) != ((CHUNK, 4, 40), "<c8", False)
                or got.data_offset != len(header) or len(blob) != len(orig))


def test_npy_header_reads_what_numpy_writes():
    for shape, dtype, order in [((3, 4, 40), "<c8", "C"), ((0,), "<f8", "C"), ((), "|u1", "C"),
                                ((2, 5), ">i4", "F"), ((7, 1, 1), "<c16", "C")]:
        blob = _npy(np.zeros(shape, dtype=dtype, order=order))
        got = _npy_header(blob)
        assert (got.shape, got.descr, got.fortran_order) == (shape, dtype, order == "F" and len(shape) > 1)
        assert got.data_offset == len(blob) - np.zeros(shape, dtype).nbytes
    big = {"descr": "<c8", "fortran_order": False, "shape": (1,) * 40}
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, big)
    assert _npy_header(buf.getvalue()).shape == (1,) * 40


TOKENS = ["(", ")", "[", "]", "{", "}", "'", '"', ",", ":", "-", "+", "1", "9" * 5000, "1e999", "True",
          "None", "'shape'", "'descr'", "'fortran_order'", "'<c8'", "\x00", "\xff", "\n", " ", "b''",
          "1j", "...", "lambda: 0", "__import__('os')", "(" * 300, "[" * 5000, "-" * 5000, "1,"]


def _mutate(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        hi = min(len(b), 140) or 1
        if op == 0 and b:                                   # flip a byte (mostly in the header)
            b[rng.randrange(hi)] = rng.randrange(256)
        elif op == 1:                                       # insert a token into the header text
            pos = rng.randrange(10, max(11, hi))
            b[pos:pos] = rng.choice(TOKENS).encode("latin1", "replace")
        elif op == 2 and len(b) > 10:                       # delete a span
            pos = rng.randrange(len(b))
            del b[pos:pos + rng.randint(1, 40)]
        elif op == 3:                                       # truncate
            del b[rng.randrange(len(b) + 1):]
        elif op == 4 and len(b) >= 12:                      # length field / version
            b[rng.choice([6, 7, 8, 9, 10, 11])] = rng.randrange(256)
        elif op == 5:                                       # replace the whole header text
            text = "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 30)))
            b = bytearray(_v1(text.encode("latin1", "replace"), bytes(b[128:])))
        elif op == 6 and len(b) >= 128:                     # swap two header characters
            i, j = rng.randrange(10, 128), rng.randrange(10, 128)
            b[i], b[j] = b[j], b[i]
    return bytes(b)


def test_npy_header_never_raises_on_a_fuzz_corpus():
    rng = random.Random(20240909)
    seed_blob = npy_header((CHUNK, 4, 40)) + bytes(64)
    seen_valid = seen_invalid = 0
    for _ in range(20_000):
        blob = _mutate(rng, seed_blob)
        got = _npy_header(blob)              # must not raise, whatever the bytes
        _check_result(blob, got)
        seen_valid += got is not None
        seen_invalid += got is None
    assert seen_valid > 100 and seen_invalid > 10_000        # the corpus exercises both sides
    for n in range(0, 200):
        _check_result(b"", _npy_header(bytes(rng.randrange(256) for _ in range(n))))
