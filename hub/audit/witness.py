"""The witness: run by a regulator or a partner with its own Ed25519 key, it keeps the hub honest.

One round (``tollhouse audit witness``):

1. get an access token (client credentials, scope ``audit:read``);
2. fetch the latest checkpoint and verify the log's signature with the pinned log key (pinned on
   first use unless given);
3. compare it with the last checkpoint this witness cosigned (kept in the state directory): a
   smaller size, or the same size with another root, is a split view; a larger size needs an
   RFC 9162 consistency proof from the old size, fetched from the hub and verified here;
4. store the new checkpoint, then POST a C2SP ``tlog-cosignature`` v1 line back to the hub.

A split view is refused with :class:`SplitViewError`; both checkpoints (and the proof) are written
to ``<state>/evidence-<time>-<size>.json`` first, so the witness can show them to anyone. Every
other failure (network, credentials, a bad signature) raises :class:`WitnessError` and cosigns
nothing.

State directory: ``log-key`` (the pinned log verifier key), ``checkpoint`` (the last cosigned
checkpoint note), ``evidence-*.json``.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from hub.audit.checkpoint import (
    TreeHead,
    WitnessSigner,
    parse_verifier_key,
    verify_checkpoint,
)
from hub.audit.errors import CheckpointError, SplitViewError, WitnessError
from hub.audit.merkle import verify_consistency
from hub.keyfiles import ensure_private_dir

LOG_KEY_FILE = "log-key"
CHECKPOINT_FILE = "checkpoint"


@dataclass(frozen=True, slots=True)
class WitnessOutcome:
    """What one round did."""

    origin: str
    previous_size: int | None
    size: int
    root_hash: bytes
    cosignature: str
    stored_by_hub: bool
    pinned_log_key: bool


def resolve_key_text(value: str) -> str:
    """A verifier key given inline, or the first line of the file it names."""
    path = Path(value)
    try:
        if path.is_file():
            return path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise WitnessError(f"cannot read the key file {value}") from exc
    return value.strip()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


class WitnessState:
    """The witness's memory: the pinned log key and the last checkpoint it cosigned."""

    def __init__(self, directory: Path) -> None:
        self.directory = ensure_private_dir(directory)

    def log_key(self) -> str | None:
        path = self.directory / LOG_KEY_FILE
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def pin_log_key(self, vkey: str) -> None:
        _write_atomic(self.directory / LOG_KEY_FILE, (vkey.strip() + "\n").encode())

    def checkpoint(self) -> str | None:
        path = self.directory / CHECKPOINT_FILE
        return path.read_text(encoding="utf-8") if path.exists() else None

    def store_checkpoint(self, note: str) -> None:
        _write_atomic(self.directory / CHECKPOINT_FILE, note.encode())

    def write_evidence(self, head: TreeHead, evidence: dict[str, Any]) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"evidence-{stamp}-{head.size}.json"
        _write_atomic(path, orjson.dumps(evidence, option=orjson.OPT_INDENT_2) + b"\n")
        return path


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") or body.get("error_description") or body.get("error")
    return f"HTTP {response.status_code}: {detail}"


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise WitnessError(f"cannot reach the hub ({type(exc).__name__}: {exc})") from exc


def _token(client: httpx.Client, client_id: str, client_secret: str) -> str:
    response = _request(
        client,
        "POST",
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "audit:read"},
        auth=(client_id, client_secret),
    )
    if response.status_code != 200:
        raise WitnessError(f"the hub refused the witness's credentials ({_problem(response)})")
    token = response.json().get("access_token")
    if not isinstance(token, str):
        raise WitnessError("the hub's token response has no access token")
    return token


