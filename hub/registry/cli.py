"""``tollhouse partners``: the operator's partner registry from the command line.

The same services as the admin API, on the configured database (``TOLLHOUSE_DATABASE_URL``).
Secrets are printed once and never stored in clear.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from hub.errors import HubError, ValidationFailedError
from hub.ratelimit.partners import set_partner_rate_limits
from hub.registry import service as registry
from hub.registry.jwks import JwksFetcher
from hub.registry.models import Role
from hub.registry.settings import RegistrySettings
from hub.settings import Settings, get_settings
from hub.store.db import make_engine, make_session_factory, unit_of_work

app = typer.Typer(help="The partner registry (operator).", no_args_is_help=True)
agreements_app = typer.Typer(help="Agreements across the ecosystem.", no_args_is_help=True)
app.add_typer(agreements_app, name="agreements")
console = Console()

#: Replaced in tests; the settings of the hub the CLI works on.
settings_provider: Callable[[], Settings] = get_settings


def _actor() -> str:
    return f"operator-cli:{getpass.getuser()}"


@contextmanager
def _session() -> Iterator[Session]:
    settings = settings_provider()
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    except HubError as exc:
        console.print(f"[red]{exc.title}:[/red] {exc.detail}")
        if isinstance(exc, ValidationFailedError):
            for error in exc.errors:
                console.print(f"  {error.field}: {error.message}")
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


@app.command("list")
def list_partners(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    status: Annotated[str | None, typer.Option(help="active or suspended.")] = None,
) -> None:
    """Every partner: id, client id, role, jurisdiction, status."""
    table = Table("id", "client id", "name", "role", "jur.", "status")
    with _session() as session:
        for p in registry.list_partners(session, role=role, status=status):
            table.add_row(p.id, p.client_id, p.name, p.role, p.jurisdiction, p.status)
    console.print(table)


@app.command()
def show(ref: Annotated[str, typer.Argument(help="Partner id or client id.")]) -> None:
    """One partner, with its secrets (metadata only) and history."""
    with _session() as session:
        p = registry.find_partner(session, ref=ref)
        _print_json(
            {
                "id": p.id, "client_id": p.client_id, "name": p.name,
                "legal_name": p.legal_name, "registration_id": p.registration_id,
                "role": p.role, "jurisdiction": p.jurisdiction, "status": p.status,
                "contact": p.contact, "webhook_url": p.webhook_url, "jwks_uri": p.jwks_uri,
                "dpop_required": p.dpop_required,
                "secrets": [
                    {"id": s.id, "created_at": s.created_at, "expires_at": s.expires_at}
                    for s in registry.secrets_of_partner(session, partner_id=p.id)
                ],
                "events": [
                    {"event": e.event, "actor": e.actor, "reason": e.reason, "at": e.at}
                    for e in registry.partner_events(session, partner_id=p.id)
                ],
            }
        )  # fmt: skip


@app.command()
def register(
    name: Annotated[str, typer.Option(help="Display name.")],
    legal_name: Annotated[str, typer.Option(help="Registered legal name.")],
    registration_id: Annotated[str, typer.Option(help="Unified social credit code or other.")],
    role: Annotated[Role, typer.Option(help="The partner's role.")],
    contact_name: Annotated[str, typer.Option(help="Who to contact.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2.")] = "CN",
    contact_email: Annotated[str | None, typer.Option()] = None,
    webhook_url: Annotated[str | None, typer.Option(help="https URL for notifications.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Defaults to a random id.")] = None,
) -> None:
    """Register a partner; prints its client id and secret once."""
    if role == Role.OPERATOR:
        console.print("[red]the operator client is not registered this way[/red]")
        raise typer.Exit(code=2)
    contact = {"name": contact_name, **({"email": contact_email} if contact_email else {})}
    with _session() as session:
        issued = registry.register_partner(
            session, name=name, legal_name=legal_name, registration_id=registration_id,
            role=role, jurisdiction=jurisdiction, contact=contact, webhook_url=webhook_url,
            client_id=client_id, actor=_actor(),
            allow_private_networks=RegistrySettings().allow_private_networks,
        )  # fmt: skip
    _print_json(
        {"partner_id": issued.partner_id, "client_id": issued.client_id,
         "client_secret": issued.client_secret}
    )  # fmt: skip


@app.command("rotate-secret")
def rotate_secret(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    grace_seconds: Annotated[int, typer.Option(help="Old secrets keep working this long.")] = 86400,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Issue a new client secret (printed once); the old ones stop after the grace period."""
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        issued = registry.rotate_client_secret(
            session, partner_id=partner.id, grace_seconds=grace_seconds,
            max_grace_seconds=RegistrySettings().max_secret_grace_seconds, actor=_actor(),
            reason=reason,
        )  # fmt: skip
    _print_json(
        {"client_id": issued.client_id, "client_secret": issued.client_secret,
         "previous_secrets_expire_at": issued.previous_expire_at}
    )  # fmt: skip


