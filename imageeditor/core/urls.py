"""Rules for the URLs we are given (image_url, callback_url) and the addresses they reach.

The functions are pure: `validate_http_url` checks a URL's form at submit time,
`refuse_internal_target` refuses at submit time what its spelling alone shows to be internal
(an IP literal in any spelling, `localhost`), and `check_address` decides whether an address
that a host name resolved to may be contacted.
Whoever opens the connection (the image fetcher, the callback sender) resolves the name once,
asks `check_address` about every address, and connects to a checked one, so a second DNS
answer cannot swap in an internal address (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from imageeditor.core.errors import InvalidArgument, clip

MAX_URL_LENGTH = 2048
# Callback URLs are also stored sealed (imageeditor.core.sealing) in columns of 2,048 characters.
MAX_CALLBACK_URL_LENGTH = 1500
HTTP_SCHEMES = frozenset({"http", "https"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; Python calls the prefix global.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def validate_http_url(url: str, field: str, max_length: int = MAX_URL_LENGTH) -> None:
    """Raise InvalidArgument (a violation on `field`) unless `url` is an absolute http(s) URL
    with a host, no credentials and at most `max_length` characters. No network access."""
    problem = _url_problem(url, max_length)
    if problem:
        raise InvalidArgument(
            f"{field} is not a usable URL: {problem}",
            field_violations={field: problem},
            reason="INVALID_URL",
        )


# What inet_aton would take as an IPv4 address: 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1.
_IPV4_SPELLING = re.compile(r"^[0-9a-fx.]+$")


def refuse_internal_target(url: str, field: str, allowed_hosts: tuple[str, ...]) -> None:
    """Raise InvalidArgument (reason URL_NOT_ALLOWED, a violation on `field`) when the URL's
    host is, by its spelling alone, an address `check_address` refuses: an IP literal in any
    spelling a resolver accepts, or `localhost`. Names are resolved (and every address checked)
    when the URL is used; this only refuses early what is certain. `url` must be valid."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    address = _literal_address(host)
    if address is None and (host == "localhost" or host.endswith(".localhost")):
        address = ipaddress.IPv4Address("127.0.0.1")
    if address is not None and not check_address(address, port, host, allowed_hosts):
        problem = f"{clip(host, 80)} is not a public address"
        raise InvalidArgument(
            f"{field} is not allowed: {problem}",
            field_violations={field: problem},
            reason="URL_NOT_ALLOWED",
        )


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4_SPELLING.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _url_problem(url: str, max_length: int) -> str:
    if len(url) > max_length:
        return f"at most {max_length} characters"
    # urlsplit silently drops some whitespace and control characters; refuse them instead.
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"cannot be parsed ({clip(str(exc), 80)})"
    if parts.scheme.lower() not in HTTP_SCHEMES:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if port == 0:
        return "port 0 is not a valid port"
    return ""


def check_address(
    ip: str | IPAddress, port: int, host: str, allowed_hosts: tuple[str, ...]
) -> bool:
    """True if `ip` (which `host` resolved to) may be contacted on `port`.

    A public unicast address always may. Loopback, private, link-local, CGNAT (100.64/10),
    multicast, reserved and unspecified addresses — also when wrapped in IPv6 (IPv4-mapped,
    NAT64, 6to4, Teredo) — only if an `allowed_hosts` entry matches: an IP or CIDR
    ("10.0.0.0/8", "::1") matches the address on any port; "name" matches the host name on
    any port; "name:port", "1.2.3.4:port" and "[::1]:port" match that port only.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if all(_is_public(a) for a in _embedded_addresses(address)):
        return True
    return any(_entry_matches(entry, address, port, host) for entry in allowed_hosts)


def _embedded_addresses(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address that IPv6 tunnelling schemes would deliver to."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket; the IPv6 form itself is "reserved".
        return [address.ipv4_mapped]
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour:
            found.append(address.sixtofour)
        if address.teredo:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_public(address: IPAddress) -> bool:
    # is_global alone misses multicast (224.0.0.1 counts as global), so check each property.
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _entry_matches(entry: str, address: IPAddress, port: int, host: str) -> bool:
    entry = entry.strip().lower()
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    else:
        return any(a in network for a in _embedded_addresses(address))
    entry_host, entry_port = _split_host_port(entry)
    if entry_port is not None and entry_port != port:
        return False
    if entry_host == host.lower().rstrip("."):
        return True
    try:
        return ipaddress.ip_address(entry_host) in _embedded_addresses(address)
    except ValueError:
        return False


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """("host", port or None) from "host", "host:port", "[v6]" or "[v6]:port"."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, _port(port)
    return entry, None


def _port(text: str) -> int:
    # An unparseable port can match nothing; -1 says so without raising on a bad setting.
    return int(text) if text.isdigit() else -1


def redact_url(url: str) -> str:
    """`url` as a log line may show it: scheme, host, port and path, without the userinfo,
    query string and fragment, which may carry credentials or tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"
