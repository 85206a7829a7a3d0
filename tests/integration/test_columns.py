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


def test_training_features_and_export_schema_derive_from_the_registry(conn):
    """FEATURE_NAMES (HeimdallDataset's feature axis) are per-receiver array columns of the
    registry and none is a truth column; the Parquet schema has every registry column but
    the dataset id, with the catalog's order."""
    from heimdall_synth import FEATURE_NAMES
    from heimdall_synth.export import features_schema
    from worker.rows import ESTIMATED_PER_RECEIVER

    types = dict(FEATURE_COLUMNS)
    assert FEATURE_NAMES == ESTIMATED_PER_RECEIVER
    assert all(types[name].endswith("[]") for name in FEATURE_NAMES)
    truth = {"true_rx_power_dbm", "true_snr_db", "true_freq_offset_hz", "true_tdoa_s", "distance_m",
             "path_loss_db", "los", "toa_s", "path_loss_median_db", "excess_delay_s"}
    assert not truth & set(FEATURE_NAMES)
    catalog = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'heimdall.measurement_features'::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
    exported = features_schema().names
    assert exported == [c for c in catalog if c in exported] and set(catalog) - set(exported) <= {
        "dataset_id", "created_at"}
