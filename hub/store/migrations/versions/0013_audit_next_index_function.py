"""PostgreSQL: the audit append lock and the next index in one round trip
(``hub.audit.models.NEXT_INDEX_FUNCTION``, a VOLATILE SQL function). SQLite: nothing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 11:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# The text as of this revision: a later change to the function is a migration of its own.
_CREATE = """
CREATE OR REPLACE FUNCTION tollhouse_audit_next_index(lock_key bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(lock_key);
    SELECT COALESCE(MAX("index"), -1) + 1 FROM audit_events;
$$
"""

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tollhouse_audit_next_index(bigint)")
