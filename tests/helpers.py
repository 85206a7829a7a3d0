"""Test helpers: write sample rows the way a worker does, without the RF core."""

from __future__ import annotations

import psycopg

FEATURES_SQL = """
INSERT INTO heimdall.measurement_features
    (dataset_id, sample_idx, tx_lat, tx_lon, tx_alt_m, tx_power_dbm, frequency_hz, signal_kind,
     gdop, mean_snr_db, num_receivers, num_receivers_detected, receiver_ids, rx_lat, rx_lon,
     rx_alt_m, rssi_dbm, snr_db, noise_floor_dbm, freq_offset_hz, bandwidth_hz, toa_s, tdoa_s,
     signal_present)
SELECT %(ds)s, i, 45.0, 8.0, 100, 37, 145e6, 'tone', 2.0, 10, 3, 3, '{a,b,c}',
       '{45.0,45.1,45.2}', '{7.0,7.1,7.2}', '{1,2,3}', '{-90,-91,-92}', '{10,11,12}',
       '{-127,-127,-127}', '{0,0,0}', '{12500,12500,12500}', '{1e-4,1e-4,1e-4}', '{0,0,0}', '{t,t,t}'
  FROM generate_series(%(first)s::int, %(last)s::int) AS i
"""

IQ_SQL = """
INSERT INTO heimdall.synthetic_iq_samples
    (dataset_id, sample_idx, object_key, byte_offset, byte_length, sha256, shape, sample_rate_hz)
SELECT %(ds)s, i, 'datasets/' || %(ds)s || '/iq/' || %(first)s || '-' || %(last)s || '.npy',
       128 + (i - %(first)s::int) * 2400, 2400, repeat('0', 64), '{3,100}', 50000
  FROM generate_series(%(first)s::int, %(last)s::int) AS i
"""


def insert_samples(conn: psycopg.Connection, ds, first: int, last: int, *,
                   features: bool = True, iq: bool = True, staged: bool = False) -> None:
    """Rows for indices first..last. Straight into the sample tables (the table owner may),
    or with ``staged`` into this session's staging tables, as a worker must."""
    params = {"ds": ds, "first": first, "last": last}
    feats, iqs = FEATURES_SQL, IQ_SQL
    if staged:
        feats = feats.replace("heimdall.measurement_features", "pg_temp.heimdall_stage_features")
        iqs = iqs.replace("heimdall.synthetic_iq_samples", "pg_temp.heimdall_stage_iq")
    with conn.transaction():    # one transaction (a savepoint if one is open already)
        if features:
            conn.execute(feats, params)
        if iq:
            conn.execute(iqs, params)


def claim(conn: psycopg.Connection, generator_version: str = "test", worker_id: str = "t", vt_s: int = 60):
    """One claim_chunk call in its own transaction: (chunk_id, claim_token, dataset_id,
    first_idx, last_idx) or None."""
    with conn.transaction():
        return conn.execute(
            "SELECT chunk_id, claim_token, dataset_id, first_idx, last_idx "
            "FROM heimdall.claim_chunk(%s, %s, 5, %s)", (worker_id, vt_s, generator_version)).fetchone()


def commit_chunk(conn: psycopg.Connection, chunk_id, token, ds, first: int, last: int, *, iq: bool = True,
                 generator_version: str = "test") -> bool:
    """The worker's commit transaction: begin, stage the rows, complete."""
    with conn.transaction():
        needed = conn.execute("SELECT heimdall.begin_chunk_commit(%s, %s)", (chunk_id, token)).fetchone()[0]
        if needed:
            insert_samples(conn, ds, first, last, iq=iq, staged=True)
        return conn.execute("SELECT heimdall.complete_chunk(%s, %s, %s)",
                            (chunk_id, token, generator_version)).fetchone()[0]


def fill_pending_chunks(conn: psycopg.Connection, iq: bool | None = None, generator_version: str = "test") -> int:
    """Claim every queued chunk and commit fake rows for it, as workers do (IQ rows for
    iq_raw datasets unless ``iq`` says otherwise). Returns chunks done."""
    done = 0
    while True:
        with conn.transaction():
            row = conn.execute("SELECT chunk_id, claim_token, dataset_id, first_idx, last_idx, dataset_type "
                               "FROM heimdall.claim_chunk('t', 60, 5, %s)", (generator_version,)).fetchone()
        if row is None:
            return done
        chunk_id, token, ds, first, last, dataset_type = row
        with_iq = dataset_type == "iq_raw" if iq is None else iq
        commit_chunk(conn, chunk_id, token, ds, first, last, iq=with_iq, generator_version=generator_version)
        done += 1
