"""post_callback against real HTTP receivers on 127.0.0.1, and parse_retry_after."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from imageeditor.core.callbacks import PostResult, Verdict, verdict
from imageeditor.workers import pinned_http
from imageeditor.workers.callback_post import (
    MAX_REDIRECTS,
    USER_AGENT,
    parse_retry_after,
    post_callback,
)

BODY = b'{"type":"task.succeeded","task":{"id":"t-1"}}'
SIGNED = {
    "webhook-id": "msg_1",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1,c2lnbmF0dXJl",
}


@dataclass(frozen=True)
class Seen:
    """One request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Reply = Callable[["Handler", "Receiver"], None]


@dataclass
class Receiver:
    """A loopback HTTP server that records every request and answers from a script per path."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    script: dict[str, Reply] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)  # ends hanging replies

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def allowed(self) -> tuple[str, ...]:
        """An allowlist for this receiver's port only: other loopback ports stay refused."""
        return (f"127.0.0.1:{self.port}",)


class _Server(ThreadingHTTPServer):
    receiver: Receiver


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.record_and_answer()

    def do_GET(self) -> None:  # a followed 303 would arrive as a GET
        self.record_and_answer()

    def record_and_answer(self) -> None:
        receiver = cast(_Server, self.server).receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        receiver.seen.append(Seen(self.command, self.path, headers, body))
        path = self.path.partition("?")[0]
        receiver.script.get(path, answer(404))(self, receiver)

    def log_message(self, format: str, *args: object) -> None:
        pass


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Reply:
    def reply(handler: Handler, receiver: Receiver) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def redirect(status: int, location: str) -> Reply:
    return answer(status, {"Location": location})


def hang(handler: Handler, receiver: Receiver) -> None:
    """Never answer (until the test ends)."""
    receiver.release.wait(30)
    handler.close_connection = True


def drip_headers(handler: Handler, receiver: Receiver) -> None:
    """Answer a byte every 50 ms without ever finishing the headers: never idle long enough
    for a socket timeout."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    try:
        while not receiver.release.wait(0.05):
            handler.wfile.write(b"X")
            handler.wfile.flush()
    except OSError:
        pass
    handler.close_connection = True


HUGE = 10 * 1024 * 1024


def huge_body(handler: Handler, receiver: Receiver) -> None:
    """A 10 MB body whose first MB comes at once and the rest only when the test ends: a
    client that reads it all waits for its deadline."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(HUGE))
    handler.end_headers()
    try:
        handler.wfile.write(b"x" * (1024 * 1024))
        handler.wfile.flush()
        receiver.release.wait(30)
        handler.wfile.write(b"x" * (HUGE - 1024 * 1024))
    except OSError:
        pass
    handler.close_connection = True


@contextmanager
def _serving() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.receiver = Receiver(port=server.server_address[1])
    # A short poll interval: shutdown() waits for it, once per test.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.receiver
    finally:
        server.receiver.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serving() as receiver:
        yield receiver


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second receiver, on another loopback port."""
    with _serving() as receiver:
        yield receiver


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a connection was opened to."""
    addresses: list[str] = []
    real_open_socket = pinned_http._open_socket

    def recording(targets: list[pinned_http.SocketAddress], timeout: float | None) -> Any:
        addresses.extend(str(address[0]) for _, address in targets)
        return real_open_socket(targets, timeout)

    monkeypatch.setattr(pinned_http, "_open_socket", recording)
    return addresses


def post(url: str, allowed_hosts: tuple[str, ...], **options: Any) -> PostResult:
    headers = options.pop("headers", SIGNED)
    settings: dict[str, Any] = {"timeout": 5.0, "allowed_hosts": allowed_hosts}
    settings.update(options)
    return post_callback(url, BODY, headers, **settings)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Answers ----------------------------------------------------------------------------------


