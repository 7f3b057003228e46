"""The validation pipeline: claimed validations -> their records -> the model -> one batched prefill and
TOPLOC verify (gpu_core) -> a stored report per record, ready to vote.

Step by step (`Pipeline.run`):
1. claim: the validation a task was given plus every other pending one of the same validator and model,
   up to a batch (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent tasks never claim the same row;
   SQLite: the database lock). A claim is a lease held by the task id: a redelivered task (same id)
   takes its claim back at once, another task only after the lease ran out;
2. load each record and recompute its recordDigest from the stored canonical bytes; a record missing
   from the log, or whose bytes do not hash to the digest disputed on chain, is taken from the
   openDispute calldata instead (the watcher keeps it in disputes.record; the contract checked its
   SHA-256), so an operator who withholds or changes its copy stops nothing; with neither, the
   validator abstains;
3. find the model by fingerprint in the local store: none there means "could not check" (CouldNotCheck:
   retried, then an abstention, never a fraud vote); load it in the dtype of the store's validation
   mode (float32 reference, or the claimed dtype);
4. validate all records of the batch with gpu_core.runner.validate_batch (records of one model share
   prefill calls): TOPLOC, the sampler replay, the stop reason. A record gpu_core finds malformed (its
   proofs, tokens or decode spec) is judged fraud for itself alone, since the provider signed it; one
   gpu_core could not check (this validator's own failure, isolated to that record) stays claimed;
5. store each report (canonical JSON) and its evidence hash; the rows become `validated` in one
   transaction, and the caller queues the votes after the commit. If some records could not be
   checked, CouldNotCheck is raised after the others are stored: the retry takes back only those.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.engine import is_postgresql, transaction
from anchor.db.models import Dispute
from anchor.db.models import Record as RecordRow
from anchor.errors import Error, InputError
from anchor.evidence import publish
from anchor.records.record import Record
from gpu_core.errors import ToplocError
from gpu_core.runner.validate import ERROR, ValidationItem, validate_batch
from verifier.model_store import ModelStore
from verifier.models import ABSTAINED, ABSTAINING, CANCELLED, CLAIMED, PENDING, VALIDATED, Validation
from verifier.verdicts import report_bytes, report_json

log = logging.getLogger("toploc_audit.validation")


class CouldNotCheck(Error):
    """The validator could not check (model missing, crash, time limit): retry, then abstain."""


class PartlyChecked(CouldNotCheck):
    """Some records of a batch could not be checked; `outcomes` are the others, already stored (their
    votes are due now; the retry takes back only the rest)."""

    def __init__(self, message: str, outcomes: list[Outcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


@dataclass(frozen=True)
class Job:
    """One claimed validation whose record is ready to check."""

    validation_id: int
    dispute_id: int
    validator: str
    record: Record
    digest: bytes


@dataclass(frozen=True)
class Outcome:
    """What happened to one validation in this run."""

    validation_id: int
    status: str
    fraud: bool | None = None
    reason: str | None = None


def claim(
    sessions: sessionmaker[Session],
    validation_id: int,
    validator: str,
    task_id: str,
    lease_seconds: int,
    limit: int,
    now: float | None = None,
) -> list[int]:
    """Claim validation `validation_id` and up to `limit - 1` more of the same validator and model (step
    1). Returns the claimed ids, [] if it is done, cancelled or held by another live task."""
    now = time.time() if now is None else now
    with transaction(sessions) as s:
        if not is_postgresql(s):  # SQLite: take the write lock before reading (no row locks there)
            s.execute(update(Validation).where(Validation.id == validation_id).values(id=Validation.id))
        first = s.get(Validation, validation_id)
        if first is None or first.validator.lower() != validator.lower():
            return []
        claimable = or_(
            Validation.status == PENDING,
            (Validation.status == CLAIMED)
            & or_(Validation.claimed_by == task_id, Validation.lease_until <= int(now)),
        )
        stmt = select(Validation.id).where(Validation.id == validation_id, claimable)
        if s.scalars(stmt).first() is None:
            # A retry after PartlyChecked: its own validation is stored, but it still holds the ones
            # that could not be checked; it takes those back (another task's claims stay theirs).
            ids = list(
                s.scalars(
                    select(Validation.id)
                    .where(Validation.status == CLAIMED, Validation.claimed_by == task_id)
                    .order_by(Validation.id)
                )
            )
            if not ids:
                return []
            _take(s, ids, task_id, lease_seconds, now)
            return ids
        ids = [validation_id]
        if first.model_fingerprint is not None and limit > 1:
            more = (
                select(Validation.id)
                .where(
                    Validation.validator == first.validator,
                    Validation.model_fingerprint == first.model_fingerprint,
                    Validation.id != validation_id,
                    claimable,
                )
                .order_by(Validation.id)
                .limit(limit - 1)
            )
            if is_postgresql(s):
                more = more.with_for_update(skip_locked=True)
            ids += list(s.scalars(more))
        _take(s, ids, task_id, lease_seconds, now)
    return ids


def _take(s: Session, ids: Sequence[int], task_id: str, lease_seconds: int, now: float) -> None:
    """Rows `ids` claimed by `task_id` for `lease_seconds` more, one attempt more."""
    s.execute(
        update(Validation)
        .where(Validation.id.in_(list(ids)))
        .values(
            status=CLAIMED,
            claimed_by=task_id,
            lease_until=int(now) + lease_seconds,
            attempts=Validation.attempts + 1,
            updated_at=int(now),
        )
    )


def renew_lease(sessions: sessionmaker[Session], task_id: str, seconds: float) -> None:
    """Every claim `task_id` holds now ends in `seconds` (a retry is due before then; if its message is
    lost, the sweep hands the work to a new task once the lease ends)."""
    now = time.time()
    with transaction(sessions) as s:
        s.execute(
            update(Validation)
            .where(Validation.status == CLAIMED, Validation.claimed_by == task_id)
            .values(lease_until=int(now + seconds), updated_at=int(now))
        )


def finish(sessions: sessionmaker[Session], outcomes: Sequence[Outcome]) -> None:
    """Store abstentions and cancellations (reports are stored by `store_reports`)."""
    with transaction(sessions) as s:
        for outcome in outcomes:
            v = s.get(Validation, outcome.validation_id)
            if v is None or v.status not in (PENDING, CLAIMED):
                continue
            v.status, v.reason, v.claimed_by = outcome.status, outcome.reason, None
            v.updated_at = int(time.time())


def abstain_claimed(sessions: sessionmaker[Session], task_id: str, reason: str) -> None:
    """Every validation `task_id` still holds becomes an abstention: could not check is never a fraud
    vote."""
    with transaction(sessions) as s:
        s.execute(
            update(Validation)
            .where(Validation.status == CLAIMED, Validation.claimed_by == task_id)
            .values(status=ABSTAINING, reason=reason, claimed_by=None, updated_at=int(time.time()))
        )


def load_jobs(sessions: sessionmaker[Session], ids: Sequence[int]) -> tuple[list[Job], list[Outcome]]:
    """Step 2: the records of claimed validations, each checked against the disputed digest."""
    jobs: list[Job] = []
    ended: list[Outcome] = []
    with sessions() as s:
        for v in s.scalars(select(Validation).where(Validation.id.in_(list(ids))).order_by(Validation.id)):
            dispute = s.scalars(select(Dispute).where(Dispute.dispute_id == v.dispute_id)).first()
            if dispute is None:
                ended.append(Outcome(v.id, CANCELLED, reason="the dispute is no longer on chain"))
                continue
            if dispute.outcome != 0:
                ended.append(Outcome(v.id, ABSTAINED, reason="the dispute was resolved before validation"))
                continue
            row = None if v.record_id is None else s.get(RecordRow, v.record_id)
            if row is None:
                row = s.scalars(select(RecordRow).where(RecordRow.log_index == dispute.leaf_index)).first()
            want = bytes(dispute.record_digest)
            record, problem = _logged_record(row, dispute.leaf_index, want)
            if record is None and dispute.record is not None:
                # The log lacks the record or holds other bytes: judge the bytes the challenger put on
                # chain (the contract checked their SHA-256 against recordDigest).
                record, chain_problem = _record_from(bytes(dispute.record), want, "openDispute's calldata")
                problem = problem if record is not None else f"{problem}; {chain_problem}"
                if record is not None:
                    log.warning("dispute %d: %s; judging the record from the chain", v.dispute_id, problem)
            if record is None:
                ended.append(Outcome(v.id, ABSTAINING, reason=problem))
                continue
            jobs.append(Job(v.id, v.dispute_id, v.validator, record, want))
    return jobs, ended


def _logged_record(row: RecordRow | None, leaf_index: int, want: bytes) -> tuple[Record | None, str]:
    """The log's copy of the disputed record, or None and why it cannot be judged."""
    if row is None:
        return None, f"the log has no entry {leaf_index} to check"
    if bytes(row.record_digest) != want:
        return None, (
            f"recordDigest mismatch: the log's entry {leaf_index} is 0x{bytes(row.record_digest).hex()}, "
            f"the dispute names 0x{want.hex()}"
        )
    return _record_from(bytes(row.canonical), want, "the stored record")


