"""webhook outbox carries agreement notices as well as consent events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent_notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agreement_id", sa.String(length=64), nullable=True))
        batch_op.alter_column("consent_id", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_consent_notifications_agreement_id"), ["agreement_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_consent_notifications_agreement_id_agreements"),
            "agreements",
            ["agreement_id"],
            ["id"],
        )


def downgrade() -> None:
    # The older schema cannot hold agreement notifications: their outbox rows go first (the
    # notices themselves stay in agreement_notices).
    op.execute(
        "DELETE FROM webhook_deliveries WHERE notification_id IN "
        "(SELECT id FROM consent_notifications WHERE consent_id IS NULL)"
    )
    op.execute("DELETE FROM consent_notifications WHERE consent_id IS NULL")
    with op.batch_alter_table("consent_notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_consent_notifications_agreement_id_agreements"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_consent_notifications_agreement_id"))
        batch_op.alter_column("consent_id", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.drop_column("agreement_id")
