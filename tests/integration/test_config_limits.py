"""normalize_config bounds the work and memory a config can ask for, and rejects numbers the
worker cannot read as they are stored (issue 9, items 9-10).

Runs against a database built from the live ``sql/`` files (``db.build_from_sql``), the
schema a migration freezes: the caps are checked where they live.
"""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors as pgerr

from worker import db
from worker.config import GenerationConfig

SAMPLE_BYTES_CAP = 64 * 1024 * 1024          # receivers x IQ samples x 8
CHUNK_OBJECT_CAP = 2 * 1024 * 1024 * 1024    # chunk_size x bytes per sample
DEFAULT_SAMPLE_BYTES = 7 * 10_000 * 8        # 7 stations x 50 kHz x 200 ms x complex64


@pytest.fixture(scope="module")
def live(pg_server):
    """One database built from sql/ for this module (autocommit connection)."""
    name = f"config_limits_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(pg_server.url_for(name), autocommit=True) as c:
            db.build_from_sql(c)
            yield c
    finally:
        with psycopg.connect(pg_server.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def normalize(conn, config_text: str) -> dict:
    """normalize_config of a JSON text (so numbers Python cannot hold, like 1e-400, get in)."""
    return conn.execute("SELECT heimdall.normalize_config(%s::jsonb)::text", (config_text,)).fetchone()[0]


def stations(n: int, **first) -> list[dict]:
    out = [{"id": f"s{i}", "lat": 45 + i / 10, "lon": 7 + i / 10} for i in range(n)]
    out[0].update(first)
    return out


HEX8 = '"receivers": {"mode": "hexagonal", "count_min": 8, "count_max": 8}'

REJECTED = [
    # numbers a float64 cannot keep: stored as numeric, read by the worker as 0.0 or inf
    ('{"max_gdop": 1e-400}', ['"max_gdop"', "1.000000e-400", "float64"]),
    ('{"inside_ratio": 1e-320}', ['"inside_ratio"', "float64"]),
    ('{"tx_power_dbm": -4e-310}', ['"tx_power_dbm"', "float64"]),
    ('{"signal_mix": {"tone": 1e-400}}', ['"signal_mix"', "float64"]),
    ('{"signal_mix": {"voice": 1, "tone": 1e-330}}', ['"signal_mix"', "float64"]),
    (json.dumps({"receivers": {"mode": "fixed", "stations": stations(3)}}).replace('"lat": 45.0', '"lat": 1e-400'),
     ['"receivers"', "float64"]),
    ('{"receivers": {"mode": "random", "area": {"lat_min": 1e-400, "lat_max": 45, "lon_min": 7, "lon_max": 8}}}',
     ['"receivers"', "float64"]),
    ('{"max_gdop": "NaN"}', ['"max_gdop"', "must be a number"]),
    ('{"max_gdop": "Infinity"}', ['"max_gdop"', "must be a number"]),
    # signal_mix weights: finite, >= 0, each <= 1e6 (the sum cannot overflow)
    ('{"signal_mix": {"tone": 1e308, "voice": 1e308}}', ['"signal_mix"', '"tone"', "1000000"]),
    ('{"signal_mix": {"tone": 1e400}}', ['"signal_mix"']),
    ('{"signal_mix": {"voice": 1000000.5}}', ['"signal_mix"', '"voice"', "<= 1000000"]),
    ('{"signal_mix": {"tone": "NaN"}}', ['"signal_mix"', '"tone"', "must be a number"]),
    # work per sample index
    ('{"max_attempts": 10001}', ['"max_attempts"', "must be <= 10000"]),
    ('{"max_attempts": 1000000}', ['"max_attempts"', "must be <= 10000"]),
    # bytes per sample: receivers x IQ samples x 8 <= 64 MiB
    ('{"sample_rate_hz": 10000000, "duration_ms": 200}',
     ['"receivers"', '"sample_rate_hz"', '"duration_ms"', "7 receivers x 2000000 IQ samples x 8 bytes",
      "112000000 bytes per sample", f"<= {SAMPLE_BYTES_CAP} (64 MiB)"]),
    ('{' + HEX8 + ', "sample_rate_hz": 1048577, "duration_ms": 1000}',
     ['"receivers"', '"sample_rate_hz"', '"duration_ms"', f"<= {SAMPLE_BYTES_CAP}"]),
    ('{"receivers": {"mode": "random", "count_min": 3, "count_max": 64}, "sample_rate_hz": 2000000, '
     '"duration_ms": 1000}', ['"receivers"', "64 receivers x 2000000 IQ samples", "1024000000 bytes per sample"]),
    # bytes per chunk object: chunk_size x bytes per sample <= 2 GiB
    ('{"chunk_size": 3835}', ['"chunk_size"', f"3835 samples x {DEFAULT_SAMPLE_BYTES} bytes per sample",
                              f"<= {CHUNK_OBJECT_CAP} (2 GiB)", "at most 3834"]),
    ('{"chunk_size": 10000}', ['"chunk_size"', f"<= {CHUNK_OBJECT_CAP}"]),
    ('{' + HEX8 + ', "sample_rate_hz": 1048576, "duration_ms": 1000, "chunk_size": 33}',
     ['"chunk_size"', "at most 32"]),
]


@pytest.mark.parametrize("config, fragments", REJECTED, ids=[c[:60] for c, _ in REJECTED])
def test_unusable_config_is_rejected_naming_the_keys_and_the_limit(live, config, fragments):
    with pytest.raises(pgerr.InvalidParameterValue) as err:
        normalize(live, config)
    msg = err.value.diag.message_primary
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    # and through the API that stores configs
    with pytest.raises(pgerr.InvalidParameterValue):
        live.execute("SELECT heimdall.create_dataset(%s, 'iq_raw', %s::jsonb, 1, 0)",
                     (f"x-{uuid.uuid4().hex[:6]}", config))


ACCEPTED = [
    '{"max_attempts": 10000}',
    '{"chunk_size": 3834}',                                       # 2,147,040,000 bytes
    # exactly 64 MiB per sample (8 x 1,048,576 x 8) and exactly 2 GiB per chunk object (32 of them)
    '{' + HEX8 + ', "sample_rate_hz": 1048576, "duration_ms": 1000, "chunk_size": 32}',
    '{"signal_mix": {"tone": 1000000, "voice": 1000000, "dtmf": 1000000}}',
    '{"signal_mix": {"tone": 2.2250738585072014e-308}}',          # the smallest normal float64
    '{"max_gdop": 2.2250738585072014e-308, "inside_ratio": 0, "tx_power_dbm": -0}',
    '{"receivers": {"mode": "fixed", "stations": ' + json.dumps(stations(3, lat=0, lon=-0.0)) + '}}',
]


def _numbers(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _numbers(v)
    elif isinstance(node, (int, float, Decimal)) and not isinstance(node, bool):
        yield node


@pytest.mark.parametrize("config", ACCEPTED)
def test_accepted_config_reads_back_as_stored(live, config):
    """Every number of an accepted config reads as a finite float64 that is zero exactly when
    the stored number is, and the worker's typed view of it builds."""
    text = normalize(live, config)
    exact = list(_numbers(json.loads(text, parse_float=Decimal, parse_int=Decimal)))
    as_read = list(_numbers(json.loads(text)))
    assert len(exact) == len(as_read) > 0
    for d, f in zip(exact, as_read, strict=True):
        assert math.isfinite(f) and (f == 0) == (d == 0), (d, f)
    GenerationConfig.from_normalized(json.loads(text))
    assert json.loads(normalize(live, text)) == json.loads(text)          # still idempotent


def test_config_key_rows_hold_the_new_limits(live):
    row = live.execute("SELECT min_value, max_value FROM heimdall.config_keys WHERE key = 'max_attempts'").fetchone()
    assert row == (1, 10000)


def test_default_config_is_within_the_caps(live):
    cfg = json.loads(normalize(live, "{}"))
    per_sample = len(cfg["receivers"]["stations"]) * cfg["sample_rate_hz"] * cfg["duration_ms"] // 1000 * 8
    assert per_sample == DEFAULT_SAMPLE_BYTES <= SAMPLE_BYTES_CAP
    assert cfg["chunk_size"] * per_sample <= CHUNK_OBJECT_CAP
