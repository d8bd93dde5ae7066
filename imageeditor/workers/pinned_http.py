"""HTTP connections pinned to addresses that were resolved once and checked, under one deadline.

Whoever contacts a URL we were given (the image fetcher, the callback sender) must not let it
reach our own network. So each hop resolves the host once (`resolve_address`), refuses the name
if any address it resolves to fails imageeditor.core.urls.check_address, and connects to a checked
address itself (`open_connection`): the Host header and TLS SNI still carry the name, but no
second DNS answer can point the connection elsewhere (DNS rebinding). Proxy environment
variables play no part: a proxy would resolve the name itself.

Socket timeouts bound each call, not the total: a server dripping one byte at a time would
never trip them. `deadline_watchdog` shuts the socket down when the time is up instead.

Failures to resolve or to pass the check are raised as AddressError subclasses; each caller
translates them into its own errors.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from imageeditor.core.urls import check_address

# (family, sockaddr): sockaddr is (ip, port) for IPv4, (ip, port, flowinfo, scope_id) for IPv6.
SocketAddress = tuple[socket.AddressFamily, tuple[Any, ...]]


class AddressError(Exception):
    """A host that may not be contacted; str(error) says why, naming the host."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


class AddressRefused(AddressError):
    """The host resolves to at least one address that check_address refuses."""


class ResolveFailed(AddressError):
    """The host could not be resolved; `transient` when asking again later may succeed."""

    def __init__(self, message: str, host: str, *, transient: bool) -> None:
        super().__init__(message, host)
        self.transient = transient


@dataclass(frozen=True)
class Endpoint:
    """Where an http(s) URL (already validated) leads: the host, port and request target."""

    host: str
    port: int
    https: bool
    target: str  # the path and query, as sent on the request line

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        return cls(
            host=parts.hostname or "",
            port=parts.port or (443 if https else 80),
            https=https,
            target=request_target(parts.path, parts.query),
        )


def resolve_address(host: str, port: int, allowed_hosts: tuple[str, ...]) -> list[SocketAddress]:
    """Every address `host` resolves to, once; AddressRefused if any of them is refused by
    check_address (one bad address in a DNS answer refuses the name, so a host cannot mix a
    public address with an internal one and hope we pick the internal one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno == socket.EAI_AGAIN
        raise ResolveFailed(
            f"cannot resolve {host!r}: {exc.strerror}", host, transient=transient
        ) from None
    except UnicodeError:  # the IDNA codec refuses the name (e.g. an empty label: "a..b")
        raise ResolveFailed(
            f"cannot resolve {host!r}: not a valid host name", host, transient=False
        ) from None
    addresses: list[SocketAddress] = [
        (family, sockaddr)
        for family, _, _, _, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    ]
    if not addresses or not all(
        check_address(str(sockaddr[0]), port, host, allowed_hosts) for _, sockaddr in addresses
    ):
        raise AddressRefused(f"{host!r} resolves to an address that is not public", host)
    return addresses


def request_target(path: str, query: str) -> str:
    """The request line's target: what http.client would refuse (non-ASCII) percent-encoded,
    existing escapes kept."""
    target = quote(path or "/", safe="/%:@!$&'()*+,;=~")
    return (target + "?" + quote(query, safe="/?%:@!$&'()*+,;=~")) if query else target


def open_connection(
    endpoint: Endpoint, addresses: list[SocketAddress], timeout: float
) -> http.client.HTTPConnection:
    """An HTTP(S) connection to `endpoint` that will connect to `addresses` only (checked by
    resolve_address); nothing is sent until a request is made."""
    connection_type = PinnedHTTPSConnection if endpoint.https else PinnedHTTPConnection
    return connection_type(endpoint.host, endpoint.port, addresses=addresses, timeout=timeout)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to addresses resolved and checked beforehand; `host` is only the Host header."""

    def __init__(
        self, host: str, port: int, *, addresses: list[SocketAddress], timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _open_socket(self.addresses, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to addresses resolved and checked beforehand; the certificate and SNI are checked
    against `host`."""

    def __init__(
        self, host: str, port: int, *, addresses: list[SocketAddress], timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self.addresses = addresses

    def connect(self) -> None:
        sock = _open_socket(self.addresses, self.timeout)
        self.sock = _tls_context().wrap_socket(sock, server_hostname=self.host)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built on first use, not at import; loading the CA bundle takes a few milliseconds.
    return ssl.create_default_context()


def _open_socket(addresses: list[SocketAddress], timeout: float | None) -> socket.socket:
    """A socket connected to the first of `addresses` that answers (e.g. IPv4 when IPv6 has
    no route), without resolving anything again."""
    error: OSError = OSError("no address to connect to")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


@contextlib.contextmanager
def deadline_watchdog(
    connection: http.client.HTTPConnection, seconds: float
) -> Iterator[threading.Event]:
    """Shut `connection`'s socket down once `seconds` have passed; the yielded event is set
    when that happened, so a caller can tell a timeout from a clean end of stream."""
    expired = threading.Event()
    timer = threading.Timer(seconds, _shut_down, (connection, expired))
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()


def _shut_down(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    sock = connection.sock
    if sock is not None:
        # The plain socket's shutdown, also for TLS: it wakes the blocked reader with an end
        # of stream without tearing the SSL object out from under it. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
