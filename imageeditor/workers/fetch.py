"""Download a source image from an http(s) URL without letting the URL reach our network.

Each hop resolves the host once, refuses it if any address it resolves to is not public
(imageeditor.core.urls.check_address, unless allowed_hosts lets it through), and then connects to
the
checked address itself — the Host header and TLS SNI still carry the name — so no second DNS
answer can point the connection elsewhere. Redirects (at most MAX_REDIRECTS) go through the
same check. The body is read up to max_bytes and the whole fetch, redirects included, gets one
deadline (DNS resolution excepted: getaddrinfo takes no timeout; the resolver's own applies).
Proxy environment variables are ignored on purpose: a proxy would resolve the name itself.
The resolving, pinning and deadline machinery lives in workers.pinned_http (the callback
sender uses it too); this module maps its failures to our errors.

Errors, each with a stable reason: URL_NOT_ALLOWED (InvalidArgument); FETCH_FAILED
(Unavailable when retrying may help: connection errors, timeouts, 408, 429, 5xx;
InvalidArgument otherwise); IMAGE_TOO_LARGE (InvalidArgument).
"""

from __future__ import annotations

import http.client
import ssl
import time
from urllib.parse import urljoin

from imageeditor.core.errors import ImageEditorError, InvalidArgument, Unavailable
from imageeditor.core.urls import validate_http_url
from imageeditor.workers import pinned_http
from imageeditor.workers.pinned_http import (
    AddressRefused,
    Endpoint,
    ResolveFailed,
    SocketAddress,
    deadline_watchdog,
    open_connection,
)

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
    """pinned_http.resolve_address with its failures as this module's errors: URL_NOT_ALLOWED
    for a refused address, FETCH_FAILED when the name does not resolve."""
    try:
        return pinned_http.resolve_address(host, port, allowed_hosts)
    except AddressRefused as exc:
        raise _not_allowed(str(exc)) from None
    except ResolveFailed as exc:
        raise _failed(str(exc), retryable=exc.transient) from None


def _fetch_once(
    url: str, deadline: float, max_bytes: int, allowed_hosts: tuple[str, ...]
) -> tuple[bytes, str | None]:
    """One request: (body, None), or (b"", Location) for a redirect."""
    try:
        validate_http_url(url, "image_url")
    except InvalidArgument as exc:
        raise _not_allowed(exc.message) from None
    endpoint = Endpoint.from_url(url)
    host = endpoint.host
    addresses = resolve_address(host, endpoint.port, allowed_hosts)
    remaining = _remaining(deadline)
    connection = open_connection(endpoint, addresses, remaining)
    with deadline_watchdog(connection, remaining) as expired:
        try:
            connection.request("GET", endpoint.target, headers=_HEADERS)
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
            connection.close()


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
