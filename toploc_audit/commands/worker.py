"""`toploc-audit worker`: a Celery worker that validates and votes as one validator."""

from __future__ import annotations

import os
from pathlib import Path

import click

from anchor.errors import InputError
from anchor.settings import Settings


@click.command(context_settings={"show_default": True})
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the validator's hex private key [default: TOPLOC_AUDIT_VALIDATOR_KEY].",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo"]),
    default="prefork",
    help="prefork: tasks run in a child process (a crashed child's task is redelivered); solo: in this one.",
)
@click.option(
    "--beat", is_flag=True, help="Also run the watcher every TOPLOC_AUDIT_WATCH_SECONDS (one per deployment)."
)
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO")
def worker(key_file: Path | None, pool: str, beat: bool, loglevel: str) -> None:
    """Run a Celery worker for one validator key.

    It consumes validate.<address> (GPU work, one task at a time), chain.<address> (its own votes) and
    the shared chain queue (watcher passes, resolving disputes), each prefixed with
    TOPLOC_AUDIT_QUEUE_PREFIX, from the broker TOPLOC_AUDIT_BROKER_URL. Models are looked up by
    fingerprint in TOPLOC_AUDIT_MODELS. Stop it with Ctrl-C (it finishes the task in hand) or kill it
    (the task goes back to the queue).
    """
    from anchor.keyfiles import read_key_file
    from verifier.runtime import load_key

    settings = Settings.from_env()
    if key_file is not None:
        text, source = read_key_file(key_file), str(key_file)
    elif settings.validator_key is not None:
        text, source = settings.validator_key, "TOPLOC_AUDIT_VALIDATOR_KEY"
    else:
        raise InputError(
            "key-file", "give --key-file or set TOPLOC_AUDIT_VALIDATOR_KEY (the validator's key)"
        )
    account = load_key(text, source)
    # Before the app is imported: its pool processes read the key from the environment they inherit.
    os.environ["TOPLOC_AUDIT_VALIDATOR_KEY"] = text.strip()

    from anchor.chain.deployment import Deployment
    from anchor.db import check_schema, make_engine

    engine = make_engine(settings.database_url)
    check_schema(engine)  # fail now, with the fix to run, rather than in every task
    engine.dispose()
    Deployment.load(settings.deployment_file)

    from verifier.celery_app import app, chain_queue, validate_queue

    queues = [
        validate_queue(settings, account.address),
        chain_queue(settings, account.address),
        chain_queue(settings),
    ]
    click.echo(f"validator {account.address}: consuming {', '.join(queues)}", err=True)
    argv = [
        "worker",
        "--queues", ",".join(queues),
        "--pool", pool,
        "--concurrency", "1",
        "--hostname", f"{account.address.lower()}@%h",
        "--loglevel", loglevel,
        "--without-gossip",
        "--without-mingle",
    ]  # fmt: skip
    if beat:
        argv.append("--beat")
    app.worker_main(argv)
