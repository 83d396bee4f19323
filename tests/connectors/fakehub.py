"""A small in-memory stand-in for the hub's HTTP contract, for the connector tests.

``FakeHub`` is an ``httpx.MockTransport`` handler; ``serve(hub)`` also puts it behind a real
loopback HTTP server for tests where the wire matters (CLI runs, connection errors).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, KeySet, OKPKey

PROBLEM = "https://tollhouse.dev/problems/"
AGREEMENT = {
    "id": "agr-1",
    "provider_id": "oem-1",
    "recipient_id": "dealer-1",
    "dataset_id": "loans",
    "purpose": "credit-decision",
    "fields": ["make", "income", "note"],
    "retention_days": 30,
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": None,
    "status": "active",
}


def problem(status: int, slug: str, title: str = "Problem", **extra: Any) -> httpx.Response:
    body = {"type": PROBLEM + slug, "title": title, "status": status, **extra}
    headers = {"Content-Type": "application/problem+json"}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def make_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "record_key": f"r{i:05d}",
            "version": 1,
            "subject": f"p-{i % 7}",
            "fields": {"make": "Volvo" if i % 2 else "BYD", "income": 1000 + i, "note": f"n,{i}"},
        }
        for i in range(n)
    ]


@dataclass
class FakeHub:
    records: list[dict[str, Any]] = field(default_factory=lambda: make_records(25))
    client_id: str = "dealer-1"
    client_secret: str | None = "s3cret:with spaces"
    public_key: ECKey | OKPKey | None = None
    public_key_params: dict[str, str] = field(default_factory=dict)  # e.g. a registered kid
    recipient_key: ECKey | OKPKey | None = None  # encrypt "income" for the recipient if set
    expires_in: int = 300
    withheld_every: int = 0  # withhold every n-th record (0: none)
    faults: list[tuple[str, httpx.Response | Exception]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    requests: list[httpx.Request] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_page: Callable[[int], None] | None = None  # called with the offset of every page served
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path_prefix: str, outcome: httpx.Response | Exception, times: int = 1) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` with ``outcome``."""
        self.faults.extend([(path_prefix, outcome)] * times)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            for i, (prefix, outcome) in enumerate(self.faults):
                if request.url.path.startswith(prefix):
                    del self.faults[i]
                    if isinstance(outcome, Exception):
                        raise outcome
                    return outcome
            return self._route(request)

    # -- routes --

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token" and request.method == "POST":
            return self._token(request)
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json={"token_endpoint": "http://hub/oauth/token"})
        auth = request.headers.get("Authorization", "")
        if (
            not auth.startswith("Bearer ")
            or auth[7:] not in self.tokens
            or auth[7:] in self.revoked
        ):
            return problem(401, "unauthorized", "Unauthorized")
        raw = request.url.raw_path.decode().split("?")[0]
        parts = [unquote(p) for p in raw.split("/")[1:]]
        if parts == ["v1", "agreements"]:
            return httpx.Response(200, json={"items": [AGREEMENT]})
        if parts[:2] == ["v1", "agreements"] and len(parts) >= 4 and parts[3] == "records":
            if parts[2] != AGREEMENT["id"]:
                return problem(404, "not-found", "Not Found")
            if len(parts) == 5:
                for rec in self.records:
                    if rec["record_key"] == parts[4]:
                        item = self._release(rec)
                        item["encrypted_fields"] = ["income"] if self.recipient_key else []
                        return httpx.Response(200, json=item)
                return problem(404, "not-found", "Not Found")
            return self._page(request)
        if parts[:2] == ["v1", "datasets"] and len(parts) == 4 and request.method == "POST":
            return self._publish(json.loads(request.content))
        return problem(404, "not-found", "Not Found")

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, pw = base64.b64decode(basic[6:]).decode().partition(":")
            if unquote(user) != self.client_id or unquote(pw) != self.client_secret:
                return httpx.Response(401, json={"error": "invalid_client"})
        elif "client_assertion" in form:
            # As the hub does: the partner's registered JWKS, kid lookup, the FAPI algorithms.
            assert self.public_key is not None
            public = self.public_key.as_dict(private=False) | self.public_key_params
            keys = KeySet.import_key_set({"keys": [public]})
            algs = ["Ed25519", "EdDSA", "ES256", "PS256"]
            token = jwt.decode(form["client_assertion"], keys, algorithms=algs)
            self.assertions.append({"header": token.header, "claims": token.claims, "form": form})
        else:
            return httpx.Response(401, json={"error": "invalid_client"})
        access = f"tok-{len(self.tokens) + 1}"
        self.tokens.append(access)
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": form.get("scope", ""),
        }
        return httpx.Response(200, json=body)

    def _release(self, rec: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = json.loads(json.dumps(rec))
        if self.recipient_key is not None:
            plaintext = json.dumps(item["fields"]["income"]).encode()
            header = {"alg": "ECDH-ES", "enc": "A256GCM"}
            item["fields"]["income"] = jwe.encrypt_compact(header, plaintext, self.recipient_key)
        return item

    def _page(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        limit = int(request.url.params.get("limit", "100"))
        if not 1 <= limit <= 1000:
            return problem(
                422, "validation-failed", errors=[{"field": "limit", "message": "range"}]
            )
        offset = 0
        if cursor is not None:
            if not cursor.startswith("c") or not cursor[1:].isdigit():
                return problem(400, "invalid-cursor", "Invalid cursor")
            offset = int(cursor[1:])
        if self.on_page is not None:
            self.on_page(offset)
        chunk = self.records[offset : offset + limit]
        released = [
            self._release(r)
            for n, r in enumerate(chunk, offset)
            if not (self.withheld_every and n % self.withheld_every == 0)
        ]
        end = offset + len(chunk)
        body = {
            "items": released,
            "released": len(released),
            "withheld": len(chunk) - len(released),
            "next_cursor": f"c{end}" if end < len(self.records) else None,
            "decision_revision": "rev-1",
        }
        if self.recipient_key is not None:
            body["encrypted_fields"] = {r["record_key"]: ["income"] for r in released}
        return httpx.Response(200, json=body)

    def _publish(self, body: dict[str, Any]) -> httpx.Response:
        errors = []
        for i, rec in enumerate(body["records"]):
            if not rec.get("subject"):
                errors.append({"field": f"records[{i}].subject", "message": "an identifier"})
            income = rec.get("fields", {}).get("income")
            if income is not None and (not isinstance(income, int | float) or income < 0):
                msg = "a non-negative number"
                errors.append({"field": f"records[{i}].fields.income", "message": msg})
        if errors:
            return problem(422, "validation-failed", "Validation failed", errors=errors)
        created = unchanged = 0
        for rec in body["records"]:
            old = self.stored.get(rec["record_key"])
            if old is not None and old["version"] >= rec["version"]:
                unchanged += 1
            else:
                self.stored[rec["record_key"]] = rec
                created += 1
        n = len(body["records"])
        return httpx.Response(200, json={"accepted": n, "created": created, "unchanged": unchanged})


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = httpx.Request(
            self.command,
            f"http://{self.headers.get('Host', 'hub')}{self.path}",
            headers=list(self.headers.items()),
            content=body,
        )
        response = self.hub(request)
        payload = response.read()
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(hub: FakeHub) -> Iterator[str]:
    """Serve ``hub`` on a loopback port; yields its base URL."""
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
