"""Moving disputes along: anyone may draw a committee once its draw block is reached, and resolve a
dispute once its last round is over and can no longer be appealed.

`advance_dispute` asks the chain for the phase and sends at most one transaction; the watcher copies
the events (CommitteeDrawn, DisputeResolved, Credited, Slashed) into the database. Doing a step twice
cannot happen: the second call's simulation reverts with DisputeGameWrongPhase and nothing is sent,
which counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.chain.client import Outcome, Phase, ToplocAuditClient
from anchor.chain.errors import ContractRevert
from anchor.db.models import Dispute


@dataclass(frozen=True)
class Advanced:
    dispute_id: int
    phase: Phase
    """The phase the step was taken in (or found in, when nothing was sent)."""
    action: str | None
    """"draw", "resolve", or None when nothing was sent."""
    tx_hash: str | None = None
    outcome: Outcome = Outcome.OPEN


def open_disputes(session: Session, chain_now: int) -> tuple[list[int], set[int]]:
    """Contract ids of the disputes the database says are open, and those of them where a step may be
    due any moment: a round awaiting its draw (deadline 0) or past its reveal deadline."""
    rows = session.execute(
        select(Dispute.dispute_id, Dispute.deadline)
        .where(Dispute.outcome == int(Outcome.OPEN))
        .order_by(Dispute.dispute_id)
    ).all()
    pressing = {int(d) for d, deadline in rows if deadline == 0 or deadline < chain_now}
    return [int(d) for d, _ in rows], pressing


def advance_dispute(client: ToplocAuditClient, dispute_id: int) -> Advanced:
    """Draws or resolves `dispute_id` if the chain says that is due now; otherwise sends nothing."""
    phase = client.phase(dispute_id)
    try:
        if phase == Phase.DRAW:
            draw_block = client.current_round(dispute_id).draw_block
            if int(client.w3.eth.block_number) + 1 < draw_block:
                return Advanced(dispute_id, phase, None)
            sent = client.draw(dispute_id)
            return Advanced(dispute_id, phase, "draw", sent.tx_hash)
        if phase == Phase.RESOLVABLE:
            sent = client.resolve(dispute_id)
            outcome = Outcome(int(sent.event("DisputeResolved")["outcome"]))
            return Advanced(dispute_id, phase, "resolve", sent.tx_hash, outcome)
    except ContractRevert as exc:
        if exc.name == "DisputeGameWrongPhase":  # someone else took the step in the meantime
            return Advanced(dispute_id, Phase(int(exc.values["phase"])), None)
        raise
    outcome = client.dispute(dispute_id).outcome if phase == Phase.RESOLVED else Outcome.OPEN
    return Advanced(dispute_id, phase, None, outcome=outcome)
