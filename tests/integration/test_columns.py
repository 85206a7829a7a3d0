"""The Python column registry (worker/rows.py) against the catalog: the COPY lists a worker
writes are exactly the staged columns of each sample table, with the same types."""

from __future__ import annotations

import pytest

from worker.rows import FEATURE_COLUMNS, IQ_COLUMNS


@pytest.mark.parametrize("table, columns", [("measurement_features", FEATURE_COLUMNS),
                                            ("synthetic_iq_samples", IQ_COLUMNS)])
def test_copy_columns_are_the_staged_columns_with_catalog_types(conn, table, columns):
    staged = conn.execute("SELECT heimdall.staged_columns(%s::regclass)", (f"heimdall.{table}",)).fetchone()[0]
    assert [c for c, _ in columns] == staged
    for col, pgtype in columns:
        same = conn.execute("""
            SELECT a.atttypid = %s::regtype FROM pg_attribute a
             WHERE a.attrelid = %s::regclass AND a.attname = %s""", (pgtype, f"heimdall.{table}", col)).fetchone()
        assert same == (True,), f"{table}.{col} is not {pgtype}"
