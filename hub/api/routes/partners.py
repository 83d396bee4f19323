"""The hub operator's partner registry (scope ``admin``): onboarding, credentials, keys,
suspension."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from hub.api.deps import RuntimeDep, SessionDep, require_scope
from hub.api.responses import json_response
from hub.auth.tokens import AuthenticatedPartner
from hub.registry import service as registry
from hub.registry.models import Role
from hub.registry.schemas import (
    CredentialsIssued,
    DPoPSetting,
    KeysBody,
    PartnerCreate,
    PartnerEventList,
    PartnerEventPublic,
    PartnerList,
    PartnerPublic,
    ReasonBody,
    SecretList,
    SecretPublic,
    SecretRotation,
)

router = APIRouter(prefix="/v1/partners", tags=["partners"])

Admin = Annotated[AuthenticatedPartner, Depends(require_scope("admin"))]
PartnerId = Annotated[str, Path(max_length=64, description="A partner id (`ptn_...`).")]


def _actor(caller: AuthenticatedPartner) -> str:
    return f"operator:{caller.partner_id}"


@router.post(
    "",
    status_code=201,
    response_model=CredentialsIssued,
    summary="Register a partner and issue its first client secret (shown once)",
)
def register(
    body: PartnerCreate, caller: Admin, session: SessionDep, runtime: RuntimeDep
) -> Response:
    issued = registry.register_partner(
        session,
        name=body.name,
        legal_name=body.legal_name,
        registration_id=body.registration_id,
        role=Role(body.role),
        jurisdiction=body.jurisdiction,
        contact=body.contact.model_dump(exclude_none=True),
        webhook_url=body.webhook_url,
        client_id=body.client_id,
        actor=_actor(caller),
        allow_private_networks=runtime.authorization_server.jwks_fetcher.settings.allow_private_networks,
    )
    partner = registry.get_partner(session, partner_id=issued.partner_id)
    return json_response(
        CredentialsIssued(
            partner=PartnerPublic.of(partner),
            client_id=issued.client_id,
            client_secret=issued.client_secret,
            secret_id=issued.secret_id,
        ),
        status_code=201,
    )


@router.get("", response_model=PartnerList, summary="Every partner")
def list_partners(
    caller: Admin,
    session: SessionDep,
    role: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> PartnerList:
    rows = registry.list_partners(session, role=role, status=status)
    return PartnerList(items=[PartnerPublic.of(p) for p in rows])


@router.get("/{partner_id}", response_model=PartnerPublic, summary="One partner")
def get_partner(partner_id: PartnerId, caller: Admin, session: SessionDep) -> PartnerPublic:
    return PartnerPublic.of(registry.get_partner(session, partner_id=partner_id))


@router.get("/{partner_id}/events", response_model=PartnerEventList, summary="Its history")
def partner_events(partner_id: PartnerId, caller: Admin, session: SessionDep) -> PartnerEventList:
    rows = registry.partner_events(session, partner_id=partner_id)
    return PartnerEventList(items=[PartnerEventPublic.of(e) for e in rows])


@router.post(
    "/{partner_id}/secrets",
    status_code=201,
    response_model=CredentialsIssued,
    summary="Rotate the client secret",
    description=(
        "Issues a new secret (shown once). The current secrets keep working for "
        "`grace_seconds`, then stop; 0 stops them at once."
    ),
)
def rotate_secret(
    partner_id: PartnerId,
    body: SecretRotation,
    caller: Admin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    issued = registry.rotate_client_secret(
        session,
        partner_id=partner_id,
        grace_seconds=body.grace_seconds,
        max_grace_seconds=runtime.authorization_server.jwks_fetcher.settings.max_secret_grace_seconds,
        actor=_actor(caller),
        reason=body.reason,
    )
    partner = registry.get_partner(session, partner_id=partner_id)
    return json_response(
        CredentialsIssued(
            partner=PartnerPublic.of(partner),
            client_id=issued.client_id,
            client_secret=issued.client_secret,
            secret_id=issued.secret_id,
            previous_secrets_expire_at=issued.previous_expire_at,
        ),
        status_code=201,
    )


@router.get("/{partner_id}/secrets", response_model=SecretList, summary="Its secrets (no values)")
def list_secrets(partner_id: PartnerId, caller: Admin, session: SessionDep) -> SecretList:
    rows = registry.secrets_of_partner(session, partner_id=partner_id)
    return SecretList(items=[SecretPublic.model_validate(s) for s in rows])


@router.put(
    "/{partner_id}/keys",
    response_model=PartnerPublic,
    summary="Register public keys: a JWKS document or a JWKS URL",
    description=(
        "A JWKS URL must be https and resolve to public addresses only; it is fetched now "
        "(and refused if it does not serve a usable public key set), cached, and refetched "
        "when an assertion names an unknown `kid`."
    ),
)
def put_keys(
    partner_id: PartnerId, body: KeysBody, caller: Admin, session: SessionDep, runtime: RuntimeDep
) -> PartnerPublic:
    partner = registry.set_partner_keys(
        session,
        partner_id=partner_id,
        fetcher=runtime.authorization_server.jwks_fetcher,
        actor=_actor(caller),
        jwks=body.jwks,
        jwks_uri=body.jwks_uri,
    )
    return PartnerPublic.of(partner)


@router.put(
    "/{partner_id}/dpop",
    response_model=PartnerPublic,
    summary="Require DPoP-bound access tokens of a partner (or stop requiring them)",
    description=(
        "With `required: true` the token endpoint refuses the partner a token without a DPoP "
        "proof (RFC 9449), and its bearer tokens already issued stop working."
    ),
)
def put_dpop(
    partner_id: PartnerId, body: DPoPSetting, caller: Admin, session: SessionDep
) -> PartnerPublic:
    partner = registry.set_dpop_required(
        session, partner_id=partner_id, required=body.required, actor=_actor(caller),
        reason=body.reason,
    )  # fmt: skip
    return PartnerPublic.of(partner)


@router.post(
    "/{partner_id}/suspension",
    response_model=PartnerPublic,
    summary="Suspend a partner: its tokens stop working at once",
)
def suspend(
    partner_id: PartnerId, body: ReasonBody, caller: Admin, session: SessionDep
) -> PartnerPublic:
    partner = registry.suspend_partner(
        session, partner_id=partner_id, actor=_actor(caller), reason=body.reason
    )
    return PartnerPublic.of(partner)


@router.post(
    "/{partner_id}/reinstatement",
    response_model=PartnerPublic,
    summary="Reinstate a suspended partner (tokens from before stay invalid)",
)
def reinstate(
    partner_id: PartnerId, body: ReasonBody, caller: Admin, session: SessionDep
) -> PartnerPublic:
    partner = registry.reinstate_partner(
        session, partner_id=partner_id, actor=_actor(caller), reason=body.reason
    )
    return PartnerPublic.of(partner)
