"""Stable train / val / test splits (issue 13 item 3): the "splits" config key (defaults,
every bad value refused with 22023 naming the key), the SQL rule (heimdall.split_of,
heimdall.sample_split, the heimdall.sample_splits view) equal to its Python twin
(heimdall_synth.splits) sample for sample, the fractions kept within binomial tolerance, and
a sample's split unchanged when its dataset is expanded.

Runs against the template database (``alembic upgrade head``), like the API's users."""

from __future__ import annotations

import json
import math

import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from heimdall_synth.splits import (
    LEGACY_SPLITS,
    SPLITS,
    fractions_of,
    hash48,
    indices_in_split,
    split_of,
    splits_of,
)
from tests.helpers import fill_pending_chunks

SEEDS = (0, 1, -7, 123456789, 2**63 - 1, -2**63)
FRACTIONS = (
    None,                                                # configs stored before revision 0003
    {"train": 0.8, "val": 0.1, "test": 0.1},
    {"train": 0.7, "val": 0.2, "test": 0.1},
    {"train": 1, "val": 0, "test": 0},
    {"train": 0, "val": 0, "test": 1},
    {"train": 0, "val": 1, "test": 0},
    {"train": 0.333333333333, "val": 0.333333333333, "test": 0.333333333334},
)


def normalize(conn, config) -> dict:
    text = config if isinstance(config, str) else json.dumps(config)
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)", (text,)).fetchone()[0]


def sql_splits(conn, seed: int, fractions, first: int, stop: int) -> list[str]:
    rows = conn.execute("SELECT heimdall.split_of(%s, i, %s) FROM generate_series(%s::int, %s::int) i ORDER BY i",
                        (seed, None if fractions is None else Jsonb(fractions), first, stop - 1)).fetchall()
    return [r[0] for r in rows]


# ------------------------------------------------------------------------------ the key
def test_default_and_given_fractions(conn):
    assert normalize(conn, {})["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    row = conn.execute("SELECT value_type, default_value FROM heimdall.config_keys WHERE key = 'splits'").fetchone()
    assert row == ("object", {"train": 0.8, "val": 0.1, "test": 0.1})
    cfg = normalize(conn, {"splits": {"train": 0.9, "test": 0.1}})       # names left out get 0
    assert cfg["splits"] == {"train": 0.9, "val": 0, "test": 0.1}
    assert normalize(conn, cfg) == cfg                                   # idempotent
    assert normalize(conn, {"splits": {"val": 1}})["splits"] == {"train": 0, "val": 1, "test": 0}
    # within 1e-9 of 1 is accepted as it is (not rescaled)
    near = normalize(conn, {"splits": {"train": 0.7, "val": 0.2, "test": 0.1000000005}})["splits"]
    assert near == {"train": 0.7, "val": 0.2, "test": 0.1000000005}


@pytest.mark.parametrize("splits, words", [
    ({"train": 0.8, "validation": 0.2}, ["unknown split(s)", '"validation"']),
    ({"train": 0.8, "val": 0.1, "test": 0.1, "holdout": 0}, ['"holdout"']),
    ({"train": -0.1, "val": 0.6, "test": 0.5}, ['"train"', ">= 0 and <= 1", "-0.1"]),
    ({"train": 1.5, "val": 0, "test": -0.5}, [">= 0 and <= 1"]),
    ({"train": "0.8", "val": 0.1, "test": 0.1}, ['"train"', "must be a number"]),
    ({"train": None, "val": 0.5, "test": 0.5}, ['"train"', "must be a number"]),
    ({"train": True, "val": 0, "test": 0}, ['"train"', "must be a number"]),
    ({"train": 0.8, "val": 0.1, "test": 0.2}, ["sum to 1", "1.1"]),
    ({"train": 0.8, "val": 0.1}, ["sum to 1", "0.9"]),
    ({}, ["sum to 1"]),
    ({"train": 0.7, "val": 0.2, "test": 0.100000002}, ["sum to 1", "within 1e-9"]),
    ([0.8, 0.1, 0.1], ["must be a JSON object"]),
    ("train", ["must be a JSON object"]),
])
def test_bad_fractions_are_refused_naming_the_key(conn, splits, words):
    with pytest.raises(pgerr.InvalidParameterValue) as exc:
        normalize(conn, {"splits": splits})
    msg = str(exc.value).splitlines()[0]
    assert 'config key "splits"' in msg, msg
    for w in words:
        assert w in msg, msg


# ------------------------------------------------------------------------------ the rule
@pytest.mark.parametrize("fractions", FRACTIONS, ids=lambda f: "legacy" if f is None else "/".join(map(str, f.values())))
def test_python_and_sql_agree_on_every_index(conn, fractions):
    for seed in SEEDS:
        want = list(splits_of(seed, range(0, 3000), fractions))
        assert sql_splits(conn, seed, fractions, 0, 3000) == want, seed
        top = 2**31 - 1                                  # the largest sample index
        assert sql_splits(conn, seed, fractions, top - 200, top + 1) == list(splits_of(seed, range(top - 200, top + 1),
                                                                                     fractions))
    # one at a time, as the scalar function
    assert [split_of(-7, i, fractions) for i in range(50)] == sql_splits(conn, -7, fractions, 0, 50)


def test_python_and_sql_agree_exactly_at_the_thresholds(conn):
    """Fractions chosen so that u == train * 2^48 for one sample (it is "val": the rule is
    u < threshold), and train + val rounds in float64 like the SQL float8 sum."""
    seed = 99
    u5 = hash48(seed, 5)
    t = u5 / 2**48                                       # exact: u5 < 2^48
    u9 = hash48(seed, 9)
    v = max(u9 / 2**48 - t, 0.0)
    fractions = {"train": t, "val": v, "test": 1 - t - v}
    text = json.dumps(fractions)                         # shortest round-trip reprs
    got = conn.execute("SELECT heimdall.split_of(%s, i, %s::jsonb) FROM generate_series(0, 999) i ORDER BY i",
                       (seed, text)).fetchall()
    assert [r[0] for r in got] == list(splits_of(seed, range(1000), json.loads(text)))
    assert split_of(seed, 5, fractions) != "train"
    # the SQL rule reads the hash the same way
    assert conn.execute("SELECT ('x' || encode(substring(sha256(convert_to(%s, 'UTF8')) FROM 1 FOR 6), 'hex'))"
                        "::bit(48)::bigint", (f"{seed}:5",)).fetchone()[0] == u5


def test_fractions_within_binomial_tolerance(conn):
    n = 20000
    for seed, fractions in ((3, {"train": 0.8, "val": 0.1, "test": 0.1}), (-11, {"train": 0.5, "val": 0.3, "test": 0.2})):
        rows = dict(conn.execute("SELECT s, count(*) FROM (SELECT heimdall.split_of(%s, i, %s) s "
                                 "FROM generate_series(0, %s) i) x GROUP BY s", (seed, Jsonb(fractions), n - 1)).fetchall())
        for name in SPLITS:
            p = fractions[name]
            assert abs(rows.get(name, 0) - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (seed, name, rows)


def test_null_and_negative_arguments(conn):
    got = conn.execute("SELECT heimdall.split_of(NULL, 1, NULL), heimdall.split_of(1, NULL, NULL), "
                       "heimdall.split_of(1, -1, NULL), heimdall.sample_split(gen_random_uuid(), 0)").fetchone()
    assert got == (None, None, None, None)
    with pytest.raises(ValueError):
        split_of(1, -1)


# ------------------------------------------------------------------------------ datasets
def create(conn, name, n, seed, config=None, kind="feature_based"):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, kind, Jsonb(config or {"chunk_size": 100}), seed, n)).fetchone()[0]


