"""Queueing the work the database says is due, always after the transaction that made it due commits.

The database, not the broker, is the source of truth: a message is only a nudge. Every pass of the
watcher (and the beat task) queues
- a validation task for each validation that is pending (or whose claim lease ran out),
- a vote task for each one with a commit-reveal step left (validated, committing, committed,
  revealing, abstaining),
unless one was queued less than TOPLOC_AUDIT_REQUEUE_SECONDS ago (`enqueued_at`), and an advance task
(draw or resolve, if the chain says it is due) for each open dispute: at once for those an event just
moved, every RECHECK_SECONDS for those awaiting a draw or past their reveal deadline, else once per
requeue interval. Committed votes are asked again every RECHECK_SECONDS too (the reveal phase opens
with time). A message
lost with a broker restart, or never sent because the broker was down, is therefore sent again by a
later pass; tasks are idempotent, so a duplicate does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from celery import Celery
from kombu.exceptions import KombuError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.engine import transaction
from anchor.settings import Settings
from verifier.celery_app import chain_queue, validate_queue
from verifier.models import CLAIMED, COMMITTED, PENDING, SENDING, Validation
from verifier.resolution import open_disputes

log = logging.getLogger("toploc_audit.dispatch")

VALIDATE_TASK = "verifier.validate"
VOTE_TASK = "verifier.vote"
ADVANCE_TASK = "verifier.advance"
RECHECK_SECONDS = 5.0
"""How often a committed vote asks whether the reveal phase has begun, and a dispute awaiting its draw
or past its reveal deadline whether the step is due."""


@dataclass
class Dispatched:
    validations: int = 0
    votes: int = 0
    advances: int = 0
    failed: int = 0


class Dispatcher:
    """Sends tasks through `app` and records when (validations.enqueued_at)."""

    def __init__(self, app: Celery, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.app = app
        self.sessions = sessions
        self.settings = settings
        self._advance_sent: dict[int, float] = {}

    def _send(self, name: str, arg: int, queue: str) -> bool:
        # A fresh connection per message: a pooled one can be left broken by a broker restart (seen:
        # kombu's Redis channel raising AttributeError after reconnecting), and messages are few.
        try:
            with self.app.connection_for_write() as connection:
                self.app.send_task(
                    name, args=[arg], queue=queue, connection=connection, retry_policy={"max_retries": 2}
                )
            return True
        except (KombuError, OSError, AttributeError) as exc:  # broker down: a later pass sends it again
            log.warning("could not queue %s(%d) on %s: %s", name, arg, queue, exc)
            return False

    def _mark(self, ids: Iterable[int], now: float) -> None:
        ids = list(ids)
        if ids:
            with transaction(self.sessions) as s:
                s.execute(update(Validation).where(Validation.id.in_(ids)).values(enqueued_at=now))

    def validations(self, rows: Iterable[tuple[int, str]], now: float | None = None) -> Dispatched:
        """Queue validation tasks for (validation id, validator) pairs."""
        return self._batch(rows, VALIDATE_TASK, lambda v: validate_queue(self.settings, v), now)

    def votes(self, rows: Iterable[tuple[int, str]], now: float | None = None) -> Dispatched:
        """Queue vote tasks for (validation id, validator) pairs."""
        return self._batch(rows, VOTE_TASK, lambda v: chain_queue(self.settings, v), now)

    def _batch(
        self, rows: Iterable[tuple[int, str]], name: str, queue: Callable[[str], str], now: float | None
    ) -> Dispatched:
        now = time.time() if now is None else now
        sent, result = [], Dispatched()
        for validation_id, validator in rows:
            if self._send(name, validation_id, queue(validator)):
                sent.append(validation_id)
            else:
                result.failed += 1
        self._mark(sent, now)
        if name == VALIDATE_TASK:
            result.validations = len(sent)
        else:
            result.votes = len(sent)
        return result

    def advance(self, dispute_id: int, now: float | None = None, interval: float = 0.0) -> bool:
        """Queue an advance task (draw or resolve), unless one was queued for this dispute less than
        `interval` seconds ago (in this process)."""
        now = time.time() if now is None else now
        last = self._advance_sent.get(dispute_id)
        if last is not None and now - last < interval:
            return False
        if self._send(ADVANCE_TASK, dispute_id, chain_queue(self.settings)):
            self._advance_sent[dispute_id] = now
            return True
        return False

    def due(
        self, chain_now: int | None, now: float | None = None, touched: Collection[int] = ()
    ) -> Dispatched:
        """Queue everything due (see the module docstring). `chain_now`: the head block's timestamp;
        None (the node is unreachable) skips the disputes' steps. `touched`: disputes an event just
        moved on."""
        now = time.time() if now is None else now
        stale = now - self.settings.requeue_seconds
        not_recent = or_(Validation.enqueued_at.is_(None), Validation.enqueued_at < stale)
        waiting = now - min(self.settings.requeue_seconds, RECHECK_SECONDS)
        committed_not_recent = or_(Validation.enqueued_at.is_(None), Validation.enqueued_at < waiting)
        with self.sessions() as s:
            to_validate = s.execute(
                select(Validation.id, Validation.validator)
                .where(
                    not_recent,
                    or_(
                        Validation.status == PENDING,
                        (Validation.status == CLAIMED) & (Validation.lease_until < int(now)),
                    ),
                )
                .order_by(Validation.id)
            ).all()
            to_vote = s.execute(
                select(Validation.id, Validation.validator)
                .where(
                    or_(
                        not_recent & Validation.status.in_(SENDING),
                        committed_not_recent & (Validation.status == COMMITTED),
                    )
                )
                .order_by(Validation.id)
            ).all()
            to_advance, pressing = ([], set()) if chain_now is None else open_disputes(s, chain_now)
        result = self.validations([(i, v) for i, v in to_validate], now)
        votes = self.votes([(i, v) for i, v in to_vote], now)
        result.votes, result.failed = votes.votes, result.failed + votes.failed
        for dispute_id in to_advance:
            if dispute_id in touched:
                sent = self.advance(dispute_id, now)
            elif dispute_id in pressing:  # a draw or resolution may be due: ask every few seconds
                sent = self.advance(dispute_id, now, interval=RECHECK_SECONDS)
            else:
                sent = self.advance(dispute_id, now, interval=self.settings.requeue_seconds)
            result.advances += sent
        return result
