"""The database owns the invariants: every client, every commit (issue: foundation)."""

from __future__ import annotations

import random
import threading

import psycopg
import pytest
from psycopg import errors as pgerr
from psycopg.types.json import Jsonb

from tests.helpers import fill_pending_chunks, insert_samples


def create(conn, name="ds", dataset_type="iq_raw", config=None, seed=7, n=0):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, dataset_type, Jsonb(config or {}), seed, n)).fetchone()[0]


def counts(conn, ds):
    return conn.execute("""
        SELECT d.num_samples,
               (SELECT count(*) FROM heimdall.measurement_features f WHERE f.dataset_id = d.id),
               (SELECT count(*) FROM heimdall.synthetic_iq_samples q WHERE q.dataset_id = d.id),
               d.next_idx
          FROM heimdall.synthetic_datasets d WHERE d.id = %s""", (ds,)).fetchone()


def indices(conn, ds):
    return [r[0] for r in conn.execute(
        "SELECT sample_idx FROM heimdall.measurement_features WHERE dataset_id = %s ORDER BY 1", (ds,))]


# ------------------------------------------------------------------ the old failure, replayed
def test_create_expand_expand_commits_every_index_once(conn):
    ds = create(conn, n=50)
    assert fill_pending_chunks(conn) == 1
    conn.execute("SELECT heimdall.expand_dataset(%s, 100)", (ds,))
    fill_pending_chunks(conn)
    conn.execute("SELECT heimdall.expand_dataset(%s, 200)", (ds,))
    fill_pending_chunks(conn)
    assert counts(conn, ds) == (350, 350, 350, 350)
    assert indices(conn, ds) == list(range(350))
    iq_idx = [r[0] for r in conn.execute(
        "SELECT sample_idx FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s ORDER BY 1", (ds,))]
    assert iq_idx == list(range(350))
    health = conn.execute("SELECT status, ready_prefix, features_missing_iq, iq_without_features "
                          "FROM heimdall.dataset_health WHERE dataset_id = %s", (ds,)).fetchone()
    assert health == ("healthy", 350, 0, 0)
    progress = conn.execute("SELECT kind, state, chunks_done, chunks_total, samples_done "
                            "FROM heimdall.request_progress WHERE dataset_id = %s ORDER BY first_idx",
                            (ds,)).fetchall()
    assert progress == [("create", "done", 1, 1, 50), ("expand", "done", 1, 1, 100),
                        ("expand", "done", 2, 2, 200)]


def test_expand_splits_into_chunks_with_one_message_each(conn):
    ds = create(conn, config={"chunk_size": 30})
    req = conn.execute("SELECT heimdall.expand_dataset(%s, 100)", (ds,)).fetchone()[0]
    chunks = conn.execute("SELECT first_idx, last_idx, state, msg_id IS NOT NULL FROM heimdall.generation_chunks "
                          "WHERE request_id = %s ORDER BY first_idx", (req,)).fetchall()
    assert chunks == [(0, 29, "pending", True), (30, 59, "pending", True), (60, 89, "pending", True),
                      (90, 99, "pending", True)]
    assert conn.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 4


