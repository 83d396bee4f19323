"""``tollhouse``: run the hub, manage its database, seed and tell the demo story."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connectors import cli as connect_cli
from hub.audit import cli as audit_cli
from hub.crypto import cli as keys_cli
from hub.policy import cli as policy_cli
from hub.registry import cli as partners_cli
from hub.settings import get_settings

app = typer.Typer(
    help="Tollhouse: the data-sharing hub of an auto-finance ecosystem.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The hub's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(policy_cli.app, name="policy")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(partners_cli.app, name="partners")
app.add_typer(
    connect_cli.app, name="connect", help="Partner side: pull and publish (the SDK's CLI)."
)
console = Console()

# --- consent (issue 4): the expiry sweep and webhook delivery ---------------------------------
consent_app = typer.Typer(help="Consents: record expiries and notify.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Deliver consent notifications.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
app.add_typer(webhooks_app, name="webhooks")


@consent_app.command("sweep")
def consent_sweep() -> None:
    """Record 'expired' for consents past their end and queue the notifications (decisions
    already treat them as expired; this makes it history). Safe to run from several hosts."""
    from hub.runtime import Runtime
    from hub.store.db import unit_of_work

    runtime = Runtime.build(get_settings())
    total = 0
    while True:
        with unit_of_work(runtime.session_factory) as session:
            swept = runtime.consents.sweep_expired(session)
        total += swept
        if swept == 0:
            break
    console.print(f"recorded {total} expired consent(s)")


@webhooks_app.command("deliver")
def webhooks_deliver(
    loop: Annotated[bool, typer.Option(help="Keep delivering until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds with --loop.")] = 5.0,
) -> None:
    """Deliver due consent notifications (retries with exponential backoff). Several processes
    may run this at once on PostgreSQL: rows are claimed with FOR UPDATE SKIP LOCKED."""
    import time

    from hub.runtime import Runtime

    runtime = Runtime.build(get_settings())
    while True:
        report = runtime.webhooks.deliver_due()
        if report.attempted or not loop:
            console.print(
                f"attempted {report.attempted}: delivered {report.delivered}, "
                f"retrying {report.retrying}, failed {report.failed}"
            )
        if not loop:
            return
        time.sleep(interval)


# --- end consent -----------------------------------------------------------------------------


def credentials_path() -> Path:
    return get_settings().data_dir / "demo-credentials.json"


def migrate() -> None:
    """Create the data directory (0700) on first run and bring the database up to date."""
    from hub.keyfiles import ensure_private_dir
    from hub.store.migrate import upgrade

    settings = get_settings()
    ensure_private_dir(settings.data_dir)
    upgrade(settings.resolved_database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to the configured database."""
    migrate()
    console.print("[green]database is at the latest revision[/green]")


@app.command()
def seed(
    force: Annotated[bool, typer.Option(help="Seed even if the demo is already there.")] = False,
) -> None:
    """Seed the demo ecosystem (partners, datasets, agreements, records, consents) once."""
    from hub.demo.ecosystem import is_seeded, seed_demo, write_credentials
    from hub.runtime import Runtime
    from hub.store.db import unit_of_work

    settings = get_settings()
    migrate()
    runtime = Runtime.build(settings)
    try:
        with unit_of_work(runtime.session_factory) as session:
            if is_seeded(session) and not force:
                console.print(f"demo ecosystem already seeded; credentials in {credentials_path()}")
                return
            summary = seed_demo(
                session,
                protector=runtime.protector,
                policies_dir=settings.policies_dir,
                seed=settings.demo_seed,
                consumers=settings.demo_consumers,
                receipts=runtime.consents.signer,
            )
    finally:
        runtime.engine.dispose()
    write_credentials(credentials_path(), summary.credentials, hub_url=settings.issuer)
    console.print(
        f"[green]seeded[/green] {summary.partners} partners, {summary.datasets} datasets, "
        f"{summary.agreements} agreements, {summary.records} records, "
        f"{summary.consents} consents; credentials in {credentials_path()}"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed the demo ecosystem if not seeded.")] = True,
) -> None:
    """Migrate, seed the demo (once), and serve the hub with uvicorn."""
    import uvicorn

    migrate()
    if demo:
        seed(force=False)
    console.print(
        f"[bold]Tollhouse[/bold] on http://{host}:{port}  ·  API docs: http://{host}:{port}/docs"
        f"  ·  demo partners: {credentials_path()}"
    )
    uvicorn.run(
        "hub.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


subjects_app = typer.Typer(help="Data subjects (the operator's tools).", no_args_is_help=True)
app.add_typer(subjects_app, name="subjects")


@subjects_app.command("erase")
def erase(
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
    id_number: Annotated[str | None, typer.Option(help="PRC identity number.")] = None,
    mobile: Annotated[str | None, typer.Option(help="Mobile number.")] = None,
    vin: Annotated[str | None, typer.Option(help="VIN of the subject's vehicle.")] = None,
    email: Annotated[
        str | None, typer.Option(help="E-mail address (compared case-insensitively).")
    ] = None,
) -> None:
    """Erase a subject by crypto-shredding their data key and end their live consents (the
    recipients are notified); the erasure is audited."""
    from hub.errors import NotFoundError
    from hub.records.erasure import erase_subject
    from hub.records.service import IDENTIFIER_VALIDATORS
    from hub.runtime import Runtime
    from hub.store.db import unit_of_work

    found = {"id_number": id_number, "mobile": mobile, "vin": vin, "email": email}
    identifiers = {kind: value for kind, value in found.items() if value}
    if not identifiers:
        raise typer.BadParameter("name the subject by --id-number, --mobile, --vin or --email")
    for kind, value in identifiers.items():
        if not IDENTIFIER_VALIDATORS[kind](value):
            option = "--" + kind.replace("_", "-")
            raise typer.BadParameter(f"{option} is malformed", param_hint=option)
    runtime = Runtime.build(get_settings())
    try:
        with unit_of_work(runtime.session_factory) as session:
            erasure = erase_subject(
                session,
                protector=runtime.protector,
                consents=runtime.consents,
                identifiers=identifiers,
                actor="operator:cli",
                reason=reason,
            )
    except NotFoundError:
        console.print("[red]no data subject with these identifiers[/red]")
        raise typer.Exit(1) from None
    finally:
        runtime.engine.dispose()
    state = "erased" if erasure.erased_now else "was already erased"
    console.print(f"subject {erasure.subject} {state}; their records can no longer be read")
    if erasure.consents_revoked or erasure.requests_denied:
        console.print(
            f"{erasure.consents_revoked} consent(s) revoked (their recipients are told to delete "
            f"what they hold), {erasure.requests_denied} pending request(s) denied"
        )


@app.command()
def demo(
    hub_url: Annotated[str | None, typer.Option(help="Base URL of the running hub.")] = None,
) -> None:
    """Tell the story against a running hub, over HTTP, as the partners would."""
    from hub.demo.story import run_story

    run_story(hub_url=hub_url or get_settings().issuer, console=console)


if __name__ == "__main__":
    app()
