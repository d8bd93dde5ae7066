"""fetch_image against a real HTTP server on 127.0.0.1, and resolve_address's refusals."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imageeditor.core.errors import ImageEditorError, InvalidArgument, Unavailable
from imageeditor.workers import pinned_http
from imageeditor.workers.fetch import MAX_REDIRECTS, fetch_image, resolve_address

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # 10 KB; its content does not matter


class Handler(BaseHTTPRequestHandler):
    """Each path is one behaviour of a server a URL may point at."""

    protocol_version = "HTTP/1.1"
    seen_hosts: list[str] = []

    def do_GET(self) -> None:
        Handler.seen_hosts.append(self.headers.get("Host", ""))
        path = self.path
        if path == "/image":
            self.reply(200, BODY)
        elif path == "/image-unsized":  # no Content-Length: the cap must hold while streaming
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif path.startswith("/redirect/"):  # /redirect/<n>: n more hops, then /image
            hops = int(path.rsplit("/", 1)[1])
            self.redirect(f"/redirect/{hops - 1}" if hops > 1 else "/image")
        elif path == "/to-metadata":
            self.redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self.redirect("file:///etc/passwd")
        elif path == "/missing":
            self.reply(404, b"not here")
        elif path == "/broken":
            self.reply(503, b"try later")
        elif path == "/short":  # promises more than it sends
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:100])
            self.close_connection = True
        elif path == "/drip":  # a byte every 50 ms: never idle long enough for a socket timeout
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
            self.close_connection = True
        else:
            self.reply(500, b"unknown test path")

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def fetch(port: int, path: str, *, host: str = "127.0.0.1", **options: object) -> bytes:
    settings: dict[str, object] = {
        "max_bytes": 1_000_000,
        "timeout": 5.0,
        "allowed_hosts": (f"127.0.0.1:{port}",),
    }
    settings.update(options)
    return fetch_image(f"http://{host}:{port}{path}", **settings)  # type: ignore[arg-type]


def failure(port: int, path: str, **options: object) -> ImageEditorError:
    with pytest.raises(ImageEditorError) as caught:
        fetch(port, path, **options)
    return caught.value


def test_an_allowlisted_address_is_fetched(port: int) -> None:
    assert fetch(port, "/image") == BODY
    assert fetch(port, "/image-unsized") == BODY


def test_the_host_header_carries_the_name_not_the_address(port: int) -> None:
    Handler.seen_hosts.clear()
    assert fetch(port, "/image", host="localhost", allowed_hosts=(f"localhost:{port}",)) == BODY
    assert Handler.seen_hosts == [f"localhost:{port}"]


def test_a_cidr_allowlist_entry_works(port: int) -> None:
    assert fetch(port, "/image", allowed_hosts=("127.0.0.0/8",)) == BODY


@pytest.mark.parametrize("allowed_hosts", [(), ("127.0.0.1:1",), ("example.com",)])
def test_loopback_is_refused_unless_allowlisted(port: int, allowed_hosts: tuple[str, ...]) -> None:
    error = failure(port, "/image", allowed_hosts=allowed_hosts)
    assert isinstance(error, InvalidArgument)
    assert error.reason == "URL_NOT_ALLOWED"


@pytest.mark.parametrize("spelling", ["2130706433", "127.1", "0x7f.1", "0177.0.0.1", "localhost"])
def test_odd_spellings_of_loopback_are_resolved_and_refused(spelling: str, port: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_address(spelling, 80, ())
    assert caught.value.reason == "URL_NOT_ALLOWED"
    assert failure(port, "/image", host=spelling, allowed_hosts=()).reason == "URL_NOT_ALLOWED"


def test_resolve_address_returns_checked_addresses() -> None:
    assert [address[1][0] for address in resolve_address("127.1", 80, ("127.0.0.1",))] == [
        "127.0.0.1"
    ]


@pytest.mark.parametrize("max_bytes", [len(BODY) - 1, 100])
@pytest.mark.parametrize("path", ["/image", "/image-unsized"])
def test_the_size_cap(port: int, path: str, max_bytes: int) -> None:
    error = failure(port, path, max_bytes=max_bytes)
    assert (type(error), error.reason) == (InvalidArgument, "IMAGE_TOO_LARGE")
    assert fetch(port, path, max_bytes=len(BODY)) == BODY


def test_redirects_are_followed_up_to_the_limit(port: int) -> None:
    assert fetch(port, f"/redirect/{MAX_REDIRECTS}") == BODY
    error = failure(port, f"/redirect/{MAX_REDIRECTS + 1}")
    assert (type(error), error.reason) == (InvalidArgument, "FETCH_FAILED")


@pytest.mark.parametrize("path", ["/to-metadata", "/to-file"])
def test_a_redirect_to_a_refused_url_is_refused(port: int, path: str) -> None:
    error = failure(port, path)
    assert (type(error), error.reason) == (InvalidArgument, "URL_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("path", "error_type"),
    [("/missing", InvalidArgument), ("/broken", Unavailable), ("/short", Unavailable)],
)
def test_http_failures(port: int, path: str, error_type: type[ImageEditorError]) -> None:
    error = failure(port, path)
    assert (type(error), error.reason) == (error_type, "FETCH_FAILED")


def test_the_timeout_bounds_the_whole_fetch(port: int) -> None:
    started = time.monotonic()
    error = failure(port, "/drip", timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert (type(error), error.reason) == (Unavailable, "FETCH_FAILED")


def test_a_refused_connection_is_unavailable() -> None:
    # Port 9 (discard) has no listener here: the connection is refused.
    error = failure(9, "/image", allowed_hosts=("127.0.0.1",))
    assert (type(error), error.reason) == (Unavailable, "FETCH_FAILED")


def test_each_hop_resolves_its_host_exactly_once(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second lookup at connect time is what DNS rebinding exploits.
    lookups: list[object] = []
    real_getaddrinfo = socket.getaddrinfo

    def counting_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting_getaddrinfo)
    assert fetch(port, "/redirect/1", host="localhost", allowed_hosts=("localhost",)) == BODY
    assert lookups == ["localhost", "localhost"]


# -- HTTPS: certificate and SNI checked against the name, connection made to the address -------


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for "localhost"."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(cert)
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_is_refused(tls_port: tuple[int, str]) -> None:
    port, _ = tls_port
    with pytest.raises(InvalidArgument) as caught:
        fetch_image(
            f"https://localhost:{port}/image",
            max_bytes=10**6,
            timeout=5,
            allowed_hosts=("localhost",),
        )
    assert caught.value.reason == "FETCH_FAILED"


def test_https_verifies_the_name_while_connecting_to_the_checked_address(
    tls_port: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_port
    trusting = ssl.create_default_context(cafile=cert)
    monkeypatch.setattr(pinned_http, "_tls_context", lambda: trusting)
    options: dict[str, Any] = {"max_bytes": 10**6, "timeout": 5, "allowed_hosts": ("127.0.0.0/8",)}
    assert fetch_image(f"https://localhost:{port}/image", **options) == BODY
    # The certificate names localhost, not 127.0.0.1: verified against the URL's host.
    with pytest.raises(InvalidArgument) as caught:
        fetch_image(f"https://127.0.0.1:{port}/image", **options)
    assert caught.value.reason == "FETCH_FAILED"
