"""SQLAlchemy 2 models: every table of the recorder, the log, anchoring and the dispute trail.

Every chain-follower table (what the watcher fills from contract events: disputes, votes, payouts,
slashes, raw events and the sync cursors) is here, so the trail in anchor reads them without importing
verifier; verifier/models.py holds only the validators' own work (validations). Both modules share this
Base, and migrations/env.py imports both, so Alembic compares against every table.

Conventions: hashes and digests are 32-byte `LargeBinary`; addresses are EIP-55 checksummed strings;
times the log signs (receipts, checkpoints) are integer Unix seconds so a signature can be re-derived
from the row; wei amounts are decimal strings (`Wei`), because SQLite has no exact 256-bit integer.
Schema changes go through Alembic (`migrations/`); the revision that creates these tables is 0001.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ADDRESS = String(42)
HASH = LargeBinary(32)


class Wei(TypeDecorator[int]):
    """A uint256 amount stored as its decimal string (exact on SQLite and PostgreSQL alike)."""

    impl = String(78)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    pass


class Provider(Base):
    """A provider allowed to write. `api_key_hash` (SHA-256 of the key), when set, is also required."""

    __tablename__ = "providers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(ADDRESS, unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    api_key_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Model(Base):
    """A declared model: records must name one and fit it (vocabulary, hidden size, positions,
    tokenizer: anchor.records.record.ModelLimits)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "fingerprint", name="uq_models_name_fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    vocab_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # What the recorder checks records against (migration 0004); NULL for models declared before.
    hidden_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_positions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokenizer_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Record(Base):
    """One accepted inference record: its canonical bytes, the provider's signature and its receipt.

    `checkpoint_id` is the first anchored checkpoint that covers the entry (set when it is confirmed):
    the one a dispute proves inclusion against.
    """

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("provider_id", "request_id", name="uq_records_provider_request"),
        Index("ix_records_provider_log_index", "provider_id", "log_index"),
        Index("ix_records_model_log_index", "model_id", "log_index"),
        Index("ix_records_logged_at", "logged_at"),
        Index("ix_records_checkpoint", "checkpoint_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    log_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    record_digest: Mapped[bytes] = mapped_column(HASH, unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    request_id: Mapped[str] = mapped_column(String(128))
    dtype: Mapped[str] = mapped_column(String(16))
    record_time: Mapped[int] = mapped_column(BigInteger)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    logged_at: Mapped[int] = mapped_column(BigInteger)
    """The receipt's timestamp (Unix seconds)."""
    max_merge_delay: Mapped[int] = mapped_column(Integer)
    """The receipt's maximum merge delay (seconds) promised when the record was accepted."""
    receipt_signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True)

    provider: Mapped[Provider] = relationship(lazy="joined")
    model: Mapped[Model] = relationship(lazy="joined")


