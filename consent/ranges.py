"""A consent's data range (``data_from`` / ``data_until``), enforced at release time.

A consent may limit the data it covers to what was produced in ``[data_from, data_until)``;
without ``data_until`` the range runs to the consent's ``expires_at`` (as
:func:`consent.service.validate_terms` checks it). A record's data time is its ``occurred_at``:
the value of its dataset's ``x-data-time`` field, copied in clear at publish
(:mod:`hub.records.service`). The release pipeline withholds a record outside the range with
:data:`OUTSIDE_DATA_RANGE`, and a record whose data time is unknown (its dataset names no data
time, the record left it empty, or it was stored before the hub kept one) with
:data:`DATA_TIME_UNKNOWN`: a range is a promise about which data leaves, so it fails closed.

Kept out of the policy input: the policy's decision is cached per consent state, and a check
per record would make it per record. Consents without a range cost the pipeline one ``is None``
test per record; a page none of whose consents has a range reads no data time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: The reason a record is withheld when its data time lies outside its consent's data range.
OUTSIDE_DATA_RANGE = "consent.outside_data_range"
#: The reason a record is withheld when its consent has a data range and its data time is unknown.
DATA_TIME_UNKNOWN = "consent.data_time_unknown"


@dataclass(frozen=True, slots=True)
class DataRange:
    """The half-open interval ``[start, end)`` of data times a consent covers (UTC-aware)."""

    start: datetime
    end: datetime

    @classmethod
    def of(
        cls, data_from: datetime | None, data_until: datetime | None, expires_at: datetime | None
    ) -> DataRange | None:
        """A consent's range, or ``None`` when it has none (``data_from`` not set)."""
        if data_from is None:
            return None
        end = data_until if data_until is not None else expires_at
        if end is None:  # never stored so (expires_at is required); an open range covers nothing
            end = data_from
        return cls(data_from, end)

    def withheld_reason(self, occurred_at: datetime | None) -> str | None:
        """Why a record with this data time is withheld, or ``None`` when the range covers it."""
        if occurred_at is None:
            return DATA_TIME_UNKNOWN
        if self.start <= occurred_at < self.end:
            return None
        return OUTSIDE_DATA_RANGE

    def view(self) -> dict[str, object]:
        """The range as the explain endpoint shows it."""
        return {"data_from": self.start.isoformat(), "data_until": self.end.isoformat()}
