"""DPoP (RFC 9449): access tokens bound to a key the partner holds, proven on every request.

A DPoP proof is a JWT (``typ: dpop+jwt``) signed with the partner's key, the public half in its
header (``jwk``). It names the request it was made for (``htm``, ``htu``), its time (``iat``),
a unique id (``jti``) and, on resource requests, the hash of the access token (``ath``). The
token endpoint binds the token it issues to the key's RFC 7638 thumbprint (``cnf.jkt``); a
resource request must present the token as ``Authorization: DPoP <token>`` with a fresh proof
signed by that very key. A stolen token is useless without the private key.

Proof ids are single-use across every hub process: they go to the same table as client
assertion ids (``used_assertions``), under the client id ``dpop:<thumbprint>``, committed before
the request goes on, so a request that fails later cannot take its proof's id back with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from joserfc.jwk import import_key
from joserfc.jws import JWSRegistry
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.auth.algorithms import FAPI_ALGORITHMS, MIN_RSA_BITS, key_fits
from hub.auth.models import UsedAssertion
from hub.errors import HubError
from hub.store.base import utcnow

PROOF_TYPE = "dpop+jwt"
TOKEN_TYPE = "DPoP"
#: A proof is accepted this long after its ``iat`` (and this much clock skew ahead).
MAX_AGE_SECONDS = 60
MAX_FUTURE_SKEW_SECONDS = 10
MAX_PROOF_CHARS = 8192
MAX_JTI_CHARS = 200
JTI_NAMESPACE = "dpop:"
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_KEY_TYPES = {"PS256": "RSA", "ES256": "EC", "Ed25519": "OKP", "EdDSA": "OKP"}


def challenge(error: str) -> str:
    """The ``WWW-Authenticate`` value of a refused DPoP request."""
    return f'DPoP algs="{" ".join(FAPI_ALGORITHMS)}", error="{error}"'


class DPoPProofError(HubError):
    """A missing, malformed, mismatched, stale or replayed proof on a resource request."""

    slug = "invalid-dpop-proof"
    status = 401
    title = "Invalid DPoP proof"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge("invalid_dpop_proof")})


class DPoPTokenError(HubError):
    """A token presented under the wrong scheme: a key-bound token as Bearer, or the reverse."""

    slug = "unauthorized"
    status = 401
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge("invalid_token")})


class InvalidProof(ValueError):
    """Why a proof was refused (the callers turn it into their own error shape)."""


@dataclass(frozen=True, slots=True)
class Proof:
    """A verified proof: the thumbprint of its key and its single-use id."""

    jkt: str
    jti: str
    iat: float

    @property
    def expires_at(self) -> datetime:
        """How long the id must be remembered: as long as the proof could be accepted."""
        return datetime.fromtimestamp(self.iat + MAX_AGE_SECONDS + MAX_FUTURE_SKEW_SECONDS, UTC)


def normalize_url(url: str) -> str | None:
    """``scheme://host[:port]/path``: lower-case scheme and host, default port dropped, path
    percent-decoded, query and fragment dropped (RFC 9449 4.3). None if not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{unquote(parts.path) or '/'}"


def access_token_hash(token: str) -> str:
    """``ath``: base64url (no padding) of the SHA-256 of the access token's ASCII text."""
    digest = hashlib.sha256(token.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _b64decode(segment: str) -> bytes:
    if not segment or len(segment) % 4 == 1:
        raise InvalidProof("not a compact JWS")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidProof("not a compact JWS") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidProof("not a JSON object") from exc
    if not isinstance(value, dict):
        raise InvalidProof("not a JSON object")
    return value


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
) -> Proof:
    """Check a proof's form, signature and claims for a request to ``method`` ``url``.

    The id is not checked here (see :func:`remember_proof`). Raises :class:`InvalidProof`.
    """
    if len(proof) > MAX_PROOF_CHARS or not proof.isascii():
        raise InvalidProof("the proof is too long or not ASCII")
    segments = proof.split(".")
    if len(segments) != 3:
        raise InvalidProof("the proof is not a compact JWS")
    header = _json_object(_b64decode(segments[0]))
    claims = _json_object(_b64decode(segments[1]))
    signature = _b64decode(segments[2])
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof("typ must be dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in FAPI_ALGORITHMS:
        raise InvalidProof("alg must be one of " + ", ".join(FAPI_ALGORITHMS))
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
        raise InvalidProof("jwk must be a public key")
    # Checked before the import, which would only warn about a short RSA modulus.
    if jwk.get("kty") != _KEY_TYPES[alg]:
        raise InvalidProof(f"jwk is not a key for {alg}")
    modulus = jwk.get("n")
    if alg == "PS256" and (
        not isinstance(modulus, str) or len(_b64decode(modulus).lstrip(b"\0")) * 8 < MIN_RSA_BITS
    ):
        raise InvalidProof(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    try:
        key = import_key(jwk)
    except Exception as exc:  # anything in an untrusted key is the caller's fault
        raise InvalidProof("jwk is not a usable key") from exc
    if not key_fits(alg, key):
        raise InvalidProof(f"jwk is not a key for {alg}")
    # The algorithm's model is used directly: joserfc's registry would warn on 'EdDSA' (RFC 9864
    # renamed it 'Ed25519'), and alg and key were matched above.
    model = JWSRegistry.algorithms[alg]
    signing_input = f"{segments[0]}.{segments[1]}".encode()
    try:
        valid = model.verify(signing_input, signature, key)
    except Exception as exc:  # a malformed signature of an untrusted proof
        raise InvalidProof("bad signature") from exc
    if not valid:
        raise InvalidProof("bad signature")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise InvalidProof("jti is missing or too long")
    if claims.get("htm") != method.upper():
        raise InvalidProof("htm does not match the request method")
    htu = claims.get("htu")
    expected = normalize_url(url)
    if not isinstance(htu, str) or expected is None or normalize_url(htu) != expected:
        raise InvalidProof("htu does not match the request URL")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or not math.isfinite(iat):
        raise InvalidProof("iat is missing")
    if iat < now - MAX_AGE_SECONDS or iat > now + MAX_FUTURE_SKEW_SECONDS:
        raise InvalidProof("iat is outside the accepted window")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode(), access_token_hash(access_token).encode()
        ):
            raise InvalidProof("ath does not match the access token")
    return Proof(jkt=key.thumbprint(), jti=jti, iat=float(iat))


def remember_proof(session: Session, proof: Proof) -> bool:
    """Burn the proof's id for good before the request goes on; False on a replay.

    The id must stay recorded whatever the request does next. Kept in the request's own
    transaction, it went with any rollback after this check (a 4xx, a 5xx), and the same proof
    could be replayed within its window. So the id is inserted and the session committed at
    once, with what the session did before (on the resource side, only the token check's read
    of the partner); the request goes on in a new transaction. That is how ``hub.ratelimit``
    debits a bucket: no second pooled connection, no thread hop, and on SQLite (every
    transaction is ``BEGIN IMMEDIATE``) no second connection waiting for the write lock the
    request holds. A concurrent request with the same id waits for this commit (PostgreSQL: the
    primary key; SQLite: the write lock) and then fails on the primary key; a replay rolls the
    session back.
    """
    try:
        session.execute(
            insert(UsedAssertion).values(
                client_id=JTI_NAMESPACE + proof.jkt,
                jti=proof.jti,
                expires_at=proof.expires_at,
                used_at=utcnow(),
            )
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
