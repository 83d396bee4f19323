"""Identity lookups (finding a consumer by ID number, mobile, VIN or e-mail address):
placeholders are refused, and each partner may look up only so many distinct identifiers per
window.

Bulk enumeration (walking ID numbers or VINs to learn who is known to the hub) shows as many
distinct identifiers; the same identifier looked up again does not count twice. The window is
fixed (aligned to multiples of its length) and kept in the database, so the limit holds across
processes and hosts.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from typing import cast

from sqlalchemy import Engine, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.ratelimit.errors import RateLimitedError
from hub.ratelimit.models import IdentityLookup

_TABLE = cast(Table, IdentityLookup.__table__)

#: Published sample values (standards' worked examples, operators' service numbers, values
#: that pass a check digit by construction) that test scripts and scrapers send.
WELL_KNOWN_TEST_VALUES: dict[str, frozenset[str]] = {
    "id_number": frozenset(
        {
            "11010519491231002X",  # GB 11643's worked example
            "110105194912310021",
            "110101199003077777",
            "123456789012345678",
        }
    ),
    "mobile": frozenset(
        {"13800138000", "13800000000", "12345678901", "13912345678", "13888888888", "13000000000"}
    ),
    "vin": frozenset({"11111111111111111", "1M8GDM9AXKP042788", "12345678901234567"}),
}
_RUN = re.compile(r"(.)\1{7,}")  # one character eight or more times in a row
_SEQUENCES = ("123456789", "987654321", "012345678", "876543210", "ABCDEFGH")


#: Top-level domains reserved for tests and documentation (RFC 2606, RFC 6761): no mailbox there
#: belongs to a consumer.
RESERVED_EMAIL_TLDS: frozenset[str] = frozenset({"example", "invalid", "test", "localhost"})
#: Domains reserved for documentation (RFC 2606) and domains that stand in for "some domain" in
#: forms and test scripts; subdomains count too (``mail.example.com``).
PLACEHOLDER_EMAIL_DOMAINS: frozenset[str] = frozenset(
    {"example.com", "example.net", "example.org", "test.com", "test.cn", "domain.com", "fake.com"}
)
#: Local parts (before any ``+tag``, optionally followed by digits: ``test1``) that name nobody.
_PLACEHOLDER_LOCAL = re.compile(
    r"(?:test(?:er|ing)?|dummy|fake|sample|example|placeholder|null|none|nobody|no[-_.]?reply"
    r"|foo(?:bar)?|asdf|qwerty|user(?:name)?|e?mail|someone|anonymous|x{3,})[0-9]*"
)


def is_placeholder_email(value: str) -> bool:
    """An address no consumer has: a domain reserved for tests and documentation (``.example``,
    ``.invalid``, ``.test``, ``.localhost``, ``example.com``/``.net``/``.org``) or a well-known
    stand-in (``test.com``, ``domain.com``), or a local part such as ``test``, ``test1``,
    ``noreply``, ``user``, one repeated character (``aaa``), a long run or a counting sequence
    (``123456789``). A malformed address is not a placeholder (the lookup answers 422 for it)."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).lower()
    if text.count("@") != 1:
        return False
    local, domain = text.split("@")
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if not local or not domain:
        return False
    if domain.rsplit(".", 1)[-1] in RESERVED_EMAIL_TLDS or any(
        domain == d or domain.endswith("." + d) for d in PLACEHOLDER_EMAIL_DOMAINS
    ):
        return True
    if _PLACEHOLDER_LOCAL.fullmatch(local):
        return True
    if len(local) >= 3 and len(set(local)) == 1:
        return True
    return bool(_RUN.search(local)) or any(s in local for s in _SEQUENCES)


def _normalized(kind: str, value: str) -> str:
    text = re.sub(r"[\s\-]", "", value).upper()
    if kind == "mobile":
        text = re.sub(r"^(\+?86)(?=1\d{10}$)", "", text)
    return text


def is_placeholder(kind: str, value: str) -> bool:
    """All zeros, one repeated character, a long run of one digit, a counting sequence, nearly all
    one character (``11000000000000000X``, ``LFV00000000000000``; a mobile number's eight digits
    after the carrier prefix are held to seven of eight), or a well-known test value; for e-mail
    addresses, :func:`is_placeholder_email`. The one rule for partners' and regulators' lookups."""
    if kind == "email":
        return is_placeholder_email(value)
    text = _normalized(kind, value)
    if not text:
        return False
    core = text[:-1] if kind == "id_number" and len(text) == 18 else text
    if len(core) >= 6 and len(set(core)) == 1:  # shorter is malformed, not a placeholder
        return True
    if _RUN.search(text) or any(s in text for s in _SEQUENCES):
        return True
    if text in WELL_KNOWN_TEST_VALUES.get(kind, frozenset()):
        return True
    body = text[3:] if kind == "mobile" and len(text) == 11 else text  # after 138, 139...
    if len(body) < 6:
        return False
    most = max(body.count(c) for c in set(body))
    return most >= len(body) - (1 if kind == "mobile" else 3)


class LookupVelocityError(RateLimitedError):
    slug = "lookup-velocity-exceeded"
    title = "Too many distinct identity lookups"


class LookupGuard:
    """Counts the distinct identifiers (blind-index digests) each partner looked up per window."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_distinct: int,
        window_seconds: int,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_distinct = max_distinct
        self.window_seconds = max(1, window_seconds)
        self.enabled = enabled
        self.clock = clock

    def record(
        self,
        session: Session,
        partner_id: str,
        digests: Iterable[str],
        *,
        limit: int | None = None,
    ) -> None:
        """Count these lookups in the request's session and commit them at once (a lookup
        that then answers 404 still counts), or raise :class:`LookupVelocityError` (a refused
        lookup is not counted)."""
        rows = sorted(set(digests))
        if not self.enabled or not rows:
            return
        cap = self.max_distinct if limit is None else limit
        now = self.clock()
        window = int(now // self.window_seconds) * self.window_seconds
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        with session.begin_nested():  # leaving by the exception rolls the insert back
            connection = session.connection()
            connection.execute(
                insert(_TABLE)
                .values(
                    [{"partner_id": partner_id, "window_start": window, "digest": d} for d in rows]
                )
                .on_conflict_do_nothing()
            )
            count = connection.scalar(
                select(func.count())
                .select_from(_TABLE)
                .where(_TABLE.c.partner_id == partner_id, _TABLE.c.window_start == window)
            )
            if (count or 0) > cap:
                raise LookupVelocityError(
                    f"More than {cap} distinct identifiers looked up in "
                    f"{self.window_seconds} s; retry later.",
                    retry_after=window + self.window_seconds - now,
                )
            connection.execute(
                delete(_TABLE).where(
                    _TABLE.c.partner_id == partner_id, _TABLE.c.window_start < window
                )
            )
        session.commit()
