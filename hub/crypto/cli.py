"""``tollhouse keys``: rotate the key-encryption key, re-wrap data keys, retire old versions.

All three are safe while the hub keeps serving: rotation only adds a version, re-wrapping
commits in batches (resumable: run it again after an interruption), and a version is retired
only when no data key is wrapped under it any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from hub.crypto.service import RewrapProgress

if TYPE_CHECKING:
    from hub.runtime import Runtime

app = typer.Typer(help="Field-protection keys.", no_args_is_help=True)
console = Console()


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """The hub's runtime for one command; its database connections are closed afterwards."""
    from hub.runtime import Runtime
    from hub.settings import get_settings

    runtime = Runtime.build(get_settings())
    try:
        yield runtime
    finally:
        runtime.engine.dispose()


@app.command()
def status() -> None:
    """Show KEK versions and which one is current."""
    with _runtime() as runtime:
        keyring = runtime.protector.keyring
        versions, current = keyring.versions(), keyring.current_version()
    console.print(f"KEK versions: {versions}  current: {current}")


@app.command()
def rotate() -> None:
    """Add a new KEK version and make it current; new data keys are wrapped under it."""
    with _runtime() as runtime:
        version = runtime.protector.rotate_kek()
    console.print(f"[green]KEK version {version} is now current[/green]")
    console.print("re-wrap the data keys under it: `tollhouse keys rewrap`")


@app.command()
def rewrap(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Re-wrap every data key under the current KEK, in committed batches."""
    with (
        _runtime() as runtime,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("re-wrapping data keys", total=None)
        done = 0

        def report(step: RewrapProgress) -> None:
            nonlocal done
            done += step.rewrapped
            progress.update(task, completed=done, total=done + step.remaining)

        result = runtime.protector.rewrap_all(
            runtime.session_factory, batch_size=batch_size, on_progress=report
        )
    if result.remaining:
        console.print(f"[yellow]{result.remaining} data keys left (locked elsewhere); run again")
        raise typer.Exit(1)
    console.print(f"[green]all data keys wrapped under version {result.current_version}[/green]")


@app.command()
def retire() -> None:
    """Destroy KEK versions that no data key uses any more."""
    with _runtime() as runtime, runtime.session_factory() as session, session.begin():
        retired = runtime.protector.retire_unused_versions(session)
    console.print(f"retired versions: {retired or 'none'}")
