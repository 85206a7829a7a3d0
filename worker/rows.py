"""SampleBatch -> database rows, written with binary COPY (one COPY per table per chunk)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import psycopg

from .storage import EncodedChunk, StreamingChunk

# (column, postgres type, SampleBatch attribute or None for special handling)
FEATURE_COLUMNS: list[tuple[str, str]] = [
    ("dataset_id", "uuid"), ("sample_idx", "int4"),
    ("tx_lat", "float8"), ("tx_lon", "float8"), ("tx_alt_m", "float4"), ("tx_power_dbm", "float4"),
    ("frequency_hz", "float8"), ("signal_kind", "text"),
    ("gdop", "float8"), ("mean_snr_db", "float4"), ("num_receivers", "int2"),
    ("num_receivers_detected", "int2"), ("attempts", "int4"), ("rejections", "jsonb"),
    ("receiver_ids", "text[]"),
    ("rx_lat", "float8[]"), ("rx_lon", "float8[]"), ("rx_alt_m", "float4[]"),
    ("rssi_dbm", "float4[]"), ("snr_db", "float4[]"), ("noise_floor_dbm", "float4[]"),
    ("freq_offset_hz", "float4[]"), ("bandwidth_hz", "float4[]"), ("toa_s", "float8[]"),
    ("tdoa_s", "float8[]"), ("signal_present", "bool[]"),
    ("spectral_centroid_hz", "float4[]"), ("spectral_rolloff_hz", "float4[]"),
    ("envelope_mean", "float4[]"), ("envelope_std", "float4[]"), ("papr_db", "float4[]"),
    ("delay_spread_s", "float4[]"),
    ("true_rx_power_dbm", "float4[]"), ("true_snr_db", "float4[]"), ("true_freq_offset_hz", "float4[]"),
    ("true_tdoa_s", "float8[]"), ("distance_m", "float8[]"), ("path_loss_db", "float4[]"),
    ("los", "bool[]"),
    # revision 0002, appended at the end of the table (propagation truth)
    ("tx_height_agl_m", "float4"), ("rx_height_agl_m", "float4[]"), ("path_loss_median_db", "float4[]"),
    ("excess_delay_s", "float4[]"), ("tx_antenna_gain_db", "float4[]"), ("rx_antenna_gain_db", "float4[]"),
    ("polarization_loss_db", "float4[]"),
    # revision 0003 (issue 12), appended at the end: sigma of tdoa_s (joint estimator)
    ("tdoa_std_s", "float4[]"),
    # revision 0003 (issue 12 item 2): the transmitter's carrier offset (oscillator configs)
    ("true_tx_freq_offset_hz", "float4"),
    # revision 0003 (issue 12 item 1): each receiver's clock offset ("timing" configs)
    ("true_clock_offset_s", "float4[]"),
    # revision 0004 (issue 12 items 4 and 6): ADC clipping, signal on/off in each window, CTCSS
    ("clipped_fraction", "float4[]"), ("true_signal_start_s", "float4[]"), ("true_signal_stop_s", "float4[]"),
    ("ctcss_hz", "float4"),
]
SCALAR_FLOATS = {"tx_lat", "tx_lon", "tx_alt_m", "tx_power_dbm", "frequency_hz", "gdop", "mean_snr_db",
                 "tx_height_agl_m", "true_tx_freq_offset_hz", "ctcss_hz"}
# Written as NULL when a sample has no value (all NaN): samples of configs without
# "propagation" (the legacy path) keep NULL there, as rows made before revision 0002.
NULL_WHEN_NAN = {"tx_height_agl_m", "rx_height_agl_m", "path_loss_median_db", "excess_delay_s",
                 "tx_antenna_gain_db", "rx_antenna_gain_db", "polarization_loss_db",
                 # configs without "tdoa_estimator" "joint": NULL, as rows made before 0003
                 "tdoa_std_s",
                 # configs without "tx_freq_error_ppm": NULL, as rows made before 0003
                 "true_tx_freq_offset_hz",
                 # configs without "timing": NULL, as rows made before 0003
                 "true_clock_offset_s",
                 # configs without the 0004 keys ("adc_bits", "tx_key_up_probability"),
                 # and samples without a CTCSS tone: NULL
                 "clipped_fraction", "true_signal_start_s", "true_signal_stop_s", "ctcss_hz"}
# Per-receiver columns estimated from the IQ (what a real receiver network measures), in
# the order of HeimdallDataset's feature axis; the ground-truth columns (true_*,
# distance_m, los, path_loss_*, ...) are not among them, so a model cannot see the answer.
# Units: dBm, dB, dBm, Hz, Hz, s, 0/1, Hz, Hz, sqrt(mW), sqrt(mW), dB, s.
ESTIMATED_PER_RECEIVER: tuple[str, ...] = (
    "rssi_dbm", "snr_db", "noise_floor_dbm", "freq_offset_hz", "bandwidth_hz", "tdoa_s",
    "signal_present", "spectral_centroid_hz", "spectral_rolloff_hz", "envelope_mean",
    "envelope_std", "papr_db", "delay_spread_s",
)
IQ_COLUMNS: list[tuple[str, str]] = [
    ("dataset_id", "uuid"), ("sample_idx", "int4"), ("object_key", "text"), ("byte_offset", "int8"),
    ("byte_length", "int8"), ("sha256", "text"), ("shape", "int4[]"), ("dtype", "text"),
    ("sample_rate_hz", "int4"),
    # revision 0004: mW per LSB^2 of each receiver (ci16_le rows; NULL for complex64)
    ("scale_mw", "float4[]"),
]


def feature_rows(dataset_id, batch) -> Iterator[tuple]:
    """One tuple per sample, in FEATURE_COLUMNS order."""
    for k in range(len(batch)):
        nr = int(batch.num_receivers[k])
        row: list = []
        for col, pgtype in FEATURE_COLUMNS:
            if col == "dataset_id":
                row.append(dataset_id)
            elif col == "sample_idx":
                row.append(int(batch.sample_idx[k]))
            elif col == "signal_kind":
                row.append(batch.signal_kind[k])
            elif col == "rejections":
                row.append(json.dumps(batch.rejections[k]))
            elif col == "receiver_ids":
                row.append(list(batch.receiver_ids[k]))
            elif col in ("num_receivers", "num_receivers_detected", "attempts"):
                row.append(int(getattr(batch, col)[k]))
            elif col in SCALAR_FLOATS:
                x = float(getattr(batch, col)[k])
                row.append(None if col in NULL_WHEN_NAN and x != x else x)
            elif pgtype == "bool[]":
                row.append([bool(v) for v in getattr(batch, col)[k, :nr]])
            else:
                a = np.asarray(getattr(batch, col)[k, :nr], dtype=np.float64)
                row.append(None if col in NULL_WHEN_NAN and np.isnan(a).all() else a.tolist())
        yield tuple(row)


def iq_rows(dataset_id, batch, key: str, enc: EncodedChunk | StreamingChunk, sample_rate_hz: int) -> Iterator[tuple]:
    """One tuple per sample, in IQ_COLUMNS order. ``dtype`` is the object's (``enc.dtype``);
    ``scale_mw`` (ci16_le only, NULL for complex64) has one value per receiver slot of the
    stored array (R_max = ``shape[0]``, as the table's CHECK wants): the sample's receivers'
    ``batch.iq_scale_mw``, 0 for padding slots (their codes are 0: power 0)."""
    dtype = enc.dtype
    r_max = int(enc.shape[0])
    for k in range(len(batch)):
        scale = None
        if dtype == "ci16_le":
            nr = int(batch.num_receivers[k])
            s = np.zeros(r_max, dtype=np.float64)
            s[:nr] = batch.iq_scale_mw[k, :nr]
            if not np.isfinite(s[:nr]).all() or (s[:nr] <= 0).any():
                raise ValueError(f"sample {int(batch.sample_idx[k])}: ci16_le IQ without a positive scale_mw "
                                 f"for every receiver ({s[:nr].tolist()})")
            scale = s.tolist()
        yield (dataset_id, int(batch.sample_idx[k]), key, enc.offset(k), enc.sample_nbytes,
               enc.sha256[k], list(enc.shape), dtype, int(sample_rate_hz), scale)


# Workers never write the sample tables: they COPY into this session's staging tables,
# which heimdall.begin_chunk_commit creates, and heimdall.complete_chunk moves the rows
# after checking each lies in the claimed chunk. Their columns are
# heimdall.staged_columns(<table>), which an integration test checks against the lists above.
STAGE_FEATURES = "heimdall_stage_features"
STAGE_IQ = "heimdall_stage_iq"


def copy_rows(conn: psycopg.Connection, stage_table: str, columns: list[tuple[str, str]], rows) -> int:
    """Binary COPY of ``rows`` into the staging table pg_temp.<stage_table> (identifiers from
    the constants above)."""
    from psycopg import sql

    stmt = sql.SQL("COPY pg_temp.{} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(stage_table), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))
    n = 0
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types([t for _, t in columns])
        for row in rows:
            copy.write_row(row)
            n += 1
    return n
