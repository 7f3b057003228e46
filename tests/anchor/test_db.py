"""The database layer: migrations to head on both backends, and the refusal to run on a stale schema."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from anchor.db import (
    SchemaBehindError,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    transaction,
)
from anchor.db.migrate import alembic_config
from anchor.db.models import LogState, Provider


def test_fixture_database_is_at_head_with_every_table(db_engine) -> None:
    check_schema(db_engine)
    tables = set(inspect(db_engine).get_table_names())
    for table in [
        "records",
        "log_entries",
        "log_state",
        "checkpoints",
        "anchors",
        "providers",
        "models",
        "disputes",
        "votes",
        "payouts",
        "slashes",
        "validations",
        "chain_events",
        "sync_cursors",
    ]:
        assert table in tables


def test_log_state_row_is_seeded(db_sessions) -> None:
    with transaction(db_sessions) as s:
        assert s.scalars(select(LogState)).one().size == 0


def test_schema_behind_is_refused_with_what_to_run(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
    engine = make_engine(database_url)
    with pytest.raises(SchemaBehindError, match=r"has no schema: run `toploc-audit db upgrade`"):
        check_schema(engine)
    engine.dispose()


def test_unique_keys_hold(db_sessions) -> None:
    from sqlalchemy.exc import IntegrityError

    with transaction(db_sessions) as s:
        s.add(Provider(address="0x" + "11" * 20, name="a", created_at=0))
    with pytest.raises(IntegrityError), transaction(db_sessions) as s:
        s.add(Provider(address="0x" + "11" * 20, name="b", created_at=0))


def test_head_is_current_after_upgrade(db_engine) -> None:
    assert current_revision(db_engine) == head_revision()


def test_the_migrated_schema_equals_the_models(db_engine) -> None:
    """What autogenerate would write for a database at head: nothing. Every models module counts (a
    table whose module the metadata lacks would read as one to drop)."""
    import verifier.models  # noqa: F401  (the validations table)
    from anchor.db.models import Base

    with db_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_alembic_check_through_env_py_finds_no_changes(database_url: str) -> None:
    """`alembic check` runs autogenerate through migrations/env.py, so it catches a models module that
    env.py forgets to import."""
    command.check(alembic_config(database_url))
