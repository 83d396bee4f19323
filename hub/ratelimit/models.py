"""Tables of rate and velocity limits, shared by every hub process through the database."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base


class RateLimitBucket(Base):
    """One token bucket per (partner, route class), kept as GCRA's theoretical arrival time:
    the bucket is full when ``tat <= now`` and empty when ``tat - now`` reaches the limit's
    tolerance. One float per bucket, updated by one upsert per request (or per lease)."""

    __tablename__ = "rate_limit_buckets"

    bucket_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    route_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Seconds since the epoch (hosts' clocks must agree, as for token lifetimes).
    tat: Mapped[float] = mapped_column(Double)


class IdentityLookup(Base):
    """The distinct identifiers (keyed blind indexes, never values) a partner looked up in a
    fixed window: the velocity limit counts these rows. Old windows are deleted as new ones
    start."""

    __tablename__ = "identity_lookups"

    partner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digest: Mapped[str] = mapped_column(String(128), primary_key=True)
