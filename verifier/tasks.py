"""The Celery tasks: thin shells over the pipeline, the vote, resolution and the watcher.

Every task takes a primary key (a validation id or a contract dispute id), reloads its rows, returns at
once if the work is done, and retries only transient failures (RPC or database outages, an unmined
vote). All share `VerifierTask`: acks_late, reject_on_worker_lost, no result backend.

- verifier.validate(validation_id), queue validate.<validator>: claim a batch of one model, validate,
  store the reports, queue the votes;
- verifier.vote(validation_id), queue chain.<validator>: the next commit-reveal step (commit or abstain,
  then reveal), each transaction sent once; then nudge its dispute along;
- verifier.advance(dispute_id), queue chain: draw the committee or resolve, when the chain says so;
- verifier.watch(), queue chain (beat): one watcher pass, then queue what is due.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update
from sqlalchemy.exc import InterfaceError, OperationalError

from anchor.chain.errors import ReceiptTimeout
from anchor.db.engine import transaction
from anchor.settings import Settings
from verifier.celery_app import app
from verifier.models import ABSTAINING, VALIDATED, Validation
from verifier.resolution import advance_dispute
from verifier.runtime import RpcUnavailable, runtime
from verifier.validation import CouldNotCheck, PartlyChecked, Pipeline, abstain_claimed, renew_lease
from verifier.verdicts import VoteNotMined, send_vote
from verifier.watcher import ReorgDuringSync

log = logging.getLogger("toploc_audit.tasks")

_settings = Settings.from_env()

TRANSIENT: tuple[type[BaseException], ...] = (
    requests.RequestException,  # the RPC node is down or slow
    RpcUnavailable,
    OperationalError,  # the database went away
    InterfaceError,
    ReorgDuringSync,
    VoteNotMined,
    ReceiptTimeout,  # a transaction sent, its receipt not seen yet (resolve, dispute filing)
)


VOTABLE = (VALIDATED, ABSTAINING)
"""Validation outcomes that have something to send on chain (a vote, or an abstention with its reason)."""


class VerifierTask(Task):  # type: ignore[misc]
    """The base of every verifier task (see the module docstring)."""

    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    autoretry_for = TRANSIENT
    retry_backoff = max(1, int(_settings.retry_seconds))
    retry_backoff_max = 60
    retry_jitter = False
    max_retries = 30


@app.task(
    base=VerifierTask,
    bind=True,
    name="verifier.validate",
    soft_time_limit=_settings.validate_time_limit,
)
def validate(self: Task, validation_id: int) -> None:
    """Validate `validation_id` and the other pending validations of its validator and model."""
    rt = runtime()
    settings = rt.settings
    pipeline = Pipeline(
        rt.sessions,
        rt.store,
        rt.validator,
        settings.validation_lease,
        settings.validate_batch,
        settings.validate_hold_dir,
    )
    task_id = str(self.request.id)
    try:
        outcomes = pipeline.run(validation_id, task_id)
    except (CouldNotCheck, SoftTimeLimitExceeded) as exc:
        if isinstance(exc, PartlyChecked):  # the records that were checked vote now
            rt.dispatcher(app).votes(
                [(o.validation_id, rt.validator) for o in exc.outcomes if o.status in VOTABLE]
            )
        reason = str(exc) or "the validation ran past its time limit"
        if self.request.retries < settings.validate_retries:
            countdown = settings.retry_seconds * 2**self.request.retries
            renew_lease(rt.sessions, task_id, countdown + settings.requeue_seconds)
            log.warning(
                "validation %d could not check (%s): retry %d",
                validation_id,
                reason,
                self.request.retries + 1,
            )
            raise self.retry(exc=exc, countdown=countdown) from exc
        why = f"could not check after {settings.validate_retries} retries: {reason}"
        abstain_claimed(rt.sessions, task_id, why)
        log.warning("task %s abstains: %s", task_id, why)
        return
    validated = [(o.validation_id, rt.validator) for o in outcomes if o.status in VOTABLE]
    rt.dispatcher(app).votes(validated)


@app.task(base=VerifierTask, bind=True, name="verifier.vote")
def vote(self: Task, validation_id: int) -> str:
    """Take the next step of `validation_id`'s vote (each transaction exactly once), then nudge its
    dispute (a complete round may be resolvable)."""
    rt = runtime()
    try:
        status = send_vote(rt.sessions, rt.client, validation_id)
    except TRANSIENT as exc:  # retried (autoretry_for); noted so `dispute show` says why it waits
        note(validation_id, f"vote not sent yet ({type(exc).__name__}): {exc}")
        raise
    if status in ("voted", "abstained"):
        with rt.sessions() as s:
            v = s.get(Validation, validation_id)
            dispute_id = None if v is None else v.dispute_id
        if dispute_id is not None:
            rt.dispatcher(app).advance(dispute_id)
    return status


def note(validation_id: int, reason: str) -> None:
    """Record the last transient error on a validation (best effort: the database may be what failed)."""
    try:
        with transaction(runtime().sessions) as s:
            s.execute(update(Validation).where(Validation.id == validation_id).values(reason=reason[:2000]))
    except (OperationalError, InterfaceError):
        log.warning("could not note on validation %d: %s", validation_id, reason)


@app.task(base=VerifierTask, bind=True, name="verifier.advance")
def advance(self: Task, dispute_id: int) -> str:
    """Draw `dispute_id`'s committee or resolve it if the chain says so; otherwise do nothing (a later
    pass asks again)."""
    result = advance_dispute(runtime().client, dispute_id)
    if result.action is not None:
        log.info("dispute %d: %s (tx %s)", dispute_id, result.action, result.tx_hash)
    return result.action or result.phase.name.lower()


@app.task(base=VerifierTask, bind=True, name="verifier.watch", max_retries=0)
def watch(self: Task) -> dict[str, Any]:
    """One watcher pass (the beat schedule runs it every TOPLOC_AUDIT_WATCH_SECONDS)."""
    synced = runtime().watch_pass(app)
    return {"head": synced.head, "added": synced.added, "removed": synced.removed}
