"""agreement notices are acknowledged on their webhook notification, not on the notice

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 01:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Never written: the partner acknowledges the outbox notification that carries the notice.
    with op.batch_alter_table("agreement_notices", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_at")


def downgrade() -> None:
    with op.batch_alter_table("agreement_notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("acknowledged_at", hub.store.base.UTCDateTime(timezone=True), nullable=True)
        )