def test_a_2xx_delivers_the_body_and_headers_intact(receiver: Receiver) -> None:
    receiver.script["/hook"] = answer(200, body=b"thanks")
    result = post(receiver.url("/hook?x=1"), receiver.allowed)
    assert (result.http_status, result.error, result.not_allowed) == (200, "", False)
    assert verdict(result) is Verdict.DELIVERED
    assert 0 <= result.duration_ms < 5000
    [seen] = receiver.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook?x=1", BODY)
    assert {name: seen.headers[name] for name in SIGNED} == SIGNED
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["content-length"] == str(len(BODY))
    assert seen.headers["connection"] == "close"


def test_the_host_header_carries_the_name_not_the_address(receiver: Receiver) -> None:
    receiver.script["/hook"] = answer(204)
    result = post(receiver.url("/hook", host="localhost"), (f"localhost:{receiver.port}",))
    assert result.http_status == 204
    assert [seen.headers["host"] for seen in receiver.seen] == [f"localhost:{receiver.port}"]


def test_our_own_headers_win_over_a_callers_spelling_of_them(receiver: Receiver) -> None:
    receiver.script["/hook"] = answer(200)
    headers = {**SIGNED, "content-type": "text/plain", "Content-Length": "1", "HOST": "evil"}
    assert post(receiver.url("/hook"), receiver.allowed, headers=headers).http_status == 200
    [seen] = receiver.seen
    assert (seen.headers["content-type"], seen.body) == ("application/json", BODY)
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"


@pytest.mark.parametrize(
    ("status", "expected_verdict"),
    [(500, Verdict.RETRY), (410, Verdict.GONE), (400, Verdict.REJECTED)],
)
def test_a_non_2xx_answer_is_reported_with_its_status(
    receiver: Receiver, status: int, expected_verdict: Verdict
) -> None:
    receiver.script["/hook"] = answer(status, body=b"no")
    result = post(receiver.url("/hook"), receiver.allowed)
    assert result.http_status == status
    assert result.error.startswith(f"HTTP {status} ")  # the reason phrase follows
    assert verdict(result) is expected_verdict
    assert len(receiver.seen) == 1


def test_retry_after_in_seconds(receiver: Receiver) -> None:
    receiver.script["/hook"] = answer(429, {"Retry-After": "7"})
    result = post(receiver.url("/hook"), receiver.allowed)
    assert (result.http_status, result.retry_after) == (429, 7.0)
    assert verdict(result) is Verdict.RETRY


def test_retry_after_as_an_http_date(receiver: Receiver) -> None:
    when = datetime.now(UTC) + timedelta(seconds=10)
    receiver.script["/hook"] = answer(503, {"Retry-After": format_datetime(when, usegmt=True)})
    result = post(receiver.url("/hook"), receiver.allowed)
    assert result.http_status == 503
    assert result.retry_after is not None
    assert 8.5 <= result.retry_after <= 10.5  # the date has whole seconds


# -- No answer ----------------------------------------------------------------------------------


def test_a_refused_connection_is_status_0_with_an_error() -> None:
    port = _free_port()  # nothing listens there any more
    result = post(f"http://127.0.0.1:{port}/hook", (f"127.0.0.1:{port}",))
    assert (result.http_status, result.not_allowed) == (0, False)
    assert "refused" in result.error.lower()
    assert verdict(result) is Verdict.RETRY


@pytest.mark.parametrize("path", ["/hang", "/drip"])
def test_the_timeout_bounds_a_receiver_that_never_answers(receiver: Receiver, path: str) -> None:
    receiver.script.update({"/hang": hang, "/drip": drip_headers})
    started = time.monotonic()
    result = post(receiver.url(path), receiver.allowed, timeout=0.5)
    assert time.monotonic() - started < 3.0  # a bound, not a benchmark
    assert (result.http_status, result.error) == (0, "timed out after 0.5 s")
    assert [seen.body for seen in receiver.seen] == [BODY]  # the POST did reach it


def test_a_huge_body_is_not_read_to_its_end(receiver: Receiver) -> None:
    receiver.script["/hook"] = huge_body
    started = time.monotonic()
    result = post(receiver.url("/hook"), receiver.allowed, timeout=5.0)
    assert time.monotonic() - started < 2.5  # reading it all would wait for the 5 s deadline
    assert (result.http_status, result.error) == (200, "")


