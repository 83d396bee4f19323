"""partners that received records under role-addressed consents (told when those end)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_releases",
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("first_released_at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_consent_releases_consent_id_consents")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_consent_releases_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("consent_id", "partner_id", name=op.f("pk_consent_releases")),
    )


def downgrade() -> None:
    op.drop_table("consent_releases")
