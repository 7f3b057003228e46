"""`toploc-audit db`: create or upgrade the database schema, and show where it stands."""

from __future__ import annotations

import click

from anchor.db import current_revision, head_revision, make_engine, upgrade
from anchor.settings import Settings


@click.group()
def db() -> None:
    """The recorder's database (TOPLOC_AUDIT_DATABASE_URL; default a SQLite file in the state folder)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade_cmd(revision: str) -> None:
    """Apply every pending migration (creates the SQLite file if needed). Safe to rerun."""
    url = Settings.from_env().database_url
    upgrade(url, revision)
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    click.echo(f"database {shown} is at revision {current_revision(engine)}")
    engine.dispose()


@db.command("status")
def status_cmd() -> None:
    """Print the database's schema revision and the one this version needs; exit 1 if they differ."""
    engine = make_engine(Settings.from_env().database_url)
    current, head = current_revision(engine), head_revision()
    engine.dispose()
    click.echo(f"current: {current or 'none (empty database)'}\nhead:    {head}")
    if current != head:
        raise click.ClickException("the schema is behind: run `toploc-audit db upgrade`")