def _get(client: httpx.Client, url: str, token: str, **params: int) -> httpx.Response:
    response = _request(
        client, "GET", url, params=params, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 200:
        raise WitnessError(f"GET {url} failed ({_problem(response)})")
    return response


def _decode_proof(body: Any) -> list[bytes] | None:
    """The proof's hashes, or None if the response is not a well-formed proof."""
    items = body.get("proof") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None
    try:
        return [base64.b64decode(item, validate=True) for item in items]
    except (binascii.Error, TypeError, ValueError):
        return None


def run_witness(
    client: httpx.Client,
    *,
    client_id: str,
    client_secret: str,
    signer: WitnessSigner,
    state: WitnessState,
    log_key: str | None = None,
    now: datetime | None = None,
) -> WitnessOutcome:
    """One witness round against the hub ``client`` talks to (its ``base_url``)."""
    token = _token(client, client_id, client_secret)

    pinned = state.log_key()
    pinned_now = False
    if log_key is not None and pinned is not None and log_key.strip() != pinned:
        raise WitnessError("the log key given differs from the one pinned in the state directory")
    vkey = log_key or pinned
    if vkey is None:
        # Trust on first use: the key is pinned and every later round is held to it.
        vkey = str(_get(client, "/v1/audit/tree-head", token).json().get("verifier_key", ""))
    try:
        origin, public_key = parse_verifier_key(vkey)
    except CheckpointError as exc:
        raise WitnessError(f"the log's verifier key is unusable: {exc.detail}") from exc
    if pinned is None:
        state.pin_log_key(vkey)
        pinned_now = True

    note = _get(client, "/v1/audit/checkpoint", token).text
    try:
        head = verify_checkpoint(note, public_key, origin)
    except CheckpointError as exc:
        raise WitnessError(f"the hub's checkpoint does not verify: {exc.detail}") from exc

    stored_note = state.checkpoint()
    previous: TreeHead | None = None
    if stored_note is not None:
        try:
            previous = verify_checkpoint(stored_note, public_key, origin)
        except CheckpointError as exc:
            raise WitnessError(f"the stored checkpoint is unreadable: {exc.detail}") from exc

    def refuse(reason: str, proof: list[bytes] | None = None) -> SplitViewError:
        assert previous is not None and stored_note is not None
        evidence = state.write_evidence(
            head,
            {
                "type": "tollhouse.audit.witness-evidence/v1",
                "reason": reason,
                "detected_at": datetime.now(UTC).isoformat(),
                "hub": str(client.base_url),
                "log_key": vkey,
                "cosigned_checkpoint": stored_note,
                "presented_checkpoint": note,
                "consistency_proof": (
                    None if proof is None else [base64.b64encode(p).decode() for p in proof]
                ),
            },
        )
        return SplitViewError(f"{reason}; evidence written to {evidence}", evidence)

    if previous is not None:
        if head.size < previous.size:
            raise refuse(
                f"split view: the log presents size {head.size}, smaller than the size "
                f"{previous.size} this witness cosigned"
            )
        if head.size == previous.size and head.root_hash != previous.root_hash:
            raise refuse(
                f"split view: two different tree heads of size {head.size} "
                "(the log was rewritten or forked)"
            )
        if head.size > previous.size:
            response = _get(
                client,
                "/v1/audit/proofs/consistency",
                token,
                first=previous.size,
                second=head.size,
            )
            proof = _decode_proof(response.json())
            if proof is None or not verify_consistency(
                previous.size, head.size, previous.root_hash, head.root_hash, proof
            ):
                raise refuse(
                    f"split view: the consistency proof from size {previous.size} to "
                    f"{head.size} does not verify (the log was rewritten or forked)",
                    proof,
                )

    state.store_checkpoint(note)
    line = signer.cosign(head, now or datetime.now(UTC))
    response = _request(
        client,
        "POST",
        "/v1/audit/cosignatures",
        json={"checkpoint": note, "cosignature": line, "witness_key": signer.verifier_key},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code not in (200, 201):
        raise WitnessError(f"the hub refused the cosignature ({_problem(response)})")
    return WitnessOutcome(
        origin=origin,
        previous_size=None if previous is None else previous.size,
        size=head.size,
        root_hash=head.root_hash,
        cosignature=line,
        stored_by_hub=response.status_code == 201,
        pinned_log_key=pinned_now,
    )
