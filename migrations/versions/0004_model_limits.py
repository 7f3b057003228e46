"""models.hidden_size, max_positions, tokenizer_fingerprint: what records are checked against.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The recorder refuses at ingest every record a validator would refuse (topk above the hidden size,
prompt + max_new_tokens beyond the positions, another tokenizer), so it needs these per model. Three
nullable columns: ADD COLUMN without a default rewrites nothing and holds its ACCESS EXCLUSIVE lock only
for the catalog update. Models declared earlier keep NULLs until declared again (`provider
declare-model --folder`); records naming them are refused until then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("hidden_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_positions", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("tokenizer_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("models") as batch:
        batch.drop_column("tokenizer_fingerprint")
        batch.drop_column("max_positions")
        batch.drop_column("hidden_size")
