"""`toploc-audit watch`: copy the contract's events into the database and queue the validators' work."""

from __future__ import annotations

import logging
import time

import click

from anchor.errors import InputError
from anchor.settings import Settings


@click.command()
@click.option("--once", is_flag=True, help="Do one pass and exit (instead of looping).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    help="Seconds between passes [default: TOPLOC_AUDIT_WATCH_SECONDS].",
)
def watch(once: bool, interval: float | None) -> None:
    """Sync the contract's events (DisputeOpened, CommitteeDrawn, VoteCommitted, VoteRevealed,
    VoteAbstained, DisputeAppealed, DisputeResolved, Credited, Slashed) into the database (disputes, votes,
    payouts, slashes), deduplicated on (tx hash, log index) and safe across restarts and reorgs; then
    queue a validation task for each committee member this deployment runs (TOPLOC_AUDIT_VALIDATORS),
    the commit-reveal steps that are due, and the draws and resolutions the chain allows.

    Each pass re-reads TOPLOC_AUDIT_WATCH_CONFIRMATIONS blocks below the last synced one. RPC and broker
    outages (and database blips) are logged and retried on the next pass; nothing is lost."""
    from sqlalchemy.exc import OperationalError

    from verifier.celery_app import app
    from verifier.runtime import RpcUnavailable, runtime
    from verifier.watcher import CRASH_STEPS, ReorgDuringSync

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if settings.watch_crash_at is not None and settings.watch_crash_at not in CRASH_STEPS:
        raise InputError("TOPLOC_AUDIT_WATCH_CRASH_AT", f"must be one of {', '.join(CRASH_STEPS)}")
    rt = runtime()
    rt.sessions  # noqa: B018 (checks the schema now: a database behind is an error before any pass)
    pause = settings.watch_seconds if interval is None else interval
    validators = ", ".join(settings.validators) or "none (nothing will be queued)"
    click.echo(f"watching {rt.deployment.address} for validators {validators}", err=True)
    while True:
        try:
            synced = rt.watch_pass(app, settings.watch_crash_at)
            if once:
                click.echo(
                    f"synced blocks {synced.start}..{synced.head}: "
                    f"{synced.added} events added, {synced.removed} removed"
                )
                return
        except (RpcUnavailable, ReorgDuringSync, OperationalError) as exc:  # outages: the next pass retries
            if once:
                raise
            logging.getLogger("toploc_audit.watcher").warning("pass failed, retrying: %s", exc)
        time.sleep(pause)
