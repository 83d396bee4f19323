"""records carry their data time (the dataset's x-data-time field), checked against consents'
data ranges at release

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows stay NULL (their data time is sealed; a migration decrypts nothing): a
    # consent with a data range withholds them until the provider publishes them again.
    op.add_column(
        "records",
        sa.Column("occurred_at", hub.store.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("occurred_at")
