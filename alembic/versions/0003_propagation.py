"""Propagation (issue 11): truth columns of the ITM / antenna / polarization path
(tx_height_agl_m, rx_height_agl_m, path_loss_median_db, excess_delay_s, tx_antenna_gain_db,
rx_antenna_gain_db, polarization_loss_db) and the config keys propagation,
tx_height_agl_min_m, tx_height_agl_max_m, tx_antenna. Stored configs are never rewritten:
a dataset without a "propagation" key keeps generating free-space samples bit-identically.
Receivers (issue 12): config value type 'string', the keys noise_environment and
tdoa_estimator (per-station noise_figure_db / noise_environment) and the column tdoa_std_s;
a config without them keeps one noise figure and the coherent TDOA estimator.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Made as docs/migrations.md describes: drop the replaceable set, hand-written stateful
delta, frozen replay of sql/'s replaceable set at this revision. Downgrade replays 0002's.
"""

from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

HERE = Path(__file__).resolve().parent


def run_sql(name: str) -> None:
    # exec_driver_sql with no_parameters: '%' and ':word' in SQL text stay literal.
    op.get_bind().exec_driver_sql((HERE / name).read_text(), execution_options={"no_parameters": True})


def upgrade() -> None:
    run_sql("0003_drop_replaceable.sql")
    run_sql("0003_delta_up.sql")
    run_sql("0003_replaceable.sql")


def downgrade() -> None:
    run_sql("0003_drop_replaceable.sql")
    run_sql("0003_delta_down.sql")
    run_sql("0002_replaceable.sql")
