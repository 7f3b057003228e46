"""The database layer: migrations to head on both backends, and the refusal to run on a stale schema."""

from __future__ import annotations

import pytest
from alembic import command
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
