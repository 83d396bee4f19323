"""records.sealed as JSON text on PostgreSQL (json, not jsonb): the database never looks
inside a record's ciphertexts, and printing jsonb back to text was a PostgreSQL cost on every
pulled record. SQLite already stores JSON text: nothing to do there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 06:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN sealed TYPE json USING sealed::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE records ALTER COLUMN sealed TYPE jsonb USING sealed::jsonb")
