"""`toploc-audit anchor`: the loop that anchors the log's checkpoints on chain."""

from __future__ import annotations

import logging

import click

from anchor.settings import Settings


@click.command()
@click.option("--once", is_flag=True, help="Anchor what is due, then exit (instead of looping forever).")
@click.option(
    "--every-entries", type=click.IntRange(min=1), help="Checkpoint after N entries (default from env)."
)
@click.option(
    "--every-seconds", type=click.FloatRange(min=0), help="... or after T seconds (default from env)."
)
@click.option("--confirmations", type=click.IntRange(min=1), help="Blocks before final (default from env).")
@click.option(
    "--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Seconds between polls."
)
@click.option("--rpc", "rpc_url", help="JSON-RPC URL (default TOPLOC_AUDIT_RPC_URL or the deployment's).")
def anchor(
    once: bool,
    every_entries: int | None,
    every_seconds: float | None,
    confirmations: int | None,
    poll: float,
    rpc_url: str | None,
) -> None:
    """Checkpoint the log every N entries or T seconds, send anchor(size, root, consistency proof) from the
    log key (the contract's operator), wait for K confirmations, then mark the entries anchored.

    Crash-safe: stop or kill it at any point and start it again; it resumes from the database and the
    chain without losing or repeating a checkpoint. Progress is logged to stderr."""
    from anchor.anchoring import Anchorer, AuditContract, LoopConfig
    from anchor.api.config import load_log_key
    from anchor.chain.deployment import Deployment
    from anchor.db import open_database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    deployment = Deployment.load(settings.deployment_file)
    key = load_log_key(settings)
    chain = AuditContract.connect(
        rpc_url or settings.rpc_url or deployment.rpc_url, deployment.address, key.to_bytes()
    )
    config = LoopConfig(
        every_entries=every_entries or settings.anchor_every_entries,
        every_seconds=settings.anchor_every_seconds if every_seconds is None else every_seconds,
        confirmations=confirmations or settings.anchor_confirmations,
        crash_at=settings.anchor_crash_at,
        poll_seconds=poll,
    )
    anchorer = Anchorer(open_database(settings.database_url), chain, config)
    operator = chain.operator_address()
    assert chain.operator is not None
    if operator != chain.operator.address:
        raise click.ClickException(
            f"the log key is {chain.operator.address}, the contract's operator {operator}"
        )
    click.echo(
        f"anchoring to {deployment.address} on chain {chain.chain_id}: every {config.every_entries} entries"
        f" or {config.every_seconds:g} s, {config.confirmations} confirmations",
        err=True,
    )
    anchorer.run(once=once)