def _record_from(canonical: bytes, want: bytes, source: str) -> tuple[Record | None, str]:
    """The record `canonical` holds if it parses and hashes to `want`, else None and why."""
    try:
        record = Record.from_canonical(canonical)
    except (InputError, ValueError) as exc:
        return None, f"{source} does not parse: {exc}"
    digest = bytes(record.digest())
    if digest != want:
        return (
            None,
            f"recordDigest mismatch: {source} hashes to 0x{digest.hex()}, the dispute names 0x{want.hex()}",
        )
    return record, ""


def hold_for_tests(hold_dir: Path | None, jobs: Sequence[Job]) -> None:
    """The TOPLOC_AUDIT_VALIDATE_HOLD_DIR hook (unset in production: does nothing). While
    <dir>/hold-<disputeId> exists for a job, write <dir>/running-<disputeId>-<validator> holding this
    process's pid and wait, so a test can kill the process mid-validation."""
    if hold_dir is None:
        return
    for job in jobs:
        gate = hold_dir / f"hold-{job.dispute_id}"
        if gate.exists():
            marker = hold_dir / f"running-{job.dispute_id}-{job.validator.lower()}"
            marker.write_text(str(os.getpid()))
            while gate.exists():
                time.sleep(0.05)  # a test hook waiting for its file, not a timing assumption


