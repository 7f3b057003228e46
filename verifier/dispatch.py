"""Queueing the work the database says is due, always after the transaction that made it due commits.

The database, not the broker, is the source of truth: a message is only a nudge. Every pass of the
watcher (and the beat task) queues
- a validation task for each validation that is pending (or whose claim lease ran out),
- a vote task for each validated one not yet voted,
unless one was queued less than TOPLOC_AUDIT_REQUEUE_SECONDS ago (`enqueued_at`), and a resolve task
for each open dispute that can be resolved at chain time. A message lost with a broker restart, or never
sent because the broker was down, is therefore sent again by a later pass; tasks are idempotent, so a
duplicate does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from celery import Celery
from kombu.exceptions import KombuError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.engine import transaction
from anchor.settings import Settings
from verifier.celery_app import chain_queue, validate_queue
from verifier.models import CLAIMED, PENDING, VALIDATED, VOTING, Validation
from verifier.resolution import due_for_resolution

log = logging.getLogger("toploc_audit.dispatch")

VALIDATE_TASK = "verifier.validate"
VOTE_TASK = "verifier.vote"
RESOLVE_TASK = "verifier.resolve"


@dataclass
class Dispatched:
    validations: int = 0
    votes: int = 0
    resolutions: int = 0
    failed: int = 0


class Dispatcher:
    """Sends tasks through `app` and records when (validations.enqueued_at)."""

    def __init__(self, app: Celery, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.app = app
        self.sessions = sessions
        self.settings = settings
        self._resolve_sent: dict[int, float] = {}

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

    def resolution(self, dispute_id: int, now: float | None = None) -> bool:
        """Queue a resolve task, at most once per requeue interval per dispute (in this process)."""
        now = time.time() if now is None else now
        last = self._resolve_sent.get(dispute_id)
        if last is not None and now - last < self.settings.requeue_seconds:
            return False
        if self._send(RESOLVE_TASK, dispute_id, chain_queue(self.settings)):
            self._resolve_sent[dispute_id] = now
            return True
        return False

    def due(self, chain_now: int | None, now: float | None = None) -> Dispatched:
        """Queue everything due (see the module docstring). `chain_now`: the head block's timestamp;
        None (the node is unreachable) skips resolutions."""
        now = time.time() if now is None else now
        stale = now - self.settings.requeue_seconds
        not_recent = or_(Validation.enqueued_at.is_(None), Validation.enqueued_at < stale)
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
                .where(not_recent, Validation.status.in_((VALIDATED, VOTING)))
                .order_by(Validation.id)
            ).all()
            to_resolve = [] if chain_now is None else due_for_resolution(s, chain_now)
        result = self.validations([(i, v) for i, v in to_validate], now)
        votes = self.votes([(i, v) for i, v in to_vote], now)
        result.votes, result.failed = votes.votes, result.failed + votes.failed
        for dispute_id in to_resolve:
            if self.resolution(dispute_id, now):
                result.resolutions += 1
        return result
