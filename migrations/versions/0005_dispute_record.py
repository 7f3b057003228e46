"""disputes.record: the disputed record's canonical bytes, from openDispute's calldata.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

openDispute now carries the record's bytes (the contract checks their SHA-256 against recordDigest), so
validators judge the record the chain holds when the log lacks it or holds other bytes. One nullable
column: ADD COLUMN without a default rewrites nothing; disputes synced earlier keep NULL (their
transactions carried no record).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("disputes") as batch:
        batch.add_column(sa.Column("record", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("disputes") as batch:
        batch.drop_column("record")
