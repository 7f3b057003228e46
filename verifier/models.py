"""The verifier's own table: one validation per (dispute, validator) this deployment runs.

It lives on anchor's declarative Base (one schema, one Alembic history); migration 0002 creates it.
The chain-follower tables the watcher fills (disputes, votes, payouts, slashes, events) are anchor's
(anchor.db.models), so the audit trail reads them without importing verifier.

A validation moves through these states (the task that owns each step is in verifier/tasks.py):

    pending -> claimed -> validated -> committing -> committed -> revealing -> voted
                  \\-> abstaining (could not check: model missing, crash, time limit; never a fraud
                                 vote) -> abstained (abstain sent on chain, or too late to)
    cancelled: the dispute vanished in a reorg, or this validator is not on its committee

`report` holds the canonical JSON of the per-chunk report (or of the reason to abstain) and
`evidence_hash` its SHA-256, the hash the reveal (or abstention) binds on chain; the recorder's API
serves the report by that hash. Each transaction (commit or abstention in commit_*, reveal in vote_*)
is stored signed before it is broadcast, so a restart sends the same bytes again (one nonce: at most
one can be mined; the contract refuses a second). The commitment's salt is derived from the
validator's key and the dispute (verifier/verdicts.py), so nothing secret is stored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from anchor.db.models import ADDRESS, HASH, Base

PENDING = "pending"
CLAIMED = "claimed"
VALIDATED = "validated"
COMMITTING = "committing"
COMMITTED = "committed"
REVEALING = "revealing"
VOTED = "voted"
ABSTAINING = "abstaining"
ABSTAINED = "abstained"
CANCELLED = "cancelled"
STATUSES = (
    PENDING,
    CLAIMED,
    VALIDATED,
    COMMITTING,
    COMMITTED,
    REVEALING,
    VOTED,
    ABSTAINING,
    ABSTAINED,
    CANCELLED,
)
FINAL = (VOTED, ABSTAINED, CANCELLED)
SENDING = (VALIDATED, COMMITTING, COMMITTED, REVEALING, ABSTAINING)
"""Statuses the vote task moves on (verifier/verdicts.py)."""


class Validation(Base):
    """One committee member's work on one dispute (only members whose keys this deployment runs)."""

    __tablename__ = "validations"
    __table_args__ = (
        UniqueConstraint("dispute_id", "validator", name="uq_validations_dispute_validator"),
        Index("ix_validations_claim", "validator", "status", "model_fingerprint"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger, index=True)
    """The contract's dispute id (not disputes.id: a reorg may delete and re-create that row)."""
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The round whose committee drew this validator (a validator sits on one round per dispute)."""
    validator: Mapped[str] = mapped_column(ADDRESS)
    status: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), nullable=True)
    model_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The batch key: validations of one model are claimed and prefilled together."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """How many times a task started computing it (a redelivery after a crash counts again)."""
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The Celery task id holding the claim (a redelivered task keeps its id and takes the claim back)."""
    lease_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    enqueued_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """When a task for the current step was last queued (the sweep re-queues work older than this)."""
    fraud: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    evidence_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    report: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why it abstained or was cancelled, or the last transient error."""
    commit_tx_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    commit_raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    commit_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    commit_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    vote_tx_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    vote_raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    vote_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    vote_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
