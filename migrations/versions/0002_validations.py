"""validations and slashes: the verifier's work per (dispute, validator) and the Slashed events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Creates two new, empty tables (verifier/models.py), so nothing existing is locked or rewritten.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "slashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_slashes_event"),
    )
    op.create_index("ix_slashes_account", "slashes", ["account"], unique=False)
    op.create_index("ix_slashes_dispute", "slashes", ["dispute_id"], unique=False)
    op.create_table(
        "validations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("validator", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("model_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("enqueued_at", sa.Float(), nullable=True),
        sa.Column("fraud", sa.Boolean(), nullable=True),
        sa.Column("evidence_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("report", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("vote_tx_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("vote_raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("vote_nonce", sa.BigInteger(), nullable=True),
        sa.Column("vote_block", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispute_id", "validator", name="uq_validations_dispute_validator"),
    )
    op.create_index(
        "ix_validations_claim", "validations", ["validator", "status", "model_fingerprint"], unique=False
    )
    op.create_index("ix_validations_dispute_id", "validations", ["dispute_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_validations_dispute_id", table_name="validations")
    op.drop_index("ix_validations_claim", table_name="validations")
    op.drop_table("validations")
    op.drop_index("ix_slashes_dispute", table_name="slashes")
    op.drop_index("ix_slashes_account", table_name="slashes")
    op.drop_table("slashes")
