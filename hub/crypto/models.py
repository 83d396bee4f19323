"""Tables of field protection: one wrapped data key per data subject."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow

__all__ = ["SubjectKey"]


class SubjectKey(Base):
    """A data subject's 32-byte data key, wrapped (AES-256-GCM) under KEK ``kek_version``.

    Crypto-shredding sets ``shredded_at`` and replaces ``wrapped_key`` with NULL: every field sealed
    under the key is unreadable in the live database and in every backup taken afterwards. A
    backup taken *before* the erasure still holds the wrapped key; it becomes unreadable too once
    the KEK versions it was wrapped under are rotated away and retired (``rotate_kek`` ->
    ``rewrap_all`` -> ``retire_unused_versions``), so schedule a rotation after erasures and keep
    the keyring out of database backups.
    """

    __tablename__ = "subject_keys"
    __table_args__ = (
        CheckConstraint(
            "(shredded_at IS NULL AND wrapped_key IS NOT NULL)"
            " OR (shredded_at IS NOT NULL AND wrapped_key IS NULL)",
            name="shred_state",
        ),
        Index("ix_subject_keys_kek_version", "kek_version"),
    )

    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kek_version: Mapped[int]
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        state = "shredded" if self.shredded_at is not None else f"kek_version={self.kek_version}"
        return f"SubjectKey(subject_id={self.subject_id!r}, {state})"
