"""Receivers' ADC and messages (issue 12 items 4 and 6): IQ stored as complex int16
(ci16_le) with each receiver's scale (synthetic_iq_samples.scale_mw), the truth columns
clipped_fraction, true_signal_start_s, true_signal_stop_s and ctcss_hz, and the config keys
adc_bits, agc_target_dbfs, agc_window_ms, iq_dtype, tx_power_fluctuation_db,
tx_key_up_probability, tx_drop_probability, ctcss_probability, voice_min_active_fraction.
Stored configs are never rewritten: a dataset without "adc_bits" keeps float IQ stored as
complex64 and its messages, bit for bit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Made as docs/migrations.md describes: drop the replaceable set, hand-written stateful
delta, frozen replay of sql/'s replaceable set at this revision. Downgrade replays 0003's
(and refuses while ci16_le rows exist).
"""

from pathlib import Path

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HERE = Path(__file__).resolve().parent


def run_sql(name: str) -> None:
    # exec_driver_sql with no_parameters: '%' and ':word' in SQL text stay literal.
    op.get_bind().exec_driver_sql((HERE / name).read_text(), execution_options={"no_parameters": True})


def upgrade() -> None:
    run_sql("0004_drop_replaceable.sql")
    run_sql("0004_delta_up.sql")
    run_sql("0004_replaceable.sql")


def downgrade() -> None:
    run_sql("0004_drop_replaceable.sql")
    run_sql("0004_delta_down.sql")
    run_sql("0003_replaceable.sql")
