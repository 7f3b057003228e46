"""Alembic glue: upgrade a database to head, and refuse to run against one whose schema is behind."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.engine import make_engine, normalize_url, session_factory
from anchor.errors import Error

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS = REPO_ROOT / "migrations"


class SchemaBehindError(Error):
    """The database is not at the schema revision this code needs."""


def alembic_config(url: str) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Config values are %-interpolated; a password may hold a '%'.
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "migrations/versions is empty"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Run every pending migration (creates the database file for SQLite)."""
    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the state folder
    command.upgrade(alembic_config(url), revision)


def check_schema(engine: Engine) -> None:
    """Raise SchemaBehindError, saying what to run, unless the database is at the head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    url = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaBehindError(f"database {url} has no schema: run `toploc-audit db upgrade`")
    raise SchemaBehindError(
        f"database {url} is at schema revision {current}, this version needs {head}: "
        "run `toploc-audit db upgrade`"
    )


def open_database(url: str) -> sessionmaker[Session]:
    """A session factory on `url` after checking the schema is at head (what every command uses)."""
    engine = make_engine(url)
    check_schema(engine)
    return session_factory(engine)
