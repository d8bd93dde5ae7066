"""The redis+sentinel:// URL: which Sentinels to ask for which primary. Pure parsing, shared by
the Redis clients (imageeditor.core.adapters.redis.connection) and the Celery broker's configuration
(imageeditor.core.adapters.celery.config), which must follow the same primary.

    redis+sentinel://host1:26379,[::1]:26380/service_name[/db][?password=..&sentinel_password=..]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import parse_qsl, unquote

from imageeditor.core.errors import InvalidArgument

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
_SENTINEL_QUERY_KEYS = {"password", "sentinel_password"}


@dataclass(frozen=True)
class SentinelTarget:
    """What a redis+sentinel:// URL names: the Sentinels to ask and the primary to reach."""

    hosts: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Split a redis+sentinel:// URL; InvalidArgument (reason BAD_SETTING) says what is wrong."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() != SENTINEL_SCHEME:
        bad_redis_url(url, f"expected a {SENTINEL_SCHEME}:// URL")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, host_list = netloc.rpartition("@")
    if not at:
        host_list, userinfo = netloc, ""
    hosts = tuple(_parse_host(url, item) for item in host_list.split(","))
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        bad_redis_url(url, "the Sentinel service name is missing (…/service_name[/db])")
    if len(segments) > 2:
        bad_redis_url(url, "expected …/service_name[/db] after the hosts")
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            bad_redis_url(url, f"the database must be a number, got {segments[1]!r}")
        db = int(segments[1])
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _SENTINEL_QUERY_KEYS
    if unknown:
        bad_redis_url(
            url, f"unknown option(s) {sorted(unknown)}; allowed: {sorted(_SENTINEL_QUERY_KEYS)}"
        )
    password = options.get("password") or unquote(userinfo.partition(":")[2]) or None
    return SentinelTarget(
        hosts=hosts,
        service_name=unquote(segments[0]),
        db=db,
        password=password,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _parse_host(url: str, item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # IPv6 literal: [::1] or [::1]:26379
        host, bracket, port_text = item[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            bad_redis_url(url, f"bad IPv6 Sentinel address {item!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        bad_redis_url(url, "a Sentinel host is missing")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        bad_redis_url(url, f"bad port {port_text!r} for Sentinel host {host!r}")
    return host, int(port_text)


def bad_redis_url(url: str, problem: str) -> NoReturn:
    # Never echo a password back into a log or an error message.
    shown = url.split("?", 1)[0]
    if "@" in shown:
        scheme, _, rest = shown.partition("://")
        shown = f"{scheme}://***@{rest.rpartition('@')[2]}"
    raise InvalidArgument(
        f"bad Redis URL {shown!r}: {problem}",
        field_violations={"redis_url": problem},
        reason="BAD_SETTING",
    )
