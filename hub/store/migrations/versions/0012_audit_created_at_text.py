"""SQLite: audit events appended alone by the fourth round's code stored ``created_at`` as
``2026-11-26 05:30:00.123456+00:00`` (the driver's own datetime text), every other row as
``2026-11-26 05:30:00.123456``; both read back equal, but ``since``/``until`` filters compare
the text. Rewrite the former in the latter form. PostgreSQL stores a timestamp: nothing to do.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The canonical JSON (and so every leaf hash) carries the event's time on its own: this
# column is the index that time filters use, so rewriting its text changes no proof.
_NORMALISE = """
UPDATE audit_events SET created_at = CASE
    WHEN created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]+00:00'
        THEN substr(created_at, 1, 26)
    WHEN created_at GLOB
        '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]+00:00'
        THEN substr(created_at, 1, 19) || '.000000'
    ELSE created_at
END
WHERE created_at LIKE '%+00:00'
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_NORMALISE)


def downgrade() -> None:
    # The old text was a defect, not a format to restore: both forms read back as the same
    # instant, so going down leaves the normalised text.
    pass
