"""Initial schema: datasets, samples, chunks, queue, invariants, admin views.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Applies frozen copies that never change once released:
  0001_initial.sql          - heimdall schema (sql/ at this revision, concatenated)
  0001_pgmq_1.13.0.sql      - pgmq's SQL, used only where the pgmq extension is not
                              available and pgmq is not installed yet
"""

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HERE = Path(__file__).resolve().parent


def run_sql(sql: str) -> None:
    # exec_driver_sql with no_parameters: '%' and ':word' in SQL text stay literal.
    op.get_bind().exec_driver_sql(sql, execution_options={"no_parameters": True})


def upgrade() -> None:
    bind = op.get_bind()
    has_pgmq = bind.exec_driver_sql("SELECT to_regproc('pgmq.read') IS NOT NULL").scalar()
    if not has_pgmq:
        has_ext = bind.exec_driver_sql(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgmq'").scalar()
        if has_ext:
            run_sql("CREATE EXTENSION IF NOT EXISTS pgmq")
        else:
            run_sql((HERE / "0001_pgmq_1.13.0.sql").read_text())
    run_sql((HERE / "0001_initial.sql").read_text())


def downgrade() -> None:
    # pgmq itself stays (other applications may use it); our queue and schema go.
    run_sql("SELECT pgmq.drop_queue('heimdall_chunks') "
            "WHERE EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = 'heimdall_chunks')")
    run_sql("DROP SCHEMA heimdall CASCADE")
