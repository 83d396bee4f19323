"""Outbound URLs the hub calls on a partner's behalf (JWKS, webhooks): refuse the ones that
would reach the hub's own network (SSRF).

A URL is checked when it is registered and again before every fetch, by resolving its host and
checking every address; the fetch then connects to the checked address itself (no second DNS
lookup to rebind), with TLS still verified against the host name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from hub.registry.errors import UnsafeUrlError

Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2048


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int
    #: The first resolved address, already checked: connect here.
    address: str

    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{host}:{self.port}"
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{netloc}{path}{query}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url_shape(url: str, *, what: str, allow_private: bool) -> tuple[str, str, int]:
    """The checks that need no DNS: https (http only when private networks are allowed), no
    credentials or fragment, a host. Returns the scheme, host and port."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(what, "the URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(what, "the URL does not parse") from exc
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        raise UnsafeUrlError(what, "the URL must use https")
    if parts.username or parts.password:
        raise UnsafeUrlError(what, "the URL must not carry credentials")
    if parts.fragment:
        raise UnsafeUrlError(what, "the URL must not have a fragment")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError(what, "the URL has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def check_url(
    url: str, *, what: str, allow_private: bool, resolver: Resolver = system_resolver
) -> CheckedUrl:
    """Refuse a URL the hub must not call: a bad shape (:func:`check_url_shape`), or a host
    resolving to any loopback, link-local, private, shared, multicast or reserved address."""
    scheme, host, port = check_url_shape(url, what=what, allow_private=allow_private)
    try:
        addresses = list(resolver(host, port))
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrlError(what, "the host does not resolve") from exc
    if not addresses:
        raise UnsafeUrlError(what, "the host does not resolve")
    if not allow_private:
        for address in addresses:
            try:
                public = is_public_address(address)
            except ValueError as exc:
                raise UnsafeUrlError(what, "the host resolves to an unusable address") from exc
            if not public:
                raise UnsafeUrlError(
                    what, "the host resolves to a loopback, private, link-local or reserved address"
                )
    return CheckedUrl(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
