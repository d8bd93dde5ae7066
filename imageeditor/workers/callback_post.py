"""POST one signed callback to a receiver's URL without letting the URL reach our network.

Every hop goes through workers.pinned_http like the image fetch: the host is resolved once,
refused if any address fails imageeditor.core.urls.check_address (unless allowed_hosts lets it
through), and the connection goes to the checked address. 301, 302, 307 and 308 re-POST the
same body and headers to the Location (at most MAX_REDIRECTS times, each hop re-checked): a
receiver that moved keeps getting its events, and a signed body is worth nothing without its
signature headers. 303 and the other 3xx are not followed, since they would turn the POST into
a GET that delivers nothing. The whole POST, redirects included, gets one deadline (DNS
resolution excepted, as in the fetch: getaddrinfo takes no timeout), and at most
MAX_BODY_BYTES of each answer are read and thrown away: a receiver can neither hold us past
the deadline nor make us read without end.

Nothing here raises for a network or HTTP problem: every outcome is a PostResult, which
imageeditor.core.callbacks.verdict turns into delivered / retry / gone / rejected / not allowed.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from imageeditor.core.callbacks import PostResult
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.urls import validate_http_url
from imageeditor.workers.pinned_http import (
    AddressRefused,
    Endpoint,
    ResolveFailed,
    deadline_watchdog,
    open_connection,
    resolve_address,
)

MAX_REDIRECTS = 3
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "imageeditor-callbacks/1"
_FOLLOWED_REDIRECTS = frozenset({301, 302, 307, 308})
# Headers this module owns; a caller's spelling of any of them (in any case) is dropped.
_OWN_HEADERS = frozenset(
    {"host", "content-type", "content-length", "user-agent", "connection", "transfer-encoding"}
)
_DELTA_SECONDS = re.compile(r"[0-9]+")
_MAX_ERROR_CHARS = 200


class _Timeout(Exception):
    """The deadline passed before an answer came."""


def post_callback(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allowed_hosts: tuple[str, ...],
) -> PostResult:
    """POST `body` with `headers` to `url` (following up to MAX_REDIRECTS redirects) within
    `timeout` seconds in all; what happened, never an exception for network or HTTP trouble."""
    started = time.monotonic()
    result = _post(url, body, _request_headers(headers, len(body)), timeout, allowed_hosts)
    return replace(result, duration_ms=int((time.monotonic() - started) * 1000))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date, RFC 9110
    §10.2.3), never negative; None when absent or unparseable."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)  # inf for absurdly long digit strings: treated as invalid
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": a time in UTC whose source zone is unknown
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _request_headers(headers: Mapping[str, str], length: int) -> dict[str, str]:
    own = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": str(length),
        "Connection": "close",
    }
    kept = {name: value for name, value in headers.items() if name.lower() not in _OWN_HEADERS}
    return kept | own


def _post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allowed_hosts: tuple[str, ...],
) -> PostResult:
    """The outcome of the whole chain of hops, all within one deadline."""
    deadline = time.monotonic() + timeout
    try:
        for redirects in range(MAX_REDIRECTS + 1):
            result, location = _post_once(url, body, headers, deadline, allowed_hosts)
            if location is None:
                return result
            if redirects < MAX_REDIRECTS:
                url = urljoin(url, location)
    except _Timeout:
        return PostResult(error=f"timed out after {timeout:g} s")
    return replace(result, error=f"too many redirects (more than {MAX_REDIRECTS})")


def _post_once(
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    allowed_hosts: tuple[str, ...],
) -> tuple[PostResult, str | None]:
    """One hop: (its result, None), or (its result, Location) for a redirect to follow."""
    try:
        validate_http_url(url, "callback_url")
    except InvalidArgument as exc:
        return _stop(exc.message, not_allowed=True)
    endpoint = Endpoint.from_url(url)
    host = endpoint.host
    try:
        addresses = resolve_address(host, endpoint.port, allowed_hosts)
    except AddressRefused as exc:
        return _stop(str(exc), not_allowed=True)
    except ResolveFailed as exc:
        return _stop(str(exc))
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout
    connection = open_connection(endpoint, addresses, remaining)
    with deadline_watchdog(connection, remaining) as expired:
        try:
            connection.request("POST", endpoint.target, body=body, headers=headers)
            response = connection.getresponse()
            if expired.is_set():  # the shutdown may look like a clean end of the headers
                raise _Timeout
            return _answer(response)
        except ssl.SSLCertVerificationError as exc:
            return _stop(f"TLS certificate of {host!r} rejected: {exc.verify_message}")
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise _Timeout from None
            return _stop(_short(f"connection to {host!r} failed: {_describe(exc)}"))
        finally:
            connection.close()


def _stop(error: str, *, not_allowed: bool = False) -> tuple[PostResult, None]:
    """A hop that ended without an answer to report (and so without a redirect to follow)."""
    return PostResult(error=error, not_allowed=not_allowed), None


def _answer(response: http.client.HTTPResponse) -> tuple[PostResult, str | None]:
    """The result a response stands for, and the Location to follow if it is a redirect we
    follow; its body is read (at most MAX_BODY_BYTES) and dropped."""
    status = response.status
    result = PostResult(
        http_status=status,
        retry_after=parse_retry_after(response.getheader("Retry-After"), datetime.now(UTC)),
    )
    # The status is the answer: a body that breaks off or outlasts the deadline changes
    # nothing (a 2xx counted as a failure would make us deliver the event twice).
    with contextlib.suppress(OSError, http.client.HTTPException):
        response.read(MAX_BODY_BYTES)
    if 200 <= status < 300:
        return result, None
    if status in _FOLLOWED_REDIRECTS:
        location = response.getheader("Location")
        if location:
            return result, location
        return replace(result, error=f"HTTP {status} redirect without a Location"), None
    if 300 <= status < 400:
        return replace(result, error=f"unexpected redirect (HTTP {status})"), None
    return replace(result, error=_short(f"HTTP {status} {response.reason}".rstrip())), None


def _describe(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def _short(text: str) -> str:
    # Errors end up in the delivery's attempt log; a receiver's long reason phrase must not.
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
