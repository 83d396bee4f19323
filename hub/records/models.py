"""Tables for data subjects, their blind-indexed identifiers, and published records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, OpaqueJSONDocument, new_id, utcnow


class DataSubject(Base):
    """A consumer the hub holds data about. Identifiers are stored only as blind indexes."""

    __tablename__ = "data_subjects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("sub"))
    jurisdiction: Mapped[str] = mapped_column(String(2), default="CN")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubjectIdentifier(Base):
    """A keyed HMAC of a normalised identifier (ID number, mobile, VIN...) pointing at a subject."""

    __tablename__ = "subject_identifiers"
    __table_args__ = (
        UniqueConstraint("kind", "digest", name="uq_subject_identifiers_kind_digest"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subject_id: Mapped[str] = mapped_column(ForeignKey("data_subjects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(128))


class Record(Base):
    """The latest version of one record of a dataset; ``sealed`` holds one ciphertext per field.

    ``occurred_at`` is the one field value stored in clear besides the key and version: the
    release pipeline checks it against a consent's data range without decrypting anything."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("dataset_id", "record_key", name="uq_records_dataset_key"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    record_key: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    subject_id: Mapped[str] = mapped_column(ForeignKey("data_subjects.id"), index=True)
    content_digest: Mapped[str] = mapped_column(String(128))
    sealed: Mapped[dict[str, Any]] = mapped_column(OpaqueJSONDocument())
    #: The record's data time: its dataset's ``x-data-time`` field at publish, in UTC (a date
    #: is midnight UTC). ``None`` when the dataset names none or the record leaves it empty.
    occurred_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