def validation_item(record: Record) -> ValidationItem:
    """What gpu_core validates of a record: tokens, proofs, TOPLOC parameters and (version 2) the
    decode spec and stop reason."""
    return ValidationItem(
        prompt_ids=record.prompt_tokens,
        output_ids=record.output_tokens,
        proofs=record.proofs,
        dtype=record.dtype,
        topk=record.toploc.topk,
        decode_batching_size=record.toploc.decode_batching_size,
        spec=record.decode,
        stop_reason=record.stop_reason,
    )


def tokenizer_problem(record: Record, local: str | None) -> str | None:
    """Why a validator whose tokenizer has fingerprint `local` cannot judge the record's stop strings,
    or None. The model fingerprint leaves tokenizer files out, so the store's folder may hold another."""
    if record.decode is None or not record.decode.stop or local == record.model.tokenizer:
        return None
    return (
        f"the record has stop strings and names tokenizer {record.model.tokenizer}; this validator's "
        f"model folder has {local}"
    )


def validate_jobs(
    store: ModelStore, fingerprint: str, jobs: Sequence[Job]
) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """Steps 3 and 4 for jobs of one model: each checked validation id's report (report_json form), and
    the reason of each one that could not be checked.

    Raises CouldNotCheck when the model is not in the store or does not load.
    """
    folder = store.find(fingerprint)
    if folder is None:
        raise CouldNotCheck(f"model {fingerprint} is not in the local model store {store.root}")
    reports: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}
    by_dtype: dict[str, list[Job]] = {}
    for job in jobs:
        by_dtype.setdefault(job.record.dtype, []).append(job)
    for claimed, group in sorted(by_dtype.items()):  # one load each (in the claimed mode, its dtype)
        try:
            loaded = store.load(folder, store.dtype_for(folder, claimed))
            tokenizer, tokenizer_fingerprint = store.tokenizer(folder)
        except (ToplocError, OSError, RuntimeError) as exc:  # torch reports out of memory as RuntimeError
            raise CouldNotCheck(f"model {fingerprint} in {folder} does not load: {exc}") from exc
        checkable = []
        for job in group:
            problem = tokenizer_problem(job.record, tokenizer_fingerprint)
            if problem is None:
                checkable.append(job)
            else:
                errors[job.validation_id] = problem
        items = [validation_item(job.record) for job in checkable]
        results = validate_batch(loaded, items, tokenizer=tokenizer) if items else []
        for job, result in zip(checkable, results, strict=True):
            if result.status == ERROR:
                errors[job.validation_id] = str(result.error)
            else:
                reports[job.validation_id] = report_json(
                    job.dispute_id, job.validator, job.digest, fingerprint, job.record, result
                )
    return reports, errors