def view_splits(conn, ds) -> dict[int, str]:
    return dict(conn.execute("SELECT sample_idx, split FROM heimdall.sample_splits WHERE dataset_id = %s",
                             (ds,)).fetchall())


def test_expanding_a_dataset_keeps_every_split(conn):
    fractions = {"train": 0.6, "val": 0.25, "test": 0.15}
    seed = 4242424242
    ds = create(conn, "grows", 300, seed, {"chunk_size": 100, "splits": fractions})
    fill_pending_chunks(conn)
    before = view_splits(conn, ds)
    assert sorted(before) == list(range(300))
    conn.execute("SELECT heimdall.expand_dataset(%s, %s)", (ds, 1700))
    fill_pending_chunks(conn)
    after = view_splits(conn, ds)
    assert sorted(after) == list(range(2000))
    assert {i: after[i] for i in before} == before                   # earlier samples keep their split
    # the view, the per-sample function and Python say the same
    stored = conn.execute("SELECT config -> 'splits' FROM heimdall.synthetic_datasets WHERE id = %s",
                          (ds,)).fetchone()[0]
    assert fractions_of({"splits": stored}) == fractions
    assert [after[i] for i in range(2000)] == list(splits_of(seed, range(2000), fractions))
    one = conn.execute("SELECT i, heimdall.sample_split(%s, i) FROM generate_series(0, 2499) i ORDER BY i",
                       (ds,)).fetchall()
    assert [s for _, s in one] == list(splits_of(seed, range(2500), fractions))    # future indices too
    n = len(after)
    for name, p in fractions.items():
        count = sum(1 for s in after.values() if s == name)
        assert abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (name, count)
    assert list(indices_in_split(seed, 0, 2000, "val", fractions)) == sorted(i for i, s in after.items() if s == "val")


def test_a_config_stored_before_0003_uses_the_legacy_fractions(conn):
    """A dataset whose stored config has no "splits" (made before revision 0003) splits
    0.8 / 0.1 / 0.1, whatever the key's default is now."""
    cfg = {k: v for k, v in normalize(conn, {}).items() if k != "splits"}
    ds = conn.execute("INSERT INTO heimdall.synthetic_datasets (name, dataset_type, config, seed) "
                      "VALUES ('old', 'feature_based', %s, 77) RETURNING id", (Jsonb(cfg),)).fetchone()[0]
    got = [r[0] for r in conn.execute("SELECT heimdall.sample_split(%s, i) FROM generate_series(0, 999) i ORDER BY i",
                                      (ds,)).fetchall()]
    assert got == list(splits_of(77, range(1000), LEGACY_SPLITS)) == list(splits_of(77, range(1000), None))
    assert fractions_of(cfg) == LEGACY_SPLITS


def test_reader_may_ask_for_splits(conn):
    ds = create(conn, "readable", 100, 5)
    fill_pending_chunks(conn)
    want = split_of(5, 3, normalize(conn, {})["splits"])
    with conn.transaction():
        conn.execute("SET LOCAL ROLE heimdall_reader")
        assert conn.execute("SELECT count(*) FROM heimdall.sample_splits WHERE dataset_id = %s",
                            (ds,)).fetchone()[0] == 100
        assert conn.execute("SELECT heimdall.sample_split(%s, 3)", (ds,)).fetchone()[0] == want