# ---------------------------------------------------------------------------- concurrency
def test_sixteen_concurrent_reservations_are_disjoint_and_cover(conn, connect):
    ds = create(conn, config={"chunk_size": 7})
    barrier = threading.Barrier(16)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        try:
            c = connect(autocommit=False)
            n = random.Random(k).randint(1, 40)
            barrier.wait()
            if k % 2:
                r = c.execute("SELECT * FROM heimdall.reserve_samples(%s, %s)", (ds, n)).fetchone()
            else:
                req = c.execute("SELECT heimdall.expand_dataset(%s, %s)", (ds, n)).fetchone()[0]
                r = c.execute("SELECT first_idx, last_idx FROM heimdall.generation_requests WHERE id = %s",
                              (req,)).fetchone()
            c.commit()
            with lock:
                results.append(r)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    covered = sorted(i for first, last in results for i in range(first, last + 1))
    total = conn.execute("SELECT next_idx FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0]
    assert covered == list(range(total))          # disjoint (no repeats) and no holes
    assert len(results) == 16


def test_rolled_back_reservation_leaves_no_gap(conn, connect):
    ds = create(conn)
    a = connect(autocommit=False)
    assert a.execute("SELECT * FROM heimdall.reserve_samples(%s, 10)", (ds,)).fetchone() == (0, 9)
    got = {}

    def second() -> None:
        b = connect(autocommit=False)
        got["b"] = b.execute("SELECT * FROM heimdall.reserve_samples(%s, 5)", (ds,)).fetchone()
        b.commit()

    t = threading.Thread(target=second)
    t.start()
    t.join(0.5)
    assert t.is_alive(), "second reservation must wait for the first one's row lock"
    a.rollback()
    t.join(10)
    assert got["b"] == (0, 4)
    assert conn.execute("SELECT next_idx FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 5


def test_two_workers_completing_the_same_chunk_commit_once(conn, connect):
    ds = create(conn, n=10)
    # one claim, two sessions committing it (a worker retrying its commit after losing the
    # connection while the first attempt still runs on the server)
    chunk_id, token = conn.execute("SELECT chunk_id, claim_token FROM heimdall.claim_chunk('w1', 60, 5, 'test')").fetchone()
    a, b = connect(autocommit=False), connect(autocommit=False)
    assert a.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token)).fetchone()[0] is True
    insert_samples(a, ds, 0, 9, staged=True)
    result = {}

    def other() -> None:
        needed = b.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token)).fetchone()[0]
        if needed:
            insert_samples(b, ds, 0, 9, staged=True)
        result["completed"] = b.execute("SELECT heimdall.complete_chunk(%s, %s, 'test')",
                                        (chunk_id, token)).fetchone()[0]
        result["needed"] = needed
        b.commit()

    t = threading.Thread(target=other)
    t.start()
    t.join(0.3)
    assert t.is_alive()                      # blocked on the chunk lock
    assert a.execute("SELECT heimdall.complete_chunk(%s, %s, 'test')", (chunk_id, token)).fetchone()[0] is True
    a.commit()
    t.join(10)
    assert result == {"needed": False, "completed": False}
    assert counts(conn, ds) == (10, 10, 10, 10)


