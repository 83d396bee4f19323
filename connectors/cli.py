"""``connect``: the partner CLI, mounted as ``tollhouse connect`` (or ``python -m connectors.cli``).

``pull`` copies an agreement's released records into a sink, resumably: each page is written
durably to the sink first, then the cursor is checkpointed (atomic write of the state file), so a
pull killed at any point resumes with no loss and no duplicates.

``webhooks serve`` runs the consent webhook receiver (``connectors._webhooks``) over a SQL sink.

``publish`` reads a provider's CSV/JSONL, SQL or HTTP JSON rows, maps them per a TOML mapping,
validates every row (reporting line numbers) before sending anything, then publishes in batches.
Re-running is idempotent: the hub answers "unchanged" for record keys and versions it already holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ._checkpoint import Checkpoint
from ._client import HubClient
from ._exceptions import HubError, InvalidCursor, PayloadTooLarge, ValidationFailed
from ._keys import KeyInput
from ._mapping import MappingError, RecordMapping, RowError
from ._models import PublishRecord, PublishResult
from ._sinks import Sink, SinkError, open_sink
from ._sources import Source, open_source

__all__ = ["app", "main"]

app = typer.Typer(
    name="connect",
    help="Pull shared records from the Tollhouse hub, or publish a provider's records into it.",
    no_args_is_help=True,
    add_completion=False,
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Hub = Annotated[str, typer.Option("--hub", envvar="TOLLHOUSE_HUB", help="Hub base URL.")]
ClientId = Annotated[str, typer.Option("--client-id", envvar="TOLLHOUSE_CLIENT_ID")]
ClientSecret = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="TOLLHOUSE_CLIENT_SECRET",
        help="client_secret_basic; prefer the environment variable to the command line.",
        show_default=False,
    ),
]
PrivateKey = Annotated[
    Path | None,
    typer.Option(
        "--private-key", help="private_key_jwt: PEM or JWK (JSON) file, Ed25519 or P-256."
    ),
]
Scope = Annotated[list[str] | None, typer.Option("--scope", help="Scopes to ask for (repeatable).")]


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _read_key(path: Path) -> KeyInput:
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        jwk: dict[str, Any] = json.loads(data)
        return jwk
    return data


def _client(
    hub: str,
    client_id: str,
    client_secret: str | None,
    private_key: Path | None,
    scopes: tuple[str, ...],
    decryption_key: Path | None = None,
) -> HubClient:
    if (client_secret is None) == (private_key is None):
        _fail("give exactly one of --client-secret and --private-key", 2)
    try:
        return HubClient(
            hub,
            client_id,
            client_secret=client_secret,
            private_key=_read_key(private_key) if private_key else None,
            decryption_key=_read_key(decryption_key) if decryption_key else None,
            scopes=scopes,
        )
    except (OSError, ValueError) as exc:
        _fail(f"cannot load a key: {exc}", 2)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- records/s" if speed is None else f"{speed:,.0f} records/s", style="cyan")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        _Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


# -- pull ------------------------------------------------------------------------------------


@app.command()
def pull(
    hub: Hub,
    client_id: ClientId,
    agreement: Annotated[str, typer.Option("--agreement", help="Agreement ID.")],
    sink: Annotated[
        str,
        typer.Option("--sink", help="jsonl:PATH, csv:PATH or a SQLAlchemy URL (upsert by key)."),
    ],
    state: Annotated[Path, typer.Option("--state", help="Checkpoint file (resumes from it).")],
    client_secret: ClientSecret = None,
    private_key: PrivateKey = None,
    decryption_key: Annotated[
        Path | None,
        typer.Option("--decryption-key", help="Private key for encrypt_for_recipient fields."),
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000)] = 500,
    restart: Annotated[
        bool, typer.Option("--restart", help="Forget the checkpoint and pull from the start.")
    ] = False,
    scope: Scope = None,
) -> None:
    """Pull an agreement's records into a sink; resumes from --state after any interruption."""
    try:
        checkpoint = None if restart else Checkpoint.load(state)
    except ValueError as exc:
        _fail(str(exc), 2)
    if checkpoint is not None and (checkpoint.agreement_id, checkpoint.sink) != (agreement, sink):
        _fail(
            f"{state} belongs to another pull ({checkpoint.agreement_id} -> {checkpoint.sink})",
            2,
        )
    if checkpoint is not None and checkpoint.complete:
        out.print(
            f"Already complete: {checkpoint.records:,} records. Pass --restart to pull again."
        )
        _summary(checkpoint)
        return
    client = _client(
        hub,
        client_id,
        client_secret,
        private_key,
        tuple(scope or ("records:pull",)),
        decryption_key,
    )
    with client:
        try:
            fields: tuple[str, ...] = ()
            if sink.startswith("csv:"):  # the agreement's fields are the CSV columns
                fields = next((a.fields for a in client.list_agreements() if a.id == agreement), ())
            target = open_sink(sink, agreement, fields)
        except (SinkError, HubError, OSError) as exc:
            _fail(str(exc))
        try:
            checkpoint = _pull(
                client, target, checkpoint, state, agreement, sink, page_size, restart
            )
        except InvalidCursor as exc:
            _fail(f"{exc}: the checkpointed cursor is no longer valid; pass --restart")
        except (SinkError, HubError, OSError) as exc:
            _fail(f"{exc} (resume by running the same command again)")
        finally:
            target.close()
    _summary(checkpoint)


