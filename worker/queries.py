"""Named SQL queries (``worker/queries.sql``), loaded once.

The Python side never builds SQL with f-strings: it calls a query by name with
parameters, ``run(conn, "claim_chunk", worker_id=..., vt_s=..., max_reads=...)``. SQL
errors come back as ``worker.errors`` exceptions.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .errors import translate

_QUERIES_FILE = Path(__file__).with_name("queries.sql")
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def queries() -> dict[str, str]:
    text = _QUERIES_FILE.read_text()
    parts = _NAME.split(text)
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        out[name] = body.strip()
    return out


def run(conn: psycopg.Connection, query_name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Execute query ``query_name`` with ``params``; rows as dicts (empty list if none)."""
    sql = queries()[query_name]
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        raise translate(exc) from exc


def one(conn: psycopg.Connection, query_name: str, /, **params: Any) -> dict[str, Any] | None:
    rows = run(conn, query_name, **params)
    return rows[0] if rows else None
