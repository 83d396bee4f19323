"""``tollhouse policy``: validate, bundle, serve (OPA-compatible) and hot-reload the policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from hub.policy.bundle import build_bundle
from hub.policy.embedded import EmbeddedPolicyEngine
from hub.policy.errors import PolicyError

app = typer.Typer(help="The Rego policies.", no_args_is_help=True)
console = Console()


def _policies_dir() -> Path:
    from hub.settings import get_settings

    return get_settings().policies_dir


@app.command()
def validate() -> None:
    """Compile the policies and run every Rego unit test."""
    try:
        engine = EmbeddedPolicyEngine(_policies_dir())
        results = engine.validate()
    except PolicyError as exc:
        console.print(f"[red]invalid:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]{len(results)} Rego tests passed[/green]; revision {engine.revision}")


@app.command()
def bundle(out: Annotated[Path, typer.Option(help="Where to write the bundle.")]) -> None:
    """Build an OPA bundle (tar.gz with a .manifest) from the policies."""
    revision = build_bundle(_policies_dir(), out)
    console.print(f"wrote {out} (revision {revision})")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (OPA's default is 8181).")] = 8181,
) -> None:
    """Serve the policies over OPA's REST API subset (a sidecar where no OPA binary exists)."""
    from hub.policy.opa_server import serve as serve_opa

    serve_opa(_policies_dir(), host=host, port=port)


@app.command()
def reload(
    hub_url: Annotated[str | None, typer.Option(help="The running hub.")] = None,
    client_id: Annotated[str, typer.Option(help="A client with the admin scope.")] = "operator",
    client_secret: Annotated[
        str | None, typer.Option(envvar="TOLLHOUSE_CLIENT_SECRET", help="Its secret.")
    ] = None,
) -> None:
    """Ask the running hub to validate and swap in the policies on disk."""
    import json

    from hub.settings import get_settings

    settings = get_settings()
    hub_url = hub_url or settings.issuer
    if client_secret is None:
        credentials = json.loads((settings.data_dir / "demo-credentials.json").read_text())
        client_secret = credentials["partners"][client_id]["client_secret"]
    token = httpx.post(
        hub_url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        auth=(client_id, client_secret),
    ).json()["access_token"]
    response = httpx.post(
        hub_url + "/v1/policy/reload", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    body = response.json()
    if response.status_code != 200:
        console.print(f"[red]refused:[/red] {body.get('detail')}")
        raise typer.Exit(1)
    state = "swapped in" if body["changed"] else "unchanged"
    console.print(f"policies {state}: revision {body['revision']} ({body['tests_run']} tests)")
