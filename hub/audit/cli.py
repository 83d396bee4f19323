"""``tollhouse audit``: sign heads, export, verify exports offline, print the verifier key, and
run a witness.

Exit codes: 0 success; 1 the check failed (a damaged export, a refused round, a bad key or
request); 2 a split view was detected by the witness (evidence in its state directory).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from hub.audit.checkpoint import LogSigner, WitnessSigner, load_log_signer
from hub.audit.errors import (
    AuditError,
    CheckpointError,
    SplitViewError,
    WitnessError,
)
from hub.audit.export import VerifyReport, plan_current_export, verify_export
from hub.audit.service import current_tree_head
from hub.audit.witness import WitnessState, resolve_key_text, run_witness
from hub.errors import HubError

app = typer.Typer(
    help="The tamper-evident audit log: heads, exports, offline verification, witnesses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_SPLIT_VIEW = 2


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {message}")
    return typer.Exit(code)


@contextmanager
def _hub_session() -> Iterator[tuple[Session, LogSigner]]:
    """A committed-on-success session on the configured database, and the log's signer."""
    from hub.settings import get_settings
    from hub.store.db import make_engine, make_session_factory, unit_of_work

    settings = get_settings()
    signer = load_log_signer(settings.keys_dir, settings.issuer)
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session, signer
    finally:
        engine.dispose()


def _b64(data: bytes | None) -> str:
    return "-" if data is None else base64.b64encode(data).decode()


@app.command("sign")
def sign() -> None:
    """Sign a tree head over every committed event (only if the log has grown) and print it."""
    try:
        with _hub_session() as (session, signer):
            head = current_tree_head(session, signer)
    except HubError as exc:
        raise _fail(exc.detail) from exc
    console.print(f"tree head: size [bold]{head.size}[/bold], root {_b64(head.root_hash)}")
    typer.echo(head.note(), nl=False)


@app.command("verifier-key")
def verifier_key() -> None:
    """Print the log's verifier key, which regulators and witnesses configure."""
    try:
        with _hub_session() as (_session, signer):
            key = signer.verifier_key
    except HubError as exc:
        raise _fail(exc.detail) from exc
    typer.echo(key)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSONL bundle.")],
    start: Annotated[int, typer.Option(min=0, help="First event index.")] = 0,
    end: Annotated[
        int | None, typer.Option(min=0, help="Index after the last event (default: all).")
    ] = None,
) -> None:
    """Export events [start, end) as a signed JSONL bundle (signs a head first if needed)."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with _hub_session() as (session, signer):
            plan = plan_current_export(session, signer, start, end)
            with tmp.open("wb") as f:
                for chunk in plan.chunks(session):
                    f.write(chunk)
        tmp.replace(out)
    except HubError as exc:
        tmp.unlink(missing_ok=True)
        raise _fail(exc.detail) from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _fail(f"cannot write {out}: {exc.strerror}") from exc
    console.print(
        f"exported events [{plan.start}, {plan.end}) to {out} against the signed head of size "
        f"{plan.head.size}"
    )


def _report_table(path: Path, report: VerifyReport) -> Table:
    table = Table(title=f"audit export {path.name}", show_header=False)
    table.add_column("check", style="bold")
    table.add_column("result")
    table.add_row("log", report.origin or "-")
    table.add_row("signed tree head", f"size {report.tree_size}, root {_b64(report.root_hash)}")
    table.add_row("range", f"[{report.start}, {report.end})")
    table.add_row("events checked", str(report.events_checked))
    table.add_row("signed heads checked", str(report.heads_checked))
    verdict = "[green]intact[/green]" if report.ok else "[red]DAMAGED[/red]"
    table.add_row("verdict", verdict)
    if report.first_bad_index is not None:
        table.add_row("first bad index", f"[red]{report.first_bad_index}[/red]")
    return table


@app.command("verify")
def verify(
    export_path: Annotated[
        Path, typer.Argument(metavar="EXPORT", help="A bundle from `tollhouse audit export`.")
    ],
    key: Annotated[
        str, typer.Option("--key", help="The log's verifier key, or a file holding it.")
    ],
) -> None:
    """Check an export offline: every leaf, the heads' signatures and the root.

    Exits 1 and names the first bad index if anything was changed, removed or reordered.
    """
    try:
        vkey = resolve_key_text(key)
    except WitnessError as exc:
        raise _fail(str(exc)) from exc
    try:
        report = verify_export(export_path, vkey)
    except FileNotFoundError as exc:
        raise _fail(f"no such file: {export_path}") from exc
    except (HubError, OSError) as exc:
        detail = exc.detail if isinstance(exc, HubError) else str(exc)
        if isinstance(exc, CheckpointError):
            detail = f"the verifier key is unusable: {detail}"
        raise _fail(detail) from exc
    console.print(_report_table(export_path, report))
    for problem in report.problems:
        console.print(f"  [red]-[/red] {problem}")
    if not report.ok:
        where = (
            f"first bad index: {report.first_bad_index}"
            if report.first_bad_index is not None
            else "the signed head does not verify"
        )
        raise _fail(f"the export does not verify; {where}")
    console.print(f"[green]OK[/green]: {report.events_checked} events verified")


def _http_client(hub_url: str) -> httpx.Client:
    """The witness's HTTP client (a seam for tests, which hand in the app's test client)."""
    return httpx.Client(base_url=hub_url, timeout=30.0)


@app.command("witness")
def witness(
    hub: Annotated[str, typer.Option("--hub", help="The hub's base URL.")],
    client_id: Annotated[str, typer.Option("--client-id", help="Your OAuth client id.")],
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret",
            envvar="TOLLHOUSE_WITNESS_CLIENT_SECRET",
            help="Your OAuth client secret (or TOLLHOUSE_WITNESS_CLIENT_SECRET).",
        ),
    ],
    key: Annotated[
        Path, typer.Option("--key", help="Your witness Ed25519 key (PEM; created if missing).")
    ],
    state: Annotated[
        Path, typer.Option("--state", help="Directory for the last cosigned checkpoint.")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="Your witness name in cosignatures (default: witness/<client id>)."),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            help="The log's verifier key or a file with it (default: pinned on first use)."
        ),
    ] = None,
) -> None:
    """Check the hub's latest checkpoint against the last one you cosigned and cosign it."""
    try:
        signer = WitnessSigner.load_or_create(key, name or f"witness/{client_id}")
        pinned_key = resolve_key_text(log_key) if log_key else None
        with _http_client(hub) as client:
            outcome = run_witness(
                client,
                client_id=client_id,
                client_secret=client_secret,
                signer=signer,
                state=WitnessState(state),
                log_key=pinned_key,
            )
    except SplitViewError as exc:
        raise _fail(f"REFUSED: {exc}", EXIT_SPLIT_VIEW) from exc
    except WitnessError as exc:
        raise _fail(f"refused: {exc}") from exc
    except (AuditError, CheckpointError) as exc:
        raise _fail(exc.detail) from exc
    if outcome.pinned_log_key:
        console.print(f"[yellow]pinned the log key of {outcome.origin} on first use[/yellow]")
    since = "first checkpoint" if outcome.previous_size is None else f"from {outcome.previous_size}"
    console.print(
        f"[green]cosigned[/green] {outcome.origin} at size {outcome.size} ({since}, consistent); "
        f"root {_b64(outcome.root_hash)}"
        + ("" if outcome.stored_by_hub else " (the hub already had this cosignature)")
    )
