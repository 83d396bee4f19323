"""per-partner rate-limit buckets shared by every hub process

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_lookups",
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(
            "partner_id", "window_start", "digest", name=op.f("pk_identity_lookups")
        ),
    )
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket_key", sa.String(length=128), nullable=False),
        sa.Column("route_class", sa.String(length=16), nullable=False),
        sa.Column("tat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("bucket_key", "route_class", name=op.f("pk_rate_limit_buckets")),
    )
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limits", hub.store.base.JSONDocument(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("rate_limits")
    op.drop_table("rate_limit_buckets")
    op.drop_table("identity_lookups")
