"""Alembic environment: online migrations against TOPLOC_AUDIT_DATABASE_URL (or the URL set by the caller)."""

from __future__ import annotations

from alembic import context

# Every models module, so Base.metadata holds every table: autogenerate (and the schema test,
# tests/anchor/test_db.py) compares the database with this metadata, and a module left out here would
# read as tables to drop.
import anchor.db.models
import verifier.models  # noqa: F401  (registers the validations table on Base)
from anchor.db.engine import make_engine
from anchor.settings import Settings

Base = anchor.db.models.Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
