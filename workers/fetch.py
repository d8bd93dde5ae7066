"""Download a source image from an http(s) URL without letting the URL reach our network.

Each hop resolves the host once, refuses it if any address it resolves to is not public
(editcore.urls.check_address, unless allowed_hosts lets it through), and then connects to the
checked address itself — the Host header and TLS SNI still carry the name — so no second DNS
answer can point the connection elsewhere. Redirects (at most MAX_REDIRECTS) go through the
same check. The body is read up to max_bytes and the whole fetch, redirects included, gets one
deadline (DNS resolution excepted: getaddrinfo takes no timeout; the resolver's own applies).
Proxy environment variables are ignored on purpose: a proxy would resolve the name itself.

Errors, each with a stable reason: URL_NOT_ALLOWED (InvalidArgument); FETCH_FAILED
(Unavailable when retrying may help: connection errors, timeouts, 408, 429, 5xx;
InvalidArgument otherwise); IMAGE_TOO_LARGE (InvalidArgument).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from editcore.errors import ImageEditorError, InvalidArgument, Unavailable
from editcore.urls import check_address, validate_http_url

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 429})
_CHUNK_BYTES = 64 * 1024
_HEADERS = {
    "User-Agent": "imageeditor-fetch/1",
    "Accept": "image/*",
    "Accept-Encoding": "identity",  # the size cap applies to the bytes we decode
    "Connection": "close",
}

# (family, sockaddr): sockaddr is (ip, port) for IPv4, (ip, port, flowinfo, scope_id) for IPv6.
SocketAddress = tuple[socket.AddressFamily, tuple[Any, ...]]


def fetch_image(
    url: str, *, max_bytes: int, timeout: float, allowed_hosts: tuple[str, ...]
) -> bytes:
    """The body of `url` (following up to MAX_REDIRECTS redirects), at most `max_bytes` long,
    fetched within `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        body, location = _fetch_once(url, deadline, max_bytes, allowed_hosts)
        if location is None:
            return body
        url = urljoin(url, location)
    raise _failed(f"more than {MAX_REDIRECTS} redirects", retryable=False)


def resolve_address(host: str, port: int, allowed_hosts: tuple[str, ...]) -> list[SocketAddress]:
    """Every address `host` resolves to, once; URL_NOT_ALLOWED if any of them is refused by
    check_address (one bad address in a DNS answer refuses the name, so a host cannot mix a
    public address with an internal one and hope we pick the internal one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno == socket.EAI_AGAIN
        raise _failed(f"cannot resolve {host!r}: {exc.strerror}", retryable=transient) from None
    addresses: list[SocketAddress] = [
        (family, sockaddr)
        for family, _, _, _, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    ]
    if not addresses or not all(
        check_address(str(sockaddr[0]), port, host, allowed_hosts) for _, sockaddr in addresses
    ):
        raise _not_allowed(f"{host!r} resolves to an address that is not public")
    return addresses


def _fetch_once(
    url: str, deadline: float, max_bytes: int, allowed_hosts: tuple[str, ...]
) -> tuple[bytes, str | None]:
    """One request: (body, None), or (b"", Location) for a redirect."""
    try:
        validate_http_url(url, "image_url")
    except InvalidArgument as exc:
        raise _not_allowed(exc.message) from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    addresses = resolve_address(host, port, allowed_hosts)
    remaining = _remaining(deadline)
    connection_type = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_type(host, port, addresses=addresses, timeout=remaining)
    # Socket timeouts bound each call, not the total: a server dripping one byte at a time
    # would never trip them. The watchdog shuts the socket down at the deadline instead.
    expired = threading.Event()
    watchdog = threading.Timer(remaining, _shut_down, (connection, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("GET", _request_target(parts.path, parts.query), headers=_HEADERS)
        response = connection.getresponse()
        result = _read_response(response, max_bytes)
        if expired.is_set():  # the shutdown may look like a clean end of the body
            raise TimeoutError
        return result
    except ImageEditorError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise _failed(f"TLS certificate of {host!r} rejected: {exc.verify_message}") from None
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise _failed("timed out", retryable=True) from None
        raise _failed(f"connection to {host!r} failed: {exc!r}", retryable=True) from None
    finally:
        watchdog.cancel()
        connection.close()


def _request_target(path: str, query: str) -> str:
    # Percent-encode what http.client would refuse (non-ASCII), keeping existing escapes.
    target = quote(path or "/", safe="/%:@!$&'()*+,;=~")
    return (target + "?" + quote(query, safe="/?%:@!$&'()*+,;=~")) if query else target


def _read_response(response: http.client.HTTPResponse, max_bytes: int) -> tuple[bytes, str | None]:
    status = response.status
    if status in _REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise _failed(f"HTTP {status} redirect without a Location", retryable=False)
        return b"", location
    if status != 200:
        retryable = status >= 500 or status in _RETRYABLE_STATUSES
        raise _failed(f"HTTP {status} {response.reason}", retryable=retryable)
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    # Never read more than max_bytes + 1: one byte past the cap proves the body too large.
    while chunk := response.read1(min(_CHUNK_BYTES, max_bytes + 1 - size)):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    if declared.isdigit() and size != int(declared):
        raise _failed(f"the body ended after {size} of {declared} bytes", retryable=True)
    return b"".join(chunks), None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to addresses resolved and checked beforehand; `host` is only the Host header."""

    def __init__(
        self, host: str, port: int, *, addresses: list[SocketAddress], timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _open_socket(self.addresses, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
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


def _shut_down(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    sock = connection.sock
    if sock is not None:
        # The plain socket's shutdown, also for TLS: it wakes the blocked reader with an end
        # of stream without tearing the SSL object out from under it. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _failed("timed out", retryable=True)
    return remaining


def _not_allowed(message: str) -> InvalidArgument:
    return InvalidArgument(
        message, field_violations={"image_url": message}, reason="URL_NOT_ALLOWED"
    )


def _too_large(max_bytes: int) -> InvalidArgument:
    message = f"the image is larger than {max_bytes} bytes"
    return InvalidArgument(
        message, field_violations={"image_url": message}, reason="IMAGE_TOO_LARGE"
    )


def _failed(message: str, *, retryable: bool = False) -> ImageEditorError:
    if retryable:
        return Unavailable(f"fetching the image failed: {message}", reason="FETCH_FAILED")
    return InvalidArgument(
        f"fetching the image failed: {message}",
        field_violations={"image_url": message},
        reason="FETCH_FAILED",
    )
