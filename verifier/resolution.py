"""Resolving disputes: anyone may call resolve once every committee member voted or the deadline passed.

The contract pays out (credits) and slashes; the watcher copies those events into payouts and slashes.
Resolving twice cannot happen: the second call's simulation reverts with DisputeGameNotOpen and nothing
is sent, which counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anchor.chain.client import Outcome, ToplocAuditClient
from anchor.chain.errors import ContractRevert
from anchor.db.models import Dispute, Vote


@dataclass(frozen=True)
class Resolved:
    dispute_id: int
    outcome: Outcome
    tx_hash: str | None
    """None when nothing was sent: already resolved, or not resolvable yet."""


def resolvable(committee_size: int, votes: int, deadline: int, now: int) -> bool:
    """The contract's rule: every member voted, or the deadline is past (chain time)."""
    return votes >= committee_size or now > deadline


def due_for_resolution(session: Session, now: int) -> list[int]:
    """Contract ids of open disputes the database says can be resolved at chain time `now`."""
    votes = select(Vote.dispute_id, func.count().label("n")).group_by(Vote.dispute_id).subquery("vote_counts")
    rows = session.execute(
        select(Dispute.dispute_id, Dispute.committee, Dispute.deadline, func.coalesce(votes.c.n, 0))
        .outerjoin(votes, votes.c.dispute_id == Dispute.id)
        .where(Dispute.outcome == int(Outcome.OPEN))
        .order_by(Dispute.dispute_id)
    ).all()
    return [int(d) for d, committee, deadline, n in rows if resolvable(len(committee), int(n), deadline, now)]


def resolve_dispute(client: ToplocAuditClient, dispute_id: int) -> Resolved:
    """Sends resolve(disputeId) if the chain says it is open and resolvable; otherwise sends nothing."""
    dispute = client.dispute(dispute_id)
    if dispute.outcome != Outcome.OPEN:
        return Resolved(dispute_id, dispute.outcome, None)
    now = client.chain_time()
    votes = dispute.fraud_votes + dispute.honest_votes
    if not resolvable(len(dispute.committee), votes, dispute.deadline, now):
        return Resolved(dispute_id, Outcome.OPEN, None)
    try:
        sent = client.resolve(dispute_id)
    except ContractRevert as exc:
        if exc.name == "DisputeGameNotOpen":  # someone else resolved it in the meantime
            return Resolved(dispute_id, Outcome(int(exc.values["outcome"])), None)
        raise
    return Resolved(dispute_id, Outcome(int(sent.event("DisputeResolved")["outcome"])), sent.tx_hash)
