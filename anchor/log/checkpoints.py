"""Checkpoints: (size, root) tree heads the anchor loop commits to and the chain stores.

A checkpoint row is written 'pending' before anything is sent (the anchoring intent) and becomes
'anchored' once its transaction has enough confirmations; at that moment every entry it newly covers
gets `records.checkpoint_id` (the first anchored checkpoint covering it, the one disputes prove against).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anchor.db.models import Checkpoint, Record
from anchor.log.store import LogStore

PENDING = "pending"
ANCHORED = "anchored"


def latest(session: Session) -> Checkpoint | None:
    return session.scalars(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)).first()


def latest_anchored(session: Session) -> Checkpoint | None:
    stmt = select(Checkpoint).where(Checkpoint.status == ANCHORED).order_by(Checkpoint.size.desc()).limit(1)
    return session.scalars(stmt).first()


def pending(session: Session) -> Checkpoint | None:
    """The oldest checkpoint not yet anchored (the loop finishes it before starting another)."""
    stmt = select(Checkpoint).where(Checkpoint.status == PENDING).order_by(Checkpoint.size).limit(1)
    return session.scalars(stmt).first()


def create(session: Session, now: int) -> Checkpoint | None:
    """A pending checkpoint at the log's current size, or None if nothing is new since the last one."""
    store = LogStore(session)
    size = store.size()
    last = latest(session)
    if size == 0 or (last is not None and last.size >= size):
        return None
    cp = Checkpoint(size=size, root=store.root(size), created_at=now, status=PENDING)
    session.add(cp)
    session.flush()
    return cp


def mark_anchored(session: Session, cp: Checkpoint, chain_checkpoint_id: int, anchored_at: int) -> int:
    """Record that `cp` is final on chain; returns how many entries it anchored for the first time."""
    cp.status = ANCHORED
    cp.chain_checkpoint_id = chain_checkpoint_id
    cp.anchored_at = anchored_at
    result = session.execute(
        update(Record)
        .where(Record.log_index < cp.size, Record.checkpoint_id.is_(None))
        .values(checkpoint_id=cp.id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