# ------------------------------------------------------------------------------ invariants
def test_feature_row_without_iq_rejected_at_commit(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    with pytest.raises(pgerr.CheckViolation, match=r"sample 0 has a feature row but no IQ row"):
        with conn.transaction():
            insert_samples(conn, ds, 0, 4, iq=False)
    assert counts(conn, ds) == (0, 0, 0, 5)


def test_iq_without_feature_rejected(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    with pytest.raises(pgerr.ForeignKeyViolation, match="synthetic_iq_samples_features_fkey"):
        insert_samples(conn, ds, 0, 4, features=False)


def test_deleting_iq_row_alone_rejected_at_commit(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    insert_samples(conn, ds, 0, 4)
    with pytest.raises(pgerr.CheckViolation, match="would leave its feature row without IQ"):
        conn.execute("DELETE FROM heimdall.synthetic_iq_samples WHERE dataset_id = %s AND sample_idx = 2", (ds,))
    # deleting the feature row takes its IQ row along and keeps num_samples right
    conn.execute("DELETE FROM heimdall.measurement_features WHERE dataset_id = %s AND sample_idx = 2", (ds,))
    assert counts(conn, ds) == (4, 4, 4, 5)


def test_sample_idx_outside_reservations_rejected(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    with pytest.raises(pgerr.CheckViolation, match=r"sample_idx 5 lies outside its reserved range \[0, 5\)"):
        with conn.transaction():
            insert_samples(conn, ds, 3, 5)
    with pytest.raises(pgerr.CheckViolation, match="outside its reserved range"):
        with conn.transaction():
            insert_samples(conn, create(conn, "empty"), 0, 0)


def test_duplicate_index_rejected(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    insert_samples(conn, ds, 0, 4)
    with pytest.raises(pgerr.UniqueViolation):
        insert_samples(conn, ds, 4, 4)
    assert counts(conn, ds) == (5, 5, 5, 5)


def test_iq_row_in_feature_based_dataset_rejected(conn):
    ds = create(conn, dataset_type="feature_based")
    conn.execute("SELECT heimdall.reserve_samples(%s, 3)", (ds,))
    insert_samples(conn, ds, 0, 2, iq=False)          # features alone are fine here
    with pytest.raises(pgerr.CheckViolation, match="is feature_based: it cannot have IQ rows"):
        insert_samples(conn, ds, 0, 2, features=False)


@pytest.mark.parametrize("assignment", [
    "dataset_type = 'feature_based'",
    "config = config || '{\"max_gdop\": 5}'",
    "seed = seed + 1",
])
def test_dataset_definition_is_immutable(conn, assignment):
    ds = create(conn)
    with pytest.raises(pgerr.CheckViolation, match="immutable"):
        conn.execute(f"UPDATE heimdall.synthetic_datasets SET {assignment} WHERE id = %s", (ds,))


def test_num_samples_only_equals_feature_rows(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    insert_samples(conn, ds, 0, 4)
    with pytest.raises(pgerr.CheckViolation, match=r"only equal the number of feature rows \(5\), not 3"):
        conn.execute("UPDATE heimdall.synthetic_datasets SET num_samples = 3 WHERE id = %s", (ds,))
    # the damage made by bypassing triggers can be repaired to the truth, and only to it
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.synthetic_datasets SET num_samples = 3 WHERE id = %s", (ds,))
    conn.execute("UPDATE heimdall.synthetic_datasets SET num_samples = 5 WHERE id = %s", (ds,))
    assert counts(conn, ds)[0] == 5


def test_next_idx_cannot_be_lowered_under_committed_rows(conn):
    ds = create(conn)
    conn.execute("SELECT heimdall.reserve_samples(%s, 5)", (ds,))
    insert_samples(conn, ds, 0, 4)
    with pytest.raises(pgerr.CheckViolation, match="cannot lower next_idx"):
        conn.execute("UPDATE heimdall.synthetic_datasets SET next_idx = 0 WHERE id = %s", (ds,))


def test_delete_dataset_removes_rows_messages_and_records_objects(conn):
    ds = create(conn, n=250)
    fill_pending_chunks(conn)
    conn.execute("SELECT heimdall.expand_dataset(%s, 100)", (ds,))
    assert conn.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 1
    assert conn.execute("SELECT heimdall.delete_dataset(%s)", (ds,)).fetchone()[0] is True
    for table in ("measurement_features", "synthetic_iq_samples", "generation_chunks", "generation_requests"):
        assert conn.execute(f"SELECT count(*) FROM heimdall.{table}").fetchone()[0] == 0
    assert conn.execute("SELECT queue_length FROM pgmq.metrics('heimdall_chunks')").fetchone()[0] == 0
    prefix = conn.execute("SELECT object_prefix FROM heimdall.deleted_datasets WHERE dataset_id = %s",
                          (ds,)).fetchone()[0]
    assert prefix == f"datasets/{ds}/"
    assert conn.execute("SELECT action FROM heimdall.audit_log WHERE dataset_id = %s", (ds,)).fetchone() == (
        "delete_dataset",)


# ----------------------------------------------------------------------------- bad input
UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("sql, args, sqlstate, message", [
    ("SELECT heimdall.reserve_samples(%s, 5)", (UNKNOWN,), "P0002", f"dataset {UNKNOWN} does not exist"),
    ("SELECT heimdall.expand_dataset(%s, 5)", (UNKNOWN,), "P0002", f"dataset {UNKNOWN} does not exist"),
    ("SELECT heimdall.retry_failed_chunks(%s)", (UNKNOWN,), "P0002", "does not exist"),
    ("SELECT heimdall.delete_dataset(%s)", (UNKNOWN,), "P0002", "does not exist"),
    ("SELECT heimdall.pause_request(%s)", (UNKNOWN,), "P0002", f"request {UNKNOWN} does not exist"),
    ("SELECT heimdall.resume_request(%s)", (UNKNOWN,), "P0002", "does not exist"),
    ("SELECT heimdall.abandon_request(%s)", (UNKNOWN,), "P0002", "does not exist"),
    ("SELECT heimdall.begin_chunk_commit(%s, gen_random_uuid())", (424242,), "P0002", "chunk 424242 does not exist"),
    ("SELECT heimdall.complete_chunk(%s, gen_random_uuid(), 'v')", (424242,), "P0002", "chunk 424242 does not exist"),
    ("SELECT heimdall.create_dataset(%s, 'iq_raw')", ("",), "22023", "name must be 1 to 200"),
    ("SELECT heimdall.create_dataset(%s, 'iq_raw')", ("x" * 201,), "22023", "name must be 1 to 200"),
    ("SELECT heimdall.create_dataset('a', %s)", ("raw",), "22023", "dataset_type must be"),
    ("SELECT heimdall.create_dataset('a', %s)", (None,), "22023", "dataset_type must be"),
    ("SELECT heimdall.create_dataset('a', 'iq_raw', '{}', NULL, %s)", (-1,), "22023", "num_samples must be >= 0"),
    ("SELECT heimdall.create_dataset('a', 'iq_raw', '{}', NULL, %s)", (10_000_001,), "22003",
     "num_samples must be <= 10000000"),
    ("SELECT heimdall.claim_chunk('w', %s, 5, 'v')", (0,), "22023", "vt_s must be"),
    ("SELECT heimdall.claim_chunk('w', 30, %s, 'v')", (0,), "22023", "max_reads must be"),
    ("SELECT heimdall.claim_chunk('w', 30, 5, %s)", (None,), "22023", "generator_version must be"),
])
def test_bad_input_raises_named_error(conn, sql, args, sqlstate, message):
    with pytest.raises(psycopg.Error, match=message) as exc:
        conn.execute(sql, args)
    assert exc.value.sqlstate == sqlstate


@pytest.mark.parametrize("n, sqlstate", [(0, "22023"), (-3, "22023"), (None, "22023"), (10_000_001, "22003")])
@pytest.mark.parametrize("fn", ["reserve_samples", "expand_dataset"])
def test_bad_counts(conn, fn, n, sqlstate):
    ds = create(conn)
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(f"SELECT heimdall.{fn}(%s, %s)", (ds, n))
    assert exc.value.sqlstate == sqlstate
    assert "n (samples) must be" in str(exc.value)


def test_counter_overflow_is_an_error(conn):
    ds = create(conn)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.synthetic_datasets SET next_idx = 2147483000 WHERE id = %s", (ds,))
    with pytest.raises(pgerr.NumericValueOutOfRange, match="would pass the largest sample index"):
        conn.execute("SELECT heimdall.reserve_samples(%s, 1000)", (ds,))


def test_duplicate_name_never_appends(conn):
    ds = create(conn, "radio", n=10)
    with pytest.raises(pgerr.UniqueViolation, match=f'dataset named "radio" already exists \\(id {ds}\\)'):
        create(conn, "radio", n=10)
    assert conn.execute("SELECT next_idx FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()[0] == 10


BAD_CONFIGS = [
    ({"bogus": 1}, 'unknown config key\\(s\\): "bogus"'),
    ([1, 2], "config must be a JSON object"),
    ({"frequency_mhz": "145"}, 'config key "frequency_mhz": must be a number'),
    ({"frequency_mhz": 0}, 'config key "frequency_mhz": must be >= 1'),
    ({"frequency_mhz": 7000}, 'config key "frequency_mhz": must be <= 6000'),
    ({"tx_power_dbm": None}, 'config key "tx_power_dbm": must be a number'),
    ({"sample_rate_hz": 50000.5}, 'config key "sample_rate_hz": must be an integer'),
    ({"min_receivers": 2}, 'config key "min_receivers": must be >= 3'),
    ({"min_receivers": 8}, 'config key "min_receivers": 8 exceeds the 7 receivers'),
    ({"max_gdop": 0}, 'config key "max_gdop": must be > 0'),
    ({"inside_ratio": 1.5}, 'config key "inside_ratio": must be <= 1'),
    ({"chunk_size": 0}, 'config key "chunk_size": must be >= 1'),
    ({"bandwidth_hz": 25001}, 'config key "bandwidth_hz": must be <= sample_rate_hz / 2'),
    ({"duration_ms": 1, "sample_rate_hz": 1000, "bandwidth_hz": 100}, 'config key "duration_ms"'),
    ({"tx_alt_min_m": 500, "tx_alt_max_m": 100}, 'config key "tx_alt_max_m": must be >= tx_alt_min_m'),
    ({"signal_mix": {"noise": 1}}, 'config key "signal_mix": unknown kind "noise"'),
    ({"signal_mix": {"tone": 0}}, 'config key "signal_mix": at least one weight'),
    ({"signal_mix": {"tone": -1}}, 'weight of "tone" must be a number >= 0'),
    ({"signal_mix": {"audio": 1}}, 'weight "audio" > 0 needs config key "audio_library"'),
    ({"audio_library": 3}, 'config key "audio_library": must be a string or null'),
    ({"signal_mix": [1]}, 'config key "signal_mix": must be a JSON object'),
    ({"receivers": {"mode": "grid"}}, 'config key "receivers": "mode" must be'),
    ({"receivers": {"mode": "fixed", "stations": []}}, "array of 3 to 64 stations"),
    ({"receivers": {"mode": "fixed", "stations": [{"id": "a", "lat": 1, "lon": 1}] * 3}}, 'duplicate station id "a"'),
    ({"receivers": {"mode": "fixed", "stations": [{"id": f"s{i}", "lat": 91, "lon": 1} for i in range(3)]}},
     'station "s0" lat must be'),
    ({"receivers": {"mode": "fixed", "stations": [{"id": f"s{i}", "lat": 1, "lon": 1, "gain": 2} for i in range(3)]}},
     "unknown station key\\(s\\) gain"),
    ({"receivers": {"mode": "random", "count_min": 2}}, "3 <= count_min <= count_max <= 64"),
    ({"receivers": {"mode": "hexagonal", "count_min": 9, "count_max": 5}}, "3 <= count_min <= count_max"),
    ({"receivers": {"mode": "random", "area": {"lat_min": 46, "lat_max": 45, "lon_min": 7, "lon_max": 8}}},
     '"area" needs -90 <= lat_min < lat_max'),
    ({"receivers": {"mode": "random", "radius": 3}}, "unknown key\\(s\\) radius"),
]


@pytest.mark.parametrize("config, message", BAD_CONFIGS)
def test_each_bad_config_rejected_naming_the_key(conn, config, message):
    with pytest.raises(pgerr.InvalidParameterValue, match=message):
        conn.execute("SELECT heimdall.normalize_config(%s)", (Jsonb(config),))
    with pytest.raises(pgerr.InvalidParameterValue, match=message):
        create(conn, config=config)
    assert conn.execute("SELECT count(*) FROM heimdall.synthetic_datasets").fetchone()[0] == 0


def test_normalize_config_defaults_falsy_values_and_idempotence(conn):
    norm = conn.execute("SELECT heimdall.normalize_config('{}')").fetchone()[0]
    assert norm["frequency_mhz"] == 145 and norm["max_gdop"] == 10 and norm["inside_ratio"] == 0.7
    assert norm["bandwidth_hz"] == 12500 and norm["sample_rate_hz"] == 50000 and norm["duration_ms"] == 200
    assert [s["id"] for s in norm["receivers"]["stations"]] == [
        "aquila_di_giaveno", "montanaro", "torino", "coazze", "passo_del_giovi", "genova", "milano_baggio"]
    zero = conn.execute("SELECT heimdall.normalize_config(%s)",
                        (Jsonb({"tx_power_dbm": 0, "inside_ratio": 0, "shadowing_sigma_db": 0}),)).fetchone()[0]
    assert (zero["tx_power_dbm"], zero["inside_ratio"], zero["shadowing_sigma_db"]) == (0, 0, 0)
    again = conn.execute("SELECT heimdall.normalize_config(%s)", (Jsonb(zero),)).fetchone()[0]
    assert again == zero
    rnd = conn.execute("SELECT heimdall.normalize_config(%s)",
                       (Jsonb({"receivers": {"mode": "hexagonal"}}),)).fetchone()[0]["receivers"]
    assert rnd == {"mode": "hexagonal", "count_min": 4, "count_max": 8, "alt_m": 200,
                   "area": {"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3},
                   # propagation (revision 0003): antenna height above ground and pattern
                   "height_agl_m": 10, "antenna": {"pattern": "omni", "gain_dbi": 0}}


def test_dataset_stores_normalized_config_and_chosen_seed(conn):
    ds = create(conn, config={"max_gdop": 5}, seed=None)
    cfg, seed = conn.execute("SELECT config, seed FROM heimdall.synthetic_datasets WHERE id = %s", (ds,)).fetchone()
    assert cfg["max_gdop"] == 5 and cfg["frequency_mhz"] == 145
    assert seed is not None and seed >= 0
