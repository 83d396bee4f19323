"""consumer rights requests (correction, erasure) with status history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("dataset_id", sa.String(length=128), nullable=True),
        sa.Column("record_key", sa.String(length=128), nullable=True),
        sa.Column("field", sa.String(length=128), nullable=True),
        sa.Column("sealed", hub.store.base.JSONDocument(), nullable=False),
        sa.Column("created_at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_rights_requests_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["partners.id"], name=op.f("fk_rights_requests_provider_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["data_subjects.id"],
            name=op.f("fk_rights_requests_subject_id_data_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests")),
    )
    op.create_index(
        "ix_rights_requests_provider_status",
        "rights_requests",
        ["provider_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_rights_requests_subject_created",
        "rights_requests",
        ["subject_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "rights_request_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", hub.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["rights_requests.id"],
            name=op.f("fk_rights_request_events_request_id_rights_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_request_events")),
        sa.UniqueConstraint("request_id", "seq", name="uq_rights_request_events_request_seq"),
    )
    op.create_index(
        op.f("ix_rights_request_events_request_id"),
        "rights_request_events",
        ["request_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rights_request_events_request_id"), table_name="rights_request_events")
    op.drop_table("rights_request_events")
    op.drop_index("ix_rights_requests_subject_created", table_name="rights_requests")
    op.drop_index("ix_rights_requests_provider_status", table_name="rights_requests")
    op.drop_table("rights_requests")