def _pull(
    client: HubClient,
    target: Sink,
    checkpoint: Checkpoint | None,
    state: Path,
    agreement: str,
    sink: str,
    page_size: int,
    restart: bool,
) -> Checkpoint:
    if checkpoint is None:
        target.restore(0 if restart else None)
        # Checkpoint the empty start too, so a crash during the first page rolls back to it.
        checkpoint = Checkpoint(agreement_id=agreement, sink=sink, position=0)
        checkpoint.save(state)
    else:
        target.restore(checkpoint.position)
    with _progress() as progress:
        verb = "Resuming" if checkpoint.pages else "Pulling"
        task = progress.add_task(f"{verb} {agreement}", total=None, completed=checkpoint.records)
        for page in client.iter_records(agreement, start_cursor=checkpoint.cursor, limit=page_size):
            position = target.write(page.items)  # durable first...
            checkpoint = checkpoint.advance(page, position)
            checkpoint.save(state)  # ...then the cursor
            progress.advance(task, len(page.items))
        progress.update(task, total=checkpoint.records)
    return checkpoint


def _summary(checkpoint: Checkpoint) -> None:
    out.print(
        f"Pulled {checkpoint.records:,} records in {checkpoint.pages:,} pages: "
        f"released {checkpoint.released:,}, withheld {checkpoint.withheld:,}.",
        highlight=False,
    )


# -- publish ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    record: PublishRecord


def _mapped(source: Source, mapping: RecordMapping) -> Iterator[_Row | RowError]:
    for line, row in source.rows():
        if isinstance(row, RowError):
            yield row
            continue
        record, problems = mapping.map_row(row)
        if record is None:
            yield from (RowError(line, p, source.unit) for p in problems)
        else:
            yield _Row(line, record)


def _validate(source: Source, mapping: RecordMapping) -> tuple[int, list[RowError]]:
    """Count the valid rows and collect every row error, duplicate record keys included."""
    seen: dict[str, int] = {}
    errors: list[RowError] = []
    for item in _mapped(source, mapping):
        if isinstance(item, RowError):
            errors.append(item)
            continue
        key = item.record.record_key
        if key in seen:
            message = f"record_key {key!r} already on {source.unit} {seen[key]}"
            errors.append(RowError(item.line, message, source.unit))
        else:
            seen[key] = item.line
    return len(seen), errors


