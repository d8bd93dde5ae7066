"""validate_http_url (the form of a URL), refuse_internal_target (what its spelling alone
gives away) and check_address (where it may lead)."""

from __future__ import annotations

import pytest

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.urls import check_address, refuse_internal_target, validate_http_url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.jpg",
        "https://example.com:8443/path/to/image.png?size=large#top",
        "HTTPS://Example.COM/x",
        "http://[2001:db8::1]:8080/x",
        "http://127.0.0.1:9/photo.jpg",  # well formed; where it leads is the fetcher's call
    ],
)
def test_valid_urls(url: str) -> None:
    validate_http_url(url, "image_url")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com/a.jpg",
        "ftp://example.com/a.jpg",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "http:///a.jpg",
        "http://user:secret@example.com/a.jpg",
        "http://user@example.com/a.jpg",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://exa mple.com/",
        "http://example.com/\nHost: evil",
        "http://example.com/" + "a" * 2048,
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_http_url(url, "callback_url")
    assert caught.value.reason == "INVALID_URL"
    assert list(caught.value.field_violations) == ["callback_url"]


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("127.0.0.1", False),  # loopback
        ("10.0.0.1", False),  # private
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # link-local: cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("0.0.0.0", False),  # unspecified
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),  # unique local
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_check_address_without_allowlist(ip: str, allowed: bool) -> None:
    assert check_address(ip, 80, "example.com", ()) is allowed


@pytest.mark.parametrize(
    ("ip", "port", "host", "allowed_hosts", "allowed"),
    [
        ("127.0.0.1", 8080, "127.0.0.1", ("127.0.0.1:8080",), True),
        ("127.0.0.1", 8081, "127.0.0.1", ("127.0.0.1:8080",), False),
        ("127.0.0.1", 8080, "localhost", ("localhost:8080",), True),
        ("127.0.0.1", 8080, "localhost", ("localhost",), True),
        ("127.0.0.1", 8080, "LocalHost", ("localhost",), True),
        ("127.0.0.1", 8080, "localhost", ("127.0.0.1",), True),  # an IP entry: any port
        ("10.1.2.3", 443, "images.internal", ("10.0.0.0/8",), True),
        ("10.1.2.3", 443, "images.internal", ("192.168.0.0/16",), False),
        ("::ffff:10.1.2.3", 443, "images.internal", ("10.0.0.0/8",), True),
        ("::1", 9000, "localhost", ("[::1]:9000",), True),
        ("::1", 9001, "localhost", ("[::1]:9000",), False),
        ("::1", 9000, "localhost", ("::1",), True),
        ("169.254.169.254", 80, "metadata", ("other.internal",), False),
        ("127.0.0.1", 80, "localhost", ("localhost:http",), False),  # a bad port matches nothing
    ],
)
def test_check_address_with_allowlist(
    ip: str, port: int, host: str, allowed_hosts: tuple[str, ...], allowed: bool
) -> None:
    assert check_address(ip, port, host, allowed_hosts) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/hook",  # inet_aton spellings
        "http://0x7f.0.0.1/hook",
        "http://2130706433/hook",
        "http://0177.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://localhost/hook",
        "http://api.localhost./hook",
    ],
)
def test_internal_targets_are_refused_by_their_spelling(url: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        refuse_internal_target(url, "callback_url", ())
    assert refused.value.reason == "URL_NOT_ALLOWED"
    assert list(refused.value.field_violations) == ["callback_url"]


@pytest.mark.parametrize(
    ("url", "allowed_hosts"),
    [
        ("https://hooks.example.com/x", ()),  # a name: resolved and checked when used
        ("http://93.184.216.34/x", ()),  # a public address
        ("http://127.0.0.1:8080/x", ("127.0.0.1:8080",)),  # allowlisted
        ("http://localhost:8080/x", ("localhost:8080",)),
        ("http://0xexample.com/x", ()),  # looks hex-ish, but it is a name
    ],
)
def test_public_names_and_allowlisted_targets_pass(
    url: str, allowed_hosts: tuple[str, ...]
) -> None:
    refuse_internal_target(url, "callback_url", allowed_hosts)
