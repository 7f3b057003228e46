"""initial schema: records, the log, checkpoints and anchors, providers and models, the dispute trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Creates empty tables, so no lock or timeout concerns; seeds the single log_state row (size 0) that
every append locks first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "chain_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index("ix_chain_events_block", ["block_number"], unique=False)
        batch_op.create_index("ix_chain_events_name", ["name"], unique=False)

    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chain_checkpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("anchored_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_checkpoint_id"),
        sa.UniqueConstraint("size"),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_status"), ["status"], unique=False)

    op.create_table(
        "log_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("vocab_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "fingerprint", name="uq_models_name_fingerprint"),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_payouts_event"),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index("ix_payouts_account", ["account"], unique=False)
        batch_op.create_index("ix_payouts_dispute", ["dispute_id"], unique=False)

    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_key_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "anchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["checkpoints.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash"),
    )
    with op.batch_alter_table("anchors", schema=None) as batch_op:
        batch_op.create_index("ix_anchors_checkpoint", ["checkpoint_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_anchors_status"), ["status"], unique=False)

    op.create_table(
        "records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("record_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("dtype", sa.String(length=16), nullable=False),
        sa.Column("record_time", sa.BigInteger(), nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("logged_at", sa.BigInteger(), nullable=False),
        sa.Column("max_merge_delay", sa.Integer(), nullable=False),
        sa.Column("receipt_signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["checkpoints.id"],
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("log_index"),
        sa.UniqueConstraint("provider_id", "request_id", name="uq_records_provider_request"),
        sa.UniqueConstraint("record_digest"),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index("ix_records_checkpoint", ["checkpoint_id"], unique=False)
        batch_op.create_index("ix_records_logged_at", ["logged_at"], unique=False)
        batch_op.create_index("ix_records_model_log_index", ["model_id", "log_index"], unique=False)
        batch_op.create_index("ix_records_provider_log_index", ["provider_id", "log_index"], unique=False)

    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("challenger", sa.String(length=42), nullable=False),
        sa.Column("record_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("bond", sa.String(length=78), nullable=False),
        sa.Column("committee", sa.JSON(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False),
        sa.Column("opened_tx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("opened_block", sa.BigInteger(), nullable=False),
        sa.Column("resolved_tx", sa.LargeBinary(length=32), nullable=True),
        sa.Column("resolved_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispute_id"),
    )
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index("ix_disputes_leaf_index", ["leaf_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_disputes_provider"), ["provider"], unique=False)
        batch_op.create_index(batch_op.f("ix_disputes_record_id"), ["record_id"], unique=False)

    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispute_id", sa.Integer(), nullable=False),
        sa.Column("validator", sa.String(length=42), nullable=False),
        sa.Column("fraud", sa.Boolean(), nullable=False),
        sa.Column("evidence_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"],
            ["disputes.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispute_id", "validator", name="uq_votes_dispute_validator"),
    )
    op.bulk_insert(
        sa.table("log_state", sa.column("id", sa.Integer), sa.column("size", sa.BigInteger)),
        [{"id": 1, "size": 0}],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("votes")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disputes_record_id"))
        batch_op.drop_index(batch_op.f("ix_disputes_provider"))
        batch_op.drop_index("ix_disputes_leaf_index")

    op.drop_table("disputes")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_provider_log_index")
        batch_op.drop_index("ix_records_model_log_index")
        batch_op.drop_index("ix_records_logged_at")
        batch_op.drop_index("ix_records_checkpoint")

    op.drop_table("records")
    with op.batch_alter_table("anchors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anchors_status"))
        batch_op.drop_index("ix_anchors_checkpoint")

    op.drop_table("anchors")
    op.drop_table("sync_cursors")
    op.drop_table("providers")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_payouts_dispute")
        batch_op.drop_index("ix_payouts_account")

    op.drop_table("payouts")
    op.drop_table("models")
    op.drop_table("log_state")
    op.drop_table("log_entries")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_status"))

    op.drop_table("checkpoints")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_events_name")
        batch_op.drop_index("ix_chain_events_block")

    op.drop_table("chain_events")
