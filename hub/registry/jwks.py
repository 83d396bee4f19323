"""Partners' public keys: a JWKS document, or a JWKS URL the hub fetches.

Fetching: https only, the host resolved and every address checked (never loopback, link-local,
private or reserved, unless ``allow_private_networks`` for tests), a connection to the checked
address, no redirects, no proxies from the environment, a timeout and a size cap. The last good
document is cached in the partner's row (shared by every hub process), refetched when older
than ``jwks_cache_seconds``, or when an assertion names a ``kid`` the cache does not hold (at
most every ``jwks_min_refresh_seconds``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import FieldError
from hub.registry.errors import JwksFetchError, RegistryValidationError
from hub.registry.models import Partner
from hub.registry.netguard import Resolver, check_url, system_resolver
from hub.registry.settings import RegistrySettings
from hub.store.base import utcnow

log = logging.getLogger("tollhouse.registry.jwks")

MAX_KEYS = 20
#: Key types accepted for client assertions and encryption to the recipient.
ACCEPTED_KEY_TYPES = frozenset({"OKP", "EC", "RSA"})
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def validate_public_jwks(document: Any, *, field: str = "jwks") -> dict[str, Any]:
    """A usable public JWKS: a ``keys`` list of asymmetric public keys, no private parts."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise RegistryValidationError(
            "The key set is not a JWKS document.", [FieldError(field, "needs a 'keys' list")]
        )
    keys = document["keys"]
    if not keys or len(keys) > MAX_KEYS:
        raise RegistryValidationError(
            "The key set is empty or too large.",
            [FieldError(field, f"between 1 and {MAX_KEYS} keys")],
        )
    errors: list[FieldError] = []
    for i, key in enumerate(keys):
        if not isinstance(key, Mapping):
            errors.append(FieldError(f"{field}.keys[{i}]", "not a JWK"))
            continue
        if key.get("kty") not in ACCEPTED_KEY_TYPES:
            errors.append(FieldError(f"{field}.keys[{i}].kty", "must be OKP, EC or RSA"))
        if PRIVATE_MEMBERS & set(key):
            errors.append(FieldError(f"{field}.keys[{i}]", "private key material is refused"))
    if errors:
        raise RegistryValidationError("The key set is not usable.", errors)
    try:
        KeySet.import_key_set(dict(document))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise RegistryValidationError(
            "The key set does not parse.", [FieldError(field, "keys do not parse")]
        ) from exc
    return {"keys": [dict(k) for k in keys]}


def key_ids(document: Mapping[str, Any] | None) -> set[str]:
    if not document:
        return set()
    return {str(k.get("kid")) for k in document.get("keys", []) if isinstance(k, Mapping)}


class JwksFetcher:
    """Fetches JWKS documents from partners' URLs, safely."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings or RegistrySettings()
        self._transport = transport
        self._resolver = resolver
        self.fetches = 0

    def check(self, url: str) -> None:
        """The registration-time check: refuses unsafe URLs (raises :class:`UnsafeUrlError`)."""
        check_url(
            url,
            what="jwks_uri",
            allow_private=self.settings.allow_private_networks,
            resolver=self._resolver,
        )

    def fetch(self, url: str) -> dict[str, Any]:
        checked = check_url(
            url,
            what="jwks_uri",
            allow_private=self.settings.allow_private_networks,
            resolver=self._resolver,
        )
        self.fetches += 1
        limit = self.settings.jwks_max_bytes
        extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
        try:
            with (
                httpx.Client(
                    transport=self._transport,
                    timeout=self.settings.jwks_timeout_seconds,
                    follow_redirects=False,
                    trust_env=False,
                ) as client,
                client.stream(
                    "GET",
                    checked.pinned_url(),
                    headers={"Host": checked.host_header, "Accept": "application/json"},
                    extensions=extensions,
                ) as response,
            ):
                if response.status_code != 200:
                    raise JwksFetchError(f"the URL answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise JwksFetchError(f"the key set is larger than {limit} bytes")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise JwksFetchError(f"the key set is larger than {limit} bytes")
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"the URL could not be fetched ({type(exc).__name__})") from exc
        try:
            document = orjson.loads(bytes(body))
        except orjson.JSONDecodeError as exc:
            raise JwksFetchError("the URL did not answer JSON") from exc
        try:
            return validate_public_jwks(document, field="jwks_uri")
        except RegistryValidationError as exc:
            raise JwksFetchError("the URL did not answer a usable public JWKS") from exc


class PartnerKeyResolver:
    """The key set to verify a partner's client assertion with: the registered document, or
    the cached fetch of its JWKS URL, refreshed when stale or when the ``kid`` is unknown."""

    def __init__(self, *, session_factory: sessionmaker[Session], fetcher: JwksFetcher) -> None:
        self._sessions = session_factory
        self.fetcher = fetcher

    def document(
        self,
        *,
        partner_id: str,
        jwks: Mapping[str, Any] | None,
        jwks_uri: str | None,
        fetched_at: datetime | None,
        wanted_kid: str | None,
        now: datetime | None = None,
    ) -> Mapping[str, Any] | None:
        if not jwks_uri:
            return jwks
        now = now or utcnow()
        settings = self.fetcher.settings
        age = now - fetched_at if fetched_at else None
        stale = age is None or age > timedelta(seconds=settings.jwks_cache_seconds)
        unknown = wanted_kid is not None and wanted_kid not in key_ids(jwks)
        may_refresh = age is None or age >= timedelta(seconds=settings.jwks_min_refresh_seconds)
        if not stale and not (unknown and may_refresh):
            return jwks
        try:
            document = self.fetcher.fetch(jwks_uri)
        except (JwksFetchError, RegistryValidationError) as exc:
            # Keep the last good document: a partner's outage must not lock it out at once.
            log.warning("JWKS refresh failed for %s: %s", partner_id, exc.detail)
            return jwks
        with self._sessions() as session:
            partner = session.get(Partner, partner_id, with_for_update=True)
            if partner is not None and partner.jwks_uri == jwks_uri:
                partner.jwks = document
                partner.jwks_fetched_at = now
                session.commit()
        return document
