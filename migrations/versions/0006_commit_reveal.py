"""Commit-reveal voting: validations' round and commit transaction; the published evidence reports.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Votes are now committed (a hash) and then revealed. The reveal keeps the vote_* columns; the commit (or
the abstention sent instead) gets its own, stored signed before it is broadcast like the vote. Nullable
columns and a server default: nothing is rewritten. The evidence table keeps each report by the SHA-256
a reveal binds, for the recorder's API to serve.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "evidence",
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("report", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    with op.batch_alter_table("validations") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("commit_tx_hash", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("commit_raw_tx", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("commit_nonce", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("commit_block", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("validations") as batch:
        for name in ("commit_block", "commit_nonce", "commit_raw_tx", "commit_tx_hash", "round"):
            batch.drop_column(name)
    op.drop_table("evidence")
