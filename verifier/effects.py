"""What each contract event means for the database, and how to take it back when a reorg removes it.

`apply` and `revert` are idempotent and work inside the watcher's transaction: applying an event twice
leaves one row (every table is keyed on the event or the dispute), and reverting an event that left
nothing changes nothing. Events not listed here are kept only as raw rows in chain_events.

- DisputeOpened: a disputes row (with the record's bytes from the openDispute calldata), no committee
  yet; reverted: the dispute and its votes deleted, unfinished validations cancelled.
- CommitteeDrawn: the round's members join disputes.committee, the deadline becomes the round's reveal
  deadline, and each member this deployment runs gets a pending validation; reverted: those members
  leave the committee and their validations are cancelled.
- VoteCommitted: our committed validations of the dispute are queued again (the reveal phase may have
  begun); nothing to revert.
- VoteRevealed: a votes row, our validation voted; reverted: the vote deleted, our validation back
  to committed (the vote task sends the stored reveal again).
- VoteAbstained: our validation abstained; reverted: back to abstaining (the stored abstention is sent
  again).
- DisputeAppealed: the deadline is 0 again (a new round awaits its draw); nothing to revert (the next
  CommitteeDrawn sets it).
- DisputeResolved: disputes.outcome, our unfinished validations abstained; reverted: outcome open.
- Credited / Slashed: a payouts / slashes row; reverted: the row deleted.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from anchor.db.models import Dispute, Payout, Slash, Vote
from anchor.db.models import Record as RecordRow
from anchor.errors import InputError
from anchor.records import Record as RecordModel
from verifier.events import ChainLog
from verifier.models import (
    ABSTAINED,
    ABSTAINING,
    CANCELLED,
    COMMITTED,
    FINAL,
    PENDING,
    VOTED,
    Validation,
)


@dataclass
class Changes:
    """What a sync changed that needs a task once it commits."""

    new_validations: list[int] = field(default_factory=list)
    """Validation ids that became pending (queue a validation task for each)."""
    revote: list[int] = field(default_factory=list)
    """Validation ids whose vote a reorg removed (queue a vote task for each)."""
    touched_disputes: set[int] = field(default_factory=set)
    """Contract dispute ids an event moved on (maybe drawable or resolvable now)."""


def _hash(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _dispute(session: Session, dispute_id: int) -> Dispute | None:
    return session.scalars(select(Dispute).where(Dispute.dispute_id == dispute_id)).first()


def apply(session: Session, log: ChainLog, validators: Collection[str], changes: Changes) -> None:
    """Apply one event. `validators`: lowercase addresses this deployment runs."""
    a = log.args
    match log.name:
        case "DisputeOpened":
            _open(session, log, validators, changes)
        case "CommitteeDrawn":
            _drawn(session, log, validators, changes)
        case "VoteCommitted":
            for waiting in _validations(session, int(a["disputeId"])):
                if waiting.status == COMMITTED:
                    waiting.enqueued_at = None  # the reveal phase begins once every member has committed
            changes.touched_disputes.add(int(a["disputeId"]))
        case "VoteRevealed":
            d = _dispute(session, int(a["disputeId"]))
            if d is None:
                return  # its dispute is not synced (before the watcher's first block): nothing to attach
            validator = to_checksum_address(a["validator"])
            exists = session.scalars(
                select(Vote.id).where(Vote.dispute_id == d.id, Vote.validator == validator)
            ).first()
            if exists is None:
                session.add(
                    Vote(
                        dispute_id=d.id,
                        validator=validator,
                        fraud=bool(a["fraud"]),
                        evidence_hash=_hash(a["evidenceHash"]),
                        tx_hash=log.tx_hash,
                        block_number=log.block_number,
                    )
                )
            v = _validation(session, d.dispute_id, validator)
            if v is not None:
                v.status, v.vote_tx_hash, v.vote_block = VOTED, log.tx_hash, log.block_number
                v.updated_at = int(time.time())
            changes.touched_disputes.add(d.dispute_id)
        case "VoteAbstained":
            v = _validation(session, int(a["disputeId"]), to_checksum_address(a["validator"]))
            if v is not None and v.status not in FINAL:
                v.status, v.commit_tx_hash, v.commit_block = ABSTAINED, log.tx_hash, log.block_number
                v.updated_at = int(time.time())
            changes.touched_disputes.add(int(a["disputeId"]))
        case "DisputeAppealed":
            appealed = _dispute(session, int(a["disputeId"]))
            if appealed is not None:
                appealed.deadline = 0  # a new round awaits its draw
            changes.touched_disputes.add(int(a["disputeId"]))
        case "DisputeResolved":
            d = _dispute(session, int(a["disputeId"]))
            if d is None:
                return
            d.outcome, d.resolved_tx, d.resolved_block = int(a["outcome"]), log.tx_hash, log.block_number
            for v in _validations(session, d.dispute_id):
                if v.status not in FINAL:
                    v.status, v.reason = ABSTAINED, "the dispute was resolved before this validator voted"
                    v.updated_at = int(time.time())
        case "Credited":
            _add_event_row(session, Payout, a, log)
        case "Slashed":
            _add_event_row(session, Slash, a, log)
    session.flush()


def revert(session: Session, log: ChainLog, changes: Changes) -> None:
    """Undo one event that is no longer on the chain."""
    a = log.args
    match log.name:
        case "DisputeOpened":
            d = _dispute(session, int(a["disputeId"]))
            if d is not None and d.opened_tx == log.tx_hash:
                session.execute(delete(Vote).where(Vote.dispute_id == d.id))
                session.delete(d)
                for gone in _validations(session, int(a["disputeId"])):
                    if gone.status != CANCELLED:
                        gone.status, gone.reason = (
                            CANCELLED,
                            "the dispute was removed by a chain reorganisation",
                        )
                        gone.claimed_by = None
                        gone.updated_at = int(time.time())
        case "CommitteeDrawn":
            d = _dispute(session, int(a["disputeId"]))
            members = [to_checksum_address(m) for m in a["committee"]]
            if d is not None:
                d.committee = [m for m in d.committee if m not in members]
            for drawn in _validations(session, int(a["disputeId"])):
                if drawn.validator in members and drawn.status != CANCELLED:
                    drawn.status, drawn.reason = CANCELLED, "the draw was removed by a chain reorganisation"
                    drawn.claimed_by = None
                    drawn.updated_at = int(time.time())
        case "VoteRevealed":
            d = _dispute(session, int(a["disputeId"]))
            validator = to_checksum_address(a["validator"])
            if d is not None:
                session.execute(
                    delete(Vote).where(
                        Vote.dispute_id == d.id, Vote.validator == validator, Vote.tx_hash == log.tx_hash
                    )
                )
            v = _validation(session, int(a["disputeId"]), validator)
            if v is not None and v.status == VOTED and v.vote_tx_hash == log.tx_hash:
                # The signed reveal stays stored: the vote task sends the same bytes again.
                v.status, v.vote_block, v.enqueued_at = COMMITTED, None, None
                v.updated_at = int(time.time())
                changes.revote.append(v.id)
        case "VoteAbstained":
            v = _validation(session, int(a["disputeId"]), to_checksum_address(a["validator"]))
            if v is not None and v.status == ABSTAINED and v.commit_tx_hash == log.tx_hash:
                v.status, v.commit_block, v.enqueued_at = ABSTAINING, None, None
                v.updated_at = int(time.time())
                changes.revote.append(v.id)
        case "DisputeResolved":
            d = _dispute(session, int(a["disputeId"]))
            if d is not None and d.resolved_tx == log.tx_hash:
                d.outcome, d.resolved_tx, d.resolved_block = 0, None, None
        case "Credited":
            _delete_event_row(session, Payout, log)
        case "Slashed":
            _delete_event_row(session, Slash, log)
    session.flush()


def _open(session: Session, log: ChainLog, validators: Collection[str], changes: Changes) -> None:
    a = log.args
    dispute_id, leaf_index = int(a["disputeId"]), int(a["leafIndex"])
    digest = _hash(a["recordDigest"])
    record = session.scalars(select(RecordRow).where(RecordRow.log_index == leaf_index)).first()
    # Linked only when the log holds exactly the record the challenger named; otherwise the validators
    # judge the calldata's copy, or abstain (validation.py says why).
    record_id = record.id if record is not None and record.record_digest == digest else None
    d = _dispute(session, dispute_id)
    if d is None:
        d = Dispute(dispute_id=dispute_id)
        session.add(d)
    d.leaf_index, d.record_id = leaf_index, record_id
    d.provider, d.challenger = to_checksum_address(a["provider"]), to_checksum_address(a["challenger"])
    d.record_digest, d.bond = digest, int(a["bond"])
    d.committee, d.deadline, d.outcome = [], 0, 0
    d.opened_tx, d.opened_block, d.record = log.tx_hash, log.block_number, log.record
    d.resolved_tx = d.resolved_block = None
    changes.touched_disputes.add(dispute_id)


def _drawn(session: Session, log: ChainLog, validators: Collection[str], changes: Changes) -> None:
    a = log.args
    dispute_id, round_ = int(a["disputeId"]), int(a["round"])
    d = _dispute(session, dispute_id)
    if d is None:
        return  # its dispute is not synced (before the watcher's first block)
    members = [to_checksum_address(m) for m in a["committee"]]
    d.committee = [*[m for m in d.committee if m not in members], *members]
    d.deadline = int(a["revealDeadline"])
    if d.record_id is not None:
        record = session.get(RecordRow, d.record_id)
        fingerprint: str | None = None if record is None else record.model.fingerprint
    else:  # the log lacks the record or holds other bytes: the chain's copy names the model
        fingerprint = _calldata_model(d.record)
    now = int(time.time())
    for member in members:
        if member.lower() not in validators:
            continue
        v = _validation(session, dispute_id, member)
        if v is None:
            v = Validation(
                dispute_id=dispute_id, validator=member, status=PENDING, attempts=0, created_at=now
            )
            session.add(v)
        elif v.status != CANCELLED:
            continue  # already known (the same event applied again)
        else:
            # Drawn again on the new branch of a reorg, maybe for another record: start afresh. A
            # transaction signed for the old branch, if it is ever mined, reverts (the contract's check).
            _reset(v)
        v.round, v.record_id, v.model_fingerprint, v.reason, v.updated_at = (
            round_,
            d.record_id,
            fingerprint,
            None,
            now,
        )
        session.flush()
        changes.new_validations.append(v.id)
    changes.touched_disputes.add(dispute_id)


def _calldata_model(record: bytes | None) -> str | None:
    """The model fingerprint the calldata's record names; None when there is none or it does not
    parse (the validation then abstains with the reason, validation.py)."""
    if record is None:
        return None
    try:
        return RecordModel.from_canonical(record).model.fingerprint
    except (InputError, ValueError):
        return None


def _reset(v: Validation) -> None:
    v.status, v.attempts, v.claimed_by, v.lease_until, v.enqueued_at = PENDING, 0, None, None, None
    v.fraud = v.evidence_hash = v.report = None
    v.commit_tx_hash = v.commit_raw_tx = v.commit_nonce = v.commit_block = None
    v.vote_tx_hash = v.vote_raw_tx = v.vote_nonce = v.vote_block = None


def _validation(session: Session, dispute_id: int, validator: str) -> Validation | None:
    return session.scalars(
        select(Validation).where(Validation.dispute_id == dispute_id, Validation.validator == validator)
    ).first()


def _validations(session: Session, dispute_id: int) -> list[Validation]:
    return list(session.scalars(select(Validation).where(Validation.dispute_id == dispute_id)))


def _add_event_row(
    session: Session, table: type[Payout] | type[Slash], args: dict[str, Any], log: ChainLog
) -> None:
    """The amount an event moved for an account, once per event (tx hash, log index)."""
    found = session.scalars(
        select(table.id).where(table.tx_hash == log.tx_hash, table.log_index == log.log_index)
    ).first()
    if found is None:
        session.add(
            table(
                account=to_checksum_address(args["account"]),
                amount=int(args["amount"]),
                dispute_id=int(args["disputeId"]) or None,
                tx_hash=log.tx_hash,
                log_index=log.log_index,
                block_number=log.block_number,
            )
        )


def _delete_event_row(session: Session, table: type[Payout] | type[Slash], log: ChainLog) -> None:
    session.execute(delete(table).where(table.tx_hash == log.tx_hash, table.log_index == log.log_index))