# -- Redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_re_posts_the_same_body_and_headers(receiver: Receiver, status: int) -> None:
    receiver.script["/old"] = redirect(status, "/new")
    receiver.script["/new"] = answer(200)
    result = post(receiver.url("/old"), receiver.allowed)
    assert (result.http_status, result.error) == (200, "")
    first, second = receiver.seen
    assert (second.method, second.path, second.body) == ("POST", "/new", BODY)
    assert {name: second.headers[name] for name in SIGNED} == SIGNED
    assert second.headers == first.headers


def test_up_to_max_redirects_are_followed(receiver: Receiver) -> None:
    for hop in range(MAX_REDIRECTS):
        receiver.script[f"/hop/{hop}"] = redirect(307, f"/hop/{hop + 1}")
    receiver.script[f"/hop/{MAX_REDIRECTS}"] = answer(200)
    assert post(receiver.url("/hop/0"), receiver.allowed).http_status == 200
    assert len(receiver.seen) == MAX_REDIRECTS + 1


def test_a_redirect_loop_stops_after_max_redirects(receiver: Receiver) -> None:
    receiver.script["/loop"] = redirect(307, "/loop")
    result = post(receiver.url("/loop"), receiver.allowed)
    assert result.http_status == 307
    assert "too many redirects" in result.error
    assert verdict(result) is Verdict.REJECTED
    assert len(receiver.seen) == MAX_REDIRECTS + 1  # the first POST and three redirects


def test_a_303_is_not_followed(receiver: Receiver) -> None:
    receiver.script["/hook"] = redirect(303, "/elsewhere")
    result = post(receiver.url("/hook"), receiver.allowed)
    assert (result.http_status, result.error) == (303, "unexpected redirect (HTTP 303)")
    assert [seen.path for seen in receiver.seen] == ["/hook"]


def test_a_redirect_to_the_metadata_address_is_refused(
    receiver: Receiver, connects: list[str]
) -> None:
    receiver.script["/hook"] = redirect(307, "http://169.254.169.254/latest/meta-data")
    result = post(receiver.url("/hook"), receiver.allowed)
    assert result.not_allowed
    assert "169.254.169.254" in result.error
    assert verdict(result) is Verdict.NOT_ALLOWED
    assert connects == ["127.0.0.1"]  # the receiver only; nothing was sent to the metadata


def test_a_redirect_to_another_loopback_port_is_refused(
    receiver: Receiver, other_receiver: Receiver
) -> None:
    other_receiver.script["/hook"] = answer(200)
    receiver.script["/hook"] = redirect(307, other_receiver.url("/hook"))
    result = post(receiver.url("/hook"), receiver.allowed)
    assert (result.not_allowed, result.http_status) == (True, 0)
    assert other_receiver.seen == []
    assert len(receiver.seen) == 1


def test_a_redirect_to_a_non_http_url_is_refused(receiver: Receiver) -> None:
    receiver.script["/hook"] = redirect(308, "file:///etc/passwd")
    assert post(receiver.url("/hook"), receiver.allowed).not_allowed


# -- Refused before anything is sent ------------------------------------------------------------


@pytest.mark.parametrize("allowed_hosts", [(), ("127.0.0.1:1",), ("example.com",)])
def test_loopback_is_refused_unless_allowlisted(
    receiver: Receiver, connects: list[str], allowed_hosts: tuple[str, ...]
) -> None:
    receiver.script["/hook"] = answer(200)
    result = post(receiver.url("/hook"), allowed_hosts)
    assert (result.not_allowed, result.http_status) == (True, 0)
    assert "127.0.0.1" in result.error
    assert (receiver.seen, connects) == ([], [])


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://user:pw@example.com/"])
def test_a_malformed_url_is_refused(url: str, connects: list[str]) -> None:
    result = post(url, ())
    assert result.not_allowed
    assert "callback_url" in result.error
    assert connects == []


# -- Retry-After parsing ------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past: no wait
        ("Wed, 01 May 2024 12:01:00 -0000", 60.0),
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("9" * 400, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
