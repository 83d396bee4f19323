"""Everything a hub process builds once: database, keys, policy engine, field protection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consent.receipts import ReceiptSigner
from consent.service import ConsentService
from consent.settings import WebhookSettings
from consent.taxonomy import Taxonomy
from consent.tokens import ConsumerTokens
from consent.webhooks import WebhookDispatcher
from hub.audit import LogSigner, append_event, load_log_signer
from hub.auth.keys import SigningKeys
from hub.auth.server import HubAuthorizationServer
from hub.auth.tokens import AccessTokenVerifier
from hub.crypto import FieldProtector, LocalKeyring
from hub.deid.guard import get_guard
from hub.keyfiles import ensure_private_dir
from hub.policy import (
    CachedPolicyEngine,
    DecisionCache,
    OpaPolicyEngine,
    PolicyEngine,
    PolicyStore,
)
from hub.ratelimit import LookupGuard, RateLimiter, TokenEndpointLimiter
from hub.registry import service as registry
from hub.release.cursor import CursorCodec
from hub.release.obligations import ObligationApplier
from hub.release.pipeline import ReleaseGates
from hub.settings import Settings
from hub.store.db import make_engine, make_session_factory


def _partner_names(session: Session, ids: Sequence[str]) -> dict[str, str]:
    return {pid: p.name for pid, p in registry.partners_by_id(session, ids).items()}


SCOPES = ["records:publish", "records:pull", "audit:read", "admin"]

Explainer = PolicyStore | OpaPolicyEngine


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    signing_keys: SigningKeys
    authorization_server: HubAuthorizationServer
    token_verifier: AccessTokenVerifier
    policy: PolicyEngine
    #: The engine that explains decisions; for the embedded engine also the one that reloads.
    explainer: Explainer
    protector: FieldProtector
    gates: ReleaseGates
    # consent (issue 4): the consent service, consumer tokens and webhook delivery
    consents: ConsentService
    consumer_tokens: ConsumerTokens
    webhook_settings: WebhookSettings
    webhooks: WebhookDispatcher
    # audit (issue 13): the log's Ed25519 key (keys_dir/audit-log.pem) that signs tree heads
    audit_signer: LogSigner
    # hardening (issue 12): per-partner rate limits and identity-lookup velocity (database-kept)
    rate_limiter: RateLimiter
    lookup_guard: LookupGuard

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        ensure_private_dir(settings.data_dir)
        ensure_private_dir(settings.keys_dir)
        engine = make_engine(settings.resolved_database_url)
        session_factory = make_session_factory(engine)
        signing_keys = SigningKeys(settings.keys_dir)
        rate_limiter = RateLimiter(
            engine, enabled=settings.rate_limits_enabled, lease=settings.rate_limit_lease
        )
        authorization_server = HubAuthorizationServer(
            session_factory=session_factory,
            signing_keys=signing_keys,
            issuer=settings.issuer,
            token_ttl_seconds=settings.access_token_ttl_seconds,
            scopes_supported=SCOPES,
            token_limiter=TokenEndpointLimiter(
                rate_limiter, token_limit=settings.rate_limit("token")
            ),
        )
        verifier = AccessTokenVerifier(signing_keys=signing_keys, issuer=settings.issuer)
        explainer: Explainer
        if settings.policy_engine == "embedded":
            # A store, so that `tollhouse policy reload` can swap in validated policies; the
            # cache is keyed by policy revision, so a reload never serves stale decisions.
            explainer = PolicyStore(settings.policies_dir)
        else:
            explainer = OpaPolicyEngine(settings.opa_url)
        policy = CachedPolicyEngine(explainer, DecisionCache())
        protector = FieldProtector(LocalKeyring(settings.data_dir))
        gates = ReleaseGates(
            policy=policy,
            protector=protector,
            cursors=CursorCodec.from_keys_dir(settings.keys_dir),
            obligations=ObligationApplier(protector),
            guard=get_guard(),
        )
        webhook_settings = WebhookSettings()
        consents = ConsentService(
            taxonomy=Taxonomy.load(settings.policies_dir),
            signer=ReceiptSigner(signing_keys, issuer=settings.issuer),
            audit=append_event,
            directory=_partner_names,
            pseudonyms=protector.pseudonym,
        )
        audit_signer = load_log_signer(settings.keys_dir, settings.issuer)
        return cls(
            consents=consents,
            consumer_tokens=ConsumerTokens(signing_keys, issuer=settings.issuer),
            webhook_settings=webhook_settings,
            webhooks=WebhookDispatcher(
                session_factory=session_factory, keys=signing_keys, settings=webhook_settings
            ),
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            signing_keys=signing_keys,
            authorization_server=authorization_server,
            token_verifier=verifier,
            policy=policy,
            explainer=explainer,
            protector=protector,
            gates=gates,
            audit_signer=audit_signer,
            rate_limiter=rate_limiter,
            lookup_guard=LookupGuard(
                engine,
                max_distinct=settings.lookup_velocity_max,
                window_seconds=settings.lookup_velocity_window_seconds,
                enabled=settings.rate_limits_enabled,
            ),
        )
