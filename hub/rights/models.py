"""Rights requests and their append-only status history.

A correction's proposed value and the consumer's note are personal data: they are sealed with
the subject's data key (like record fields), so erasing the subject makes them unreadable too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.store.base import Base, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class RightsKind(StrEnum):
    CORRECTION = "correction"
    ERASURE = "erasure"


class RightsStatus(StrEnum):
    REQUESTED = "requested"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


#: Statuses from which a request can still move.
OPEN_STATUSES = (RightsStatus.REQUESTED, RightsStatus.IN_PROGRESS)


class RightsRequest(Base):
    """One request of a consumer: a correction (routed to the record's provider) or an erasure."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        Index("ix_rights_requests_provider_status", "provider_id", "status"),
        Index("ix_rights_requests_subject_created", "subject_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(ForeignKey("data_subjects.id"))
    status: Mapped[str] = mapped_column(String(16), default=RightsStatus.REQUESTED)
    #: Corrections: the partner that provides the record, its dataset, record and field.
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    record_key: Mapped[str | None] = mapped_column(String(128))
    field: Mapped[str | None] = mapped_column(String(128))
    #: ``{"value": token, "note": token}``, sealed with the subject's data key.
    sealed: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    events: Mapped[list[RightsRequestEvent]] = relationship(
        order_by="RightsRequestEvent.seq", lazy="selectin"
    )


class RightsRequestEvent(Base):
    """Append-only: who moved a request to which status, when and why."""

    __tablename__ = "rights_request_events"
    __table_args__ = (
        UniqueConstraint("request_id", "seq", name="uq_rights_request_events_request_seq"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("rights_requests.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    #: ``consumer``, ``partner:<id>`` or ``hub``.
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
