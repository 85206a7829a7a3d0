"""Hardening: pinned search_path, worker protocol bound to claim tokens with staged rows,
poison messages dead-lettered, an unforgeable num_samples guard, explicit per-role grants,
clear errors for counts and seeds; and the migration mechanism every later revision uses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

How a revision is made (docs/migrations.md):
  NNNN_drop_replaceable.sql - frozen: drops every function, trigger and view of the schema
                              and takes back the roles' table privileges
  NNNN_delta_up.sql         - hand-written: the stateful change (ALTER TABLE, config rows)
  NNNN_replaceable.sql      - frozen by scripts/freeze-revision: functions, triggers, views
                              and grants of sql/ at this revision
  NNNN_delta_down.sql       - hand-written: the stateful change undone
Downgrade replays the previous revision's replaceable set (0001_replaceable.sql, cut from
0001_initial.sql). All frozen files are read from this directory, never from sql/.
"""

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HERE = Path(__file__).resolve().parent


def run_sql(name: str) -> None:
    # exec_driver_sql with no_parameters: '%' and ':word' in SQL text stay literal.
    op.get_bind().exec_driver_sql((HERE / name).read_text(), execution_options={"no_parameters": True})


def upgrade() -> None:
    run_sql("0002_drop_replaceable.sql")
    run_sql("0002_delta_up.sql")
    run_sql("0002_replaceable.sql")


def downgrade() -> None:
    run_sql("0002_drop_replaceable.sql")
    run_sql("0002_delta_down.sql")
    run_sql("0001_replaceable.sql")
