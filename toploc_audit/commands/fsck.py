"""`toploc-audit fsck`: recompute every stored node and checkpoint root from the records and compare."""

from __future__ import annotations

import click
from rich.progress import Progress

from anchor.db import open_database
from anchor.log import fsck as run_fsck
from anchor.settings import Settings


@click.command()
def fsck() -> None:
    """Check the log: records hash to their digests, leaves match records, every stored node and every
    checkpoint root equals the one recomputed from the leaves. Exits 1 listing the problems found."""
    sessions = open_database(Settings.from_env().database_url)
    with Progress(transient=True) as progress:
        task = progress.add_task("checking the log", total=None)
        report = run_fsck(sessions, lambda done, total: progress.update(task, completed=done, total=total))
    click.echo(f"{report.leaves} leaves, {report.records} records, {report.checkpoints} checkpoints checked")
    if not report.ok:
        for p in report.problems:
            click.echo(f"problem: {p}", err=True)
        raise click.ClickException(f"{len(report.problems)} problem(s) found")
    click.echo("ok: every root recomputes")