@app.command()
def keys(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    jwks_file: Annotated[Path | None, typer.Option(help="A public JWKS document.")] = None,
    jwks_uri: Annotated[str | None, typer.Option(help="An https JWKS URL (fetched now).")] = None,
) -> None:
    """Register a partner's public keys (a JWKS document or URL)."""
    if (jwks_file is None) == (jwks_uri is None):
        console.print("[red]give exactly one of --jwks-file or --jwks-uri[/red]")
        raise typer.Exit(code=2)
    document = json.loads(jwks_file.read_text()) if jwks_file else None
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        partner = registry.set_partner_keys(
            session, partner_id=partner.id, fetcher=JwksFetcher(), actor=_actor(),
            jwks=document, jwks_uri=jwks_uri,
        )  # fmt: skip
        kids = [k.get("kid") for k in (partner.jwks or {}).get("keys", [])]
    console.print(f"[green]keys registered[/green]: {kids}")


@app.command()
def dpop(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    required: Annotated[
        bool, typer.Option("--required/--optional", help="Require DPoP-bound tokens, or not.")
    ] = True,
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
) -> None:
    """Require DPoP-bound access tokens (RFC 9449) of a partner, or stop requiring them."""
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        registry.set_dpop_required(
            session, partner_id=partner.id, required=required, actor=_actor(), reason=reason
        )
    console.print(f"DPoP {'required' if required else 'optional'} for {ref}")


@app.command("rate-limits")
def rate_limits(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    limits: Annotated[
        str,
        typer.Option(
            "--set",
            help='JSON per route class, e.g. \'{"pull": {"per_minute": 1200, "burst": 200}}\'; '
            "'null' clears (the defaults apply again).",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
) -> None:
    """Set a partner's own rate limits (hardening, issue 12; docs/OPERATIONS.md)."""
    try:
        document = json.loads(limits)
    except ValueError as exc:
        raise typer.BadParameter("not JSON", param_hint="--set") from exc
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        set_partner_rate_limits(
            session, partner_id=partner.id, limits=document, actor=_actor(), reason=reason
        )
    console.print(f"rate limits of {ref}: {document}")


@app.command()
def suspend(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")],
) -> None:
    """Suspend a partner: its tokens stop working at once."""
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        registry.suspend_partner(session, partner_id=partner.id, actor=_actor(), reason=reason)
    console.print(f"[yellow]suspended[/yellow] {ref}")


@app.command()
def reinstate(
    ref: Annotated[str, typer.Argument(help="Partner id or client id.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")],
) -> None:
    """Reinstate a suspended partner (it needs new tokens)."""
    with _session() as session:
        partner = registry.find_partner(session, ref=ref)
        registry.reinstate_partner(session, partner_id=partner.id, actor=_actor(), reason=reason)
    console.print(f"[green]reinstated[/green] {ref}")


@agreements_app.command("list")
def list_agreements(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """Every agreement (the operator's view)."""
    table = Table("id", "dataset", "recipient", "purpose", "status", "valid until")
    operator = registry.Actor(partner_id="", operator=True, regulator=True)
    with _session() as session:
        for a in registry.list_agreements(session, actor=operator, status=status):
            table.add_row(a.id, a.dataset_id, a.recipient_id, a.purpose, a.status,
                          a.valid_until.isoformat())  # fmt: skip
    console.print(table)


@agreements_app.command()
def sweep() -> None:
    """Activate accepted agreements whose start date came; expire those past their end."""
    with _session() as session:
        report = registry.advance_agreements(session)
    console.print(f"activated {report.activated}, expired {report.expired}")


@agreements_app.command("attestations-due")
def attestations_due() -> None:
    """Ended agreements whose recipient owes a deletion attestation."""
    table = Table("agreement", "recipient", "status", "due since")
    with _session() as session:
        for a in registry.deletion_attestations_due(session):
            due = a.deletion_due_at.isoformat() if a.deletion_due_at else ""
            table.add_row(a.id, a.recipient_id, a.status, due)
    console.print(table)
