"""The watcher: copies the contract's events into the database, exactly once each, across restarts and
reorganisations of the chain.

One pass (`sync`), in one database transaction:
1. lock the cursor row (sync_cursors, one per chain and contract), so two watchers never interleave;
2. read the head block, and choose where to start: the last synced block minus the confirmation depth
   (recent blocks may still change); if the cursor's own block is no longer on the chain, the reorg went
   deeper: go back to the newest stored event whose block is still canonical (the block hash chain
   guarantees everything before it is unchanged);
3. read the contract's logs from there to the head;
4. every stored event in that range that the chain no longer has (same tx hash and log index in the same
   block) is marked removed and its effect reverted, newest first;
5. every event not yet stored is inserted (unique on tx hash + log index) and applied, oldest first;
6. the cursor moves to the head.
A crash anywhere rolls the whole pass back, so a restart repeats it from the same cursor. Tasks are
queued only after the commit (`Synced` lists what needs one).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.engine import is_postgresql, transaction
from anchor.db.models import ChainEvent, SyncCursor
from anchor.errors import Error
from verifier import effects
from verifier.events import Block, ChainLog, EventSource

log = logging.getLogger("toploc_audit.watcher")

CRASH_STEPS = ("after-fetch", "after-apply")


class ReorgDuringSync(Error):
    """The head block changed hash while the pass read logs: the pass is rolled back and repeated."""


@dataclass
class Synced:
    """The outcome of one pass."""

    start: int
    head: int
    head_timestamp: int
    added: int = 0
    removed: int = 0
    changes: effects.Changes = field(default_factory=effects.Changes)


def cursor_name(chain_id: int, contract: str) -> str:
    return f"watcher:{chain_id}:{contract.lower()}"


def _lock_cursor(session: Session, name: str, initial_block: int) -> SyncCursor:
    """The cursor row, locked for the rest of the transaction (created at `initial_block` if new)."""
    values = {"name": name, "block_number": initial_block, "block_hash": None}
    if is_postgresql(session):
        session.execute(pg_insert(SyncCursor).values(**values).on_conflict_do_nothing())
        return session.scalars(select(SyncCursor).where(SyncCursor.name == name).with_for_update()).one()
    # SQLite: this write takes the database lock, which serialises passes the same way.
    session.execute(sqlite_insert(SyncCursor).values(**values).on_conflict_do_nothing())
    touch = update(SyncCursor).where(SyncCursor.name == name).values(block_number=SyncCursor.block_number)
    session.execute(touch)
    return session.scalars(select(SyncCursor).where(SyncCursor.name == name)).one()


def _rewind_point(session: Session, source: EventSource, name: str, below: int, floor: int) -> int:
    """The first block to re-read after a reorg deeper than the confirmation depth: one past the newest
    stored event block (below `below`) that is still canonical, else `floor`."""
    rows = session.execute(
        select(ChainEvent.block_number, ChainEvent.block_hash)
        .where(ChainEvent.contract == source.address, ChainEvent.block_number < below)
        .where(ChainEvent.removed.is_(False))
        .distinct()
        .order_by(ChainEvent.block_number.desc())
    ).all()
    for number, block_hash in rows:
        block = source.block(int(number))
        if block is not None and block.hash == bytes(block_hash):
            return int(number) + 1
    return floor


def _crash_point(crash_at: str | None, step: str) -> None:
    """Test hook: die here without cleanup, as a power cut would (TOPLOC_AUDIT_WATCH_CRASH_AT)."""
    if crash_at == step:
        log.warning("crash hook: SIGKILL at %s", step)
        os.kill(os.getpid(), signal.SIGKILL)


def sync(
    sessions: sessionmaker[Session],
    source: EventSource,
    deployment_block: int,
    validators: Collection[str],
    confirmations: int,
    crash_at: str | None = None,
) -> Synced:
    """One pass (see the module docstring). `validators`: addresses this deployment runs.

    Requires confirmations >= 1. Raises ReorgDuringSync (nothing changed) if the chain moved under it.
    """
    ours = {v.lower() for v in validators}
    name = cursor_name(source.chain_id, source.address)
    with transaction(sessions) as s:
        cursor = _lock_cursor(s, name, deployment_block - 1)
        head = source.head()
        start = max(deployment_block, cursor.block_number - confirmations + 1)
        if cursor.block_hash is not None:
            at_cursor = source.block(cursor.block_number)
            if at_cursor is None or at_cursor.hash != cursor.block_hash:
                start = min(start, _rewind_point(s, source, name, cursor.block_number, deployment_block))
                log.warning("reorg below block %d: re-reading from block %d", cursor.block_number, start)
        logs = source.logs(start, head.number) if start <= head.number else []
        _check_head(source, head)
        _crash_point(crash_at, "after-fetch")
        result = Synced(start=start, head=head.number, head_timestamp=head.timestamp)
        _reconcile(s, source, start, logs, ours, result)
        _crash_point(crash_at, "after-apply")
        cursor.block_number, cursor.block_hash = head.number, head.hash
    return result


def _check_head(source: EventSource, head: Block) -> None:
    now = source.block(head.number)
    if now is None or now.hash != head.hash:
        raise ReorgDuringSync(f"block {head.number} changed while reading logs; the pass will be repeated")


def _reconcile(
    s: Session, source: EventSource, start: int, logs: list[ChainLog], ours: set[str], result: Synced
) -> None:
    fresh = {entry.key: entry for entry in logs}
    stored = list(
        s.scalars(
            select(ChainEvent)
            .where(ChainEvent.contract == source.address, ChainEvent.block_number >= start)
            .order_by(ChainEvent.block_number.desc(), ChainEvent.log_index.desc())
        )
    )
    current = {}
    for row in stored:
        key = (bytes(row.tx_hash), row.log_index)
        if row.removed:
            continue
        entry = fresh.get(key)
        if entry is not None and entry.block_hash == bytes(row.block_hash):
            current[key] = row
            continue
        effects.revert(s, _as_log(row), result.changes)
        row.removed = True
        result.removed += 1
    by_key = {(bytes(row.tx_hash), row.log_index): row for row in stored}
    for entry in logs:
        if entry.key in current:
            continue
        row = by_key.get(entry.key) or _stored(s, entry)
        if row is None:
            row = ChainEvent(chain_id=source.chain_id, contract=source.address, tx_hash=entry.tx_hash)
            s.add(row)
        else:  # the same transaction mined again on the new branch, at the same log index
            row.removed = False
        row.block_number, row.block_hash = entry.block_number, entry.block_hash
        row.log_index, row.name, row.args = entry.log_index, entry.name, entry.args
        effects.apply(s, entry, ours, result.changes)
        result.added += 1
    if result.added or result.removed:
        log.info(
            "blocks %d..%d: %d events added, %d removed", start, result.head, result.added, result.removed
        )


def _stored(s: Session, entry: ChainLog) -> ChainEvent | None:
    """A row with the entry's key outside the re-read range (removed by an older reorg), if any."""
    return s.scalars(
        select(ChainEvent).where(ChainEvent.tx_hash == entry.tx_hash, ChainEvent.log_index == entry.log_index)
    ).first()


def _as_log(row: ChainEvent) -> ChainLog:
    return ChainLog(
        block_number=row.block_number,
        block_hash=bytes(row.block_hash),
        tx_hash=bytes(row.tx_hash),
        log_index=row.log_index,
        name=row.name,
        args=dict(row.args),
    )
