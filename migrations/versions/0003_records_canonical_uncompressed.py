"""records.canonical stored uncompressed (PostgreSQL STORAGE EXTERNAL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

A record's canonical bytes are mostly base64 of TOPLOC proofs, which pglz barely shrinks, yet the
server tried to compress every ~5 KB value on insert: about a third of its CPU per ingested record
(bench/bench_ingest.py). EXTERNAL keeps large values out of line without trying to compress them.
Lock: ALTER COLUMN ... SET STORAGE takes an ACCESS EXCLUSIVE lock but rewrites nothing (it applies to
rows written afterwards), so it returns at once. SQLite has no such setting: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN canonical SET STORAGE EXTERNAL")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN canonical SET STORAGE EXTENDED")
