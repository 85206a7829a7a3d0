"""alembic environment: online migrations only, one transaction per run.

Revisions execute raw SQL through the DBAPI connection (``run_sql``) because
``op.execute`` would treat every ``:word`` in SQL text as a bind parameter.
"""

from sqlalchemy import create_engine, pool

from alembic import context

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True,
                          version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run against a database")
run_migrations_online()