def _batched(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    while batch := list(islice(rows, size)):
        yield batch


_RECORD_INDEX = re.compile(r"^records\[(\d+)\]\.?(.*)$")


def _publish_batch(
    client: HubClient, dataset: str, rows: list[_Row], unit: str = "line"
) -> PublishResult:
    """Publish ``rows``; halves the batch while the hub says it is too large."""
    try:
        return client.publish(dataset, [r.record for r in rows])
    except PayloadTooLarge:
        if len(rows) == 1:
            raise
        half = len(rows) // 2
        a = _publish_batch(client, dataset, rows[:half], unit)
        b = _publish_batch(client, dataset, rows[half:], unit)
        return PublishResult(
            a.accepted + b.accepted, a.created + b.created, a.unchanged + b.unchanged
        )
    except ValidationFailed as exc:
        for e in exc.errors:
            m = _RECORD_INDEX.match(e.field)
            if m and int(m.group(1)) < len(rows):
                err.print(
                    f"{unit} {rows[int(m.group(1))].line}: {m.group(2)}: {e.message}",
                    highlight=False,
                )
            else:
                err.print(f"{e.field}: {e.message}", highlight=False)
        raise


@app.command()
def publish(
    hub: Hub,
    client_id: ClientId,
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset ID.")],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            "--from",
            help="csv:PATH, jsonl:PATH, an http(s) URL serving JSON, or a SQLAlchemy URL.",
        ),
    ],
    mapping: Annotated[Path, typer.Option("--mapping", help="TOML mapping of columns.")],
    client_secret: ClientSecret = None,
    private_key: PrivateKey = None,
    table: Annotated[
        str | None, typer.Option("--table", help="SQL source: the table to read.")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="SQL source: a SELECT to run instead.")
    ] = None,
    updated_column: Annotated[
        str | None,
        typer.Option(
            "--updated-column",
            help="SQL source with --table: publish only rows newer than the last run (--state).",
        ),
    ] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="Incremental SQL source: the state file.")
    ] = None,
    items_key: Annotated[
        str | None,
        typer.Option("--items-key", help="HTTP source: key of the item list (default: items)."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="HTTP source: 'Name: value' request header (repeatable)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000)] = 500,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
    scope: Scope = None,
    max_errors: Annotated[int, typer.Option("--max-errors", help="Row errors to print.")] = 50,
) -> None:
    """Validate every row of a source, then publish it into a dataset in batches."""
    headers: dict[str, str] = {}
    for h in header or ():
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            _fail(f"--header {h!r}: use 'Name: value'", 2)
        headers[name.strip()] = value.strip()
    try:
        record_mapping = RecordMapping.load(mapping)
        rows_source = open_source(
            source,
            table=table,
            query=query,
            updated_column=updated_column,
            state=state,
            items_key=items_key,
            headers=headers,
        )
        valid, errors = _validate(rows_source, record_mapping)
    except (MappingError, OSError) as exc:
        _fail(str(exc), 2)
    shown = _redact(source)
    if errors:
        for e in errors[:max_errors]:
            err.print(str(e), highlight=False)
        if len(errors) > max_errors:
            err.print(f"... and {len(errors) - max_errors} more", highlight=False)
        _fail(f"{len(errors)} row errors in {shown}; nothing was published", 2)
    if dry_run:
        out.print(f"{valid:,} rows valid; nothing published (--dry-run).")
        return
    client = _client(
        hub, client_id, client_secret, private_key, tuple(scope or ("records:publish",))
    )
    total = PublishResult(0, 0, 0)
    batches = 0
    unit = rows_source.unit
    with client, _progress() as progress:
        task = progress.add_task(f"Publishing to {dataset}", total=valid)
        rows = (item for item in _mapped(rows_source, record_mapping) if isinstance(item, _Row))
        for batch in _batched(rows, batch_size):
            try:
                result = _publish_batch(client, dataset, batch, unit)
            except HubError as exc:
                progress.stop()
                _fail(
                    f"batch {batches + 1} ({unit}s {batch[0].line}-{batch[-1].line}) refused: "
                    f"{exc}. {total.accepted:,} records published before it; re-running is safe."
                )
            batches += 1
            total = PublishResult(
                total.accepted + result.accepted,
                total.created + result.created,
                total.unchanged + result.unchanged,
            )
            progress.advance(task, len(batch))
    rows_source.commit()
    out.print(
        f"Published {total.accepted:,} records in {batches:,} batches: "
        f"created {total.created:,}, unchanged {total.unchanged:,}.",
        highlight=False,
    )


def _redact(url: str) -> str:
    """A source URL fit for messages: without a password."""
    if "://" not in url:
        return url
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a database URL: show it without credentials
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


# -- webhooks --------------------------------------------------------------------------------

webhooks_app = typer.Typer(
    name="webhooks",
    help="Receive the hub's consent webhooks: apply withdrawals to a SQL sink, attest deletion.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app)


@webhooks_app.command("serve")
def webhooks_serve(
    hub: Hub,
    client_id: ClientId,
    sink: Annotated[str, typer.Option("--sink", help="The SQLAlchemy URL that `pull` writes to.")],
    client_secret: ClientSecret = None,
    private_key: PrivateKey = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8787,
    path: Annotated[str, typer.Option("--path", help="The path the hub POSTs to.")] = "/",
    on_withdrawal: Annotated[
        str,
        typer.Option("--on-withdrawal", help="delete the subject's rows, or deidentify them."),
    ] = "delete",
    keep_field: Annotated[
        list[str] | None,
        typer.Option("--keep-field", help="deidentify: a field to keep (repeatable)."),
    ] = None,
    scope: Scope = None,
) -> None:
    """Serve the webhook receiver (put it behind your https front end, then `register` it)."""
    import uvicorn

    from ._webhooks import WebhookReceiver

    if on_withdrawal not in ("delete", "deidentify"):
        _fail("--on-withdrawal is delete or deidentify", 2)
    if "://" not in sink:
        _fail("the receiver needs a database sink (a SQLAlchemy URL)", 2)
    client = _client(hub, client_id, client_secret, private_key, tuple(scope or ("records:pull",)))
    with client:
        try:
            receiver = WebhookReceiver(
                client,
                sink,
                on_withdrawal="delete" if on_withdrawal == "delete" else "deidentify",
                keep_fields=keep_field or (),
            )
        except SinkError as exc:
            _fail(str(exc), 2)
        err.print(f"Receiving consent webhooks on http://{host}:{port}{path}", highlight=False)
        try:
            uvicorn.run(receiver.asgi(path), host=host, port=port, log_level="warning")
        finally:
            receiver.close()


@webhooks_app.command("register")
def webhooks_register(
    hub: Hub,
    client_id: ClientId,
    url: Annotated[str, typer.Option("--url", help="The receiver's public https URL.")],
    client_secret: ClientSecret = None,
    private_key: PrivateKey = None,
    event: Annotated[
        list[str] | None, typer.Option("--event", help="Event type (repeatable; default all).")
    ] = None,
    scope: Scope = None,
) -> None:
    """Register the receiver's URL with the hub."""
    client = _client(hub, client_id, client_secret, private_key, tuple(scope or ("records:pull",)))
    with client:
        try:
            created = client.register_webhook(url, events=event)
        except HubError as exc:
            _fail(str(exc))
    out.print(f"Registered webhook {created.get('id')} for {url}.", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
