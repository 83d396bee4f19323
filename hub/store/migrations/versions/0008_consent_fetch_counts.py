"""daily fetch counts of capped consents (fetches_per_day enforced at release)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_fetch_counts",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("fetches", sa.Integer(), nullable=False),
        sa.Column("fetches_per_day", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_consent_fetch_counts_consent_id_consents"),
        ),
        sa.PrimaryKeyConstraint("consent_id", "day", name=op.f("pk_consent_fetch_counts")),
    )
    with op.batch_alter_table("consent_fetch_counts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_fetch_counts_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_fetch_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_fetch_counts_day"))
    op.drop_table("consent_fetch_counts")
