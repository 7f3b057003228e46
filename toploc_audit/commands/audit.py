"""`toploc-audit audit`: check a random share of anchored entries and dispute those that fail."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from anchor.errors import InputError
from anchor.settings import Settings


def _cursor_file(settings: Settings) -> Path:
    return settings.home / "auditor.json"


def _load_cursor(path: Path) -> int:
    """The last checkpoint (database id) audited; 0 before the first."""
    if not path.is_file():
        return 0
    try:
        return int(json.loads(path.read_text())["checkpoint"])
    except (ValueError, KeyError, TypeError):
        raise InputError(str(path), 'is not {"checkpoint": <id>}: fix or delete it') from None


def _save_cursor(path: Path, checkpoint_id: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"checkpoint": checkpoint_id}))
    tmp.replace(path)  # atomic: a crash leaves the old cursor, and the checkpoint is audited again


@click.command()
@click.option(
    "--rate", type=float, help="Share of entries checked, 0 to 1 [default: TOPLOC_AUDIT_AUDIT_RATE]."
)
@click.option(
    "--delay-blocks",
    type=click.IntRange(1),
    help="Seed block: this many after the anchoring one [default: TOPLOC_AUDIT_AUDIT_DELAY_BLOCKS].",
)
@click.option(
    "--max-open",
    type=click.IntRange(0),
    help="Most disputes kept open at once (bonds locked) [default: TOPLOC_AUDIT_AUDIT_MAX_OPEN].",
)
@click.option("--once", is_flag=True, help="Audit what is ready, then exit.")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The auditor's hex key, which files the disputes [default: the challenger's].",
)
def audit(
    rate: float | None, delay_blocks: int | None, max_open: int | None, once: bool, key_file: Path | None
) -> None:
    """Audit anchored checkpoints in order: pick entries at random from a block hash mined after the
    anchoring (so no provider knows in advance which are checked), validate them with the local models
    (TOPLOC_AUDIT_MODELS), and file a dispute, with the contract's bond, for each that fails. A cursor in
    <home>/auditor.json remembers the last checkpoint done. Ctrl-C stops it.

    \b
    Examples:
      toploc-audit audit --rate 0.05
      toploc-audit audit --rate 1 --once        # everything anchored so far
    """
    from sqlalchemy import select

    from anchor.chain.client import Outcome
    from anchor.db import open_database
    from anchor.db.models import Checkpoint, Dispute
    from toploc_audit.contract_access import contract_client
    from verifier.auditor import audit_checkpoint
    from verifier.model_store import ModelStore

    settings = Settings.from_env()
    rate = settings.audit_rate if rate is None else rate
    if not 0 <= rate <= 1:
        raise InputError("rate", f"must be between 0 and 1, got {rate}")
    delay = settings.audit_delay_blocks if delay_blocks is None else delay_blocks
    budget = settings.audit_max_open if max_open is None else max_open
    sessions = open_database(settings.database_url)
    client = contract_client("challenger", key_file)
    me = client.account.address
    store = ModelStore(settings.models_dir, mode=settings.validation_mode, memory=settings.validator_memory)
    cursor_path = _cursor_file(settings)
    cursor = _load_cursor(cursor_path)
    with sessions() as s:  # disputes this key opened earlier (as the watcher synced them)
        mine = set(s.scalars(select(Dispute.dispute_id).where(Dispute.challenger == me)))
    approved = 0  # disputes allowed during the current checkpoint, not yet in `mine`

    def may_dispute() -> bool:
        """The bond budget: fewer than `budget` of this key's disputes open on chain right now."""
        nonlocal approved
        still_open = sum(1 for d in mine if client.dispute(d).outcome == Outcome.OPEN)
        if still_open + approved >= budget:
            return False
        approved += 1
        return True

    click.echo(
        f"auditing as {me}: rate {rate:g}, seed {delay} blocks after anchoring, "
        f"{budget} open disputes at most"
    )
    announced: set[int] = set()
    while True:
        with sessions() as s:
            todo = list(
                s.scalars(
                    select(Checkpoint)
                    .where(Checkpoint.id > cursor, Checkpoint.chain_checkpoint_id.is_not(None))
                    .order_by(Checkpoint.size)
                )
            )
            sizes = {c.id: c.size for c in s.scalars(select(Checkpoint))}
        for checkpoint in todo:
            previous = max((size for size in sizes.values() if size < checkpoint.size), default=0)
            result = audit_checkpoint(sessions, client, store, checkpoint, previous, rate, delay, may_dispute)
            if result is None:  # its seed block is not mined yet: later checkpoints wait too
                if checkpoint.id not in announced:
                    announced.add(checkpoint.id)
                    click.echo(
                        f"checkpoint {checkpoint.chain_checkpoint_id}: waiting for its seed block "
                        f"({delay} after the anchoring one)"
                    )
                break
            frauds = [e for e in result.entries if e.fraud]
            unchecked = [e for e in result.entries if e.fraud is None]
            click.echo(
                f"checkpoint {result.checkpoint_id} (entries {result.first}-{result.size - 1}, seed block "
                f"{result.seed_block}): {len(result.entries)} selected, {len(frauds)} failed"
                + (f", {len(unchecked)} could not be checked" if unchecked else "")
            )
            mine.update(e.dispute_id for e in result.entries if e.dispute_id is not None)
            approved = 0
            for e in result.entries:
                if e.fraud:
                    click.echo(f"  entry {e.leaf_index}: {e.reason}")
                elif e.fraud is None:
                    click.echo(f"  entry {e.leaf_index}: could not check: {e.reason}")
            cursor = checkpoint.id
            _save_cursor(cursor_path, cursor)
        if once:
            return
        time.sleep(settings.watch_seconds)  # polling the chain for new checkpoints, not a test wait