def store_reports(
    sessions: sessionmaker[Session], task_id: str, reports: dict[int, dict[str, Any]]
) -> list[Outcome]:
    """Step 5: each report and evidence hash stored, the rows validated, in one transaction. Rows this
    task no longer holds (another took them over after the lease) are left alone."""
    outcomes = []
    with transaction(sessions) as s:
        for validation_id, report in sorted(reports.items()):
            v = s.get(Validation, validation_id)
            if v is None or v.status != CLAIMED or v.claimed_by != task_id:
                continue
            body = report_bytes(report)
            v.status, v.report, v.evidence_hash = VALIDATED, body, publish(s, body)
            v.fraud, v.reason, v.claimed_by, v.lease_until = bool(report["fraud"]), None, None, None
            v.enqueued_at, v.updated_at = None, int(time.time())
            outcomes.append(Outcome(validation_id, VALIDATED, fraud=v.fraud))
    return outcomes


@dataclass
class Pipeline:
    """Steps 1-5 for one task run. `run` returns the outcomes; CouldNotCheck keeps the claim."""

    sessions: sessionmaker[Session]
    store: ModelStore
    validator: str
    lease_seconds: int
    batch: int
    hold_dir: Path | None = None

    def run(self, validation_id: int, task_id: str) -> list[Outcome]:
        ids = claim(self.sessions, validation_id, self.validator, task_id, self.lease_seconds, self.batch)
        if not ids:
            return []
        jobs, ended = load_jobs(self.sessions, ids)
        finish(self.sessions, ended)
        if not jobs:
            return ended
        hold_for_tests(self.hold_dir, jobs)
        fingerprint = jobs[0].record.model.fingerprint
        started = time.monotonic()
        # On CouldNotCheck the claim is kept: the retry (same task id) takes it back, and when retries
        # run out the task turns every validation it holds into an abstention.
        reports, errors = validate_jobs(self.store, fingerprint, jobs)
        stored = store_reports(self.sessions, task_id, reports)
        tokens = sum(len(j.record.prompt_tokens) + len(j.record.output_tokens) for j in jobs)
        log.info(
            "validated %d records (%d tokens) of model %s in %.2f s: %d fraud",
            len(jobs),
            tokens,
            fingerprint[:12],
            time.monotonic() - started,
            sum(1 for o in stored if o.fraud),
        )
        if errors:
            detail = "; ".join(f"validation {v}: {reason}" for v, reason in sorted(errors.items()))
            message = f"{len(errors)} of {len(jobs)} records could not be checked: {detail}"
            raise PartlyChecked(message, ended + stored)
        return ended + stored
