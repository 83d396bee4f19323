"""regulator dashboard sessions can be ended on the server (signed-out session ids)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 03:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "regulator_revoked_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_regulator_revoked_sessions")),
    )
    with op.batch_alter_table("regulator_revoked_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_regulator_revoked_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("regulator_revoked_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_regulator_revoked_sessions_expires_at"))
    op.drop_table("regulator_revoked_sessions")