class LogState(Base):
    """The single row (id 1) that serialises appends: writers lock it first; `size` is the tree size."""

    __tablename__ = "log_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LogEntry(Base):
    """Row `idx` holds the hashes of every subtree that became complete when leaf `idx` was appended.

    That is node (level, idx >> level) for level 0 (the leaf hash) up to the number of trailing one bits
    of idx, concatenated in level order: one row per leaf, never updated (see docs/log.md).
    """

    __tablename__ = "log_entries"
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class Checkpoint(Base):
    """A tree head the anchor loop commits to: status 'pending' until confirmed on chain, then 'anchored'."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[bytes] = mapped_column(HASH)
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    chain_checkpoint_id: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    """The contract's checkpoint id (from 1) once anchored."""
    anchored_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The block timestamp of the anchoring transaction."""


class Anchor(Base):
    """One transaction sent (or about to be sent) for a checkpoint; a dropped one is followed by another.

    Rows are written before the transaction is sent (status 'signed', with the raw signed transaction),
    so a restart can resend exactly the same bytes.
    """

    __tablename__ = "anchors"
    __table_args__ = (Index("ix_anchors_checkpoint", "checkpoint_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(ADDRESS)
    tx_hash: Mapped[bytes] = mapped_column(HASH, unique=True)
    nonce: Mapped[int] = mapped_column(BigInteger)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), index=True)
    """signed -> sent -> mined -> confirmed; or dropped (reorged out or replaced) / failed (reverted)."""
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Dispute(Base):
    """A dispute opened on chain against a log entry (filled from DisputeOpened/DisputeResolved events)."""

    __tablename__ = "disputes"
    __table_args__ = (Index("ix_disputes_leaf_index", "leaf_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    """The contract's dispute id."""
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), nullable=True, index=True)
    provider: Mapped[str] = mapped_column(ADDRESS, index=True)
    challenger: Mapped[str] = mapped_column(ADDRESS)
    record_digest: Mapped[bytes] = mapped_column(HASH)
    bond: Mapped[int] = mapped_column(Wei)
    committee: Mapped[list[str]] = mapped_column(JSON, default=list)
    deadline: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[int] = mapped_column(SmallInteger, default=0)
    """0 open, 1 fraud, 2 honest, 3 no quorum (docs/architecture.md)."""
    opened_tx: Mapped[bytes] = mapped_column(HASH)
    opened_block: Mapped[int] = mapped_column(BigInteger)
    record: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The disputed record's canonical bytes from openDispute's calldata (SHA-256 checked on chain):
    what validators judge when the log lacks the record or holds other bytes."""
    resolved_tx: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
    resolved_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Vote(Base):
    """A validator's verdict on a dispute; one per (dispute, validator), as the contract enforces."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("dispute_id", "validator", name="uq_votes_dispute_validator"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"))
    validator: Mapped[str] = mapped_column(ADDRESS)
    fraud: Mapped[bool] = mapped_column(Boolean)
    evidence_hash: Mapped[bytes] = mapped_column(HASH)
    tx_hash: Mapped[bytes] = mapped_column(HASH)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Evidence(Base):
    """A validator's evidence report (or reason to abstain), by the SHA-256 its reveal binds on chain:
    published so anyone can check a vote (served at /v1/evidence/{hash})."""

    __tablename__ = "evidence"
    hash: Mapped[bytes] = mapped_column(HASH, primary_key=True)
    report: Mapped[bytes] = mapped_column(LargeBinary)
    """The report's exact bytes (canonical JSON): SHA-256 of them is `hash`."""
    created_at: Mapped[int] = mapped_column(BigInteger)


def account_event_indexes(table: str) -> tuple[UniqueConstraint | Index, ...]:
    """Table args of an AccountEvent table: unique on its event, indexed by dispute and account."""
    return (
        UniqueConstraint("tx_hash", "log_index", name=f"uq_{table}_event"),
        Index(f"ix_{table}_dispute", "dispute_id"),
        Index(f"ix_{table}_account", "account"),
    )


class AccountEvent:
    """Columns of an amount that moved for an account through one contract event (payouts, slashes)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(ADDRESS)
    amount: Mapped[int] = mapped_column(Wei)
    dispute_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The contract's dispute id the amount came from, if any."""
    tx_hash: Mapped[bytes] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)


class Payout(AccountEvent, Base):
    """A credit to an account (Credited event), unique on the event that made it."""

    __tablename__ = "payouts"
    __table_args__ = account_event_indexes("payouts")


class Slash(AccountEvent, Base):
    """Stake taken from an account (Slashed event), unique on the event that took it."""

    __tablename__ = "slashes"
    __table_args__ = account_event_indexes("slashes")


class ChainEvent(Base):
    """A raw contract event as synced, deduplicated on (tx_hash, log_index); `removed` after a reorg."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
        Index("ix_chain_events_block", "block_number"),
        Index("ix_chain_events_name", "name"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(ADDRESS)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[bytes] = mapped_column(HASH)
    tx_hash: Mapped[bytes] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)


class SyncCursor(Base):
    """How far a chain follower has synced (the watcher resumes from block_number - confirmations)."""

    __tablename__ = "sync_cursors"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[bytes | None] = mapped_column(HASH, nullable=True)
