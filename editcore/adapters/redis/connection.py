"""Redis clients from one URL: redis://, rediss:// or redis+sentinel:// for a Sentinel primary.

    redis+sentinel://host1:26379,[::1]:26380/service_name[/db][?password=..&sentinel_password=..]

Every client gets short socket timeouts, TCP keepalive and a few retries with jittered
exponential backoff, so a Redis outage costs an RPC a bounded delay, never a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff

from editcore.errors import InvalidArgument
from editcore.metrics import REDIS_ERRORS

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0
HEALTH_CHECK_SECONDS = 30.0
RETRIES = 3
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
        _bad(url, f"expected a {SENTINEL_SCHEME}:// URL")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, host_list = netloc.rpartition("@")
    if not at:
        host_list, userinfo = netloc, ""
    hosts = tuple(_parse_host(url, item) for item in host_list.split(","))
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        _bad(url, "the Sentinel service name is missing (…/service_name[/db])")
    if len(segments) > 2:
        _bad(url, "expected …/service_name[/db] after the hosts")
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            _bad(url, f"the database must be a number, got {segments[1]!r}")
        db = int(segments[1])
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _SENTINEL_QUERY_KEYS
    if unknown:
        _bad(url, f"unknown option(s) {sorted(unknown)}; allowed: {sorted(_SENTINEL_QUERY_KEYS)}")
    password = options.get("password") or unquote(userinfo.partition(":")[2]) or None
    return SentinelTarget(
        hosts=hosts,
        service_name=unquote(segments[0]),
        db=db,
        password=password,
        sentinel_password=options.get("sentinel_password") or None,
    )


def redis_client(url: str) -> redis.Redis:
    """A synchronous, thread-safe client (its pool also resets itself after a fork)."""
    options = _options(health_check_interval=HEALTH_CHECK_SECONDS)
    options["retry"] = redis.retry.Retry(_backoff(), RETRIES)
    if _is_sentinel(url):
        target = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(
            list(target.hosts),
            sentinel_kwargs=_sentinel_options(target),
            **options,
        )
        master: redis.Redis = sentinel.master_for(
            target.service_name, db=target.db, password=target.password
        )
        return master
    _check_scheme(url)
    return redis.Redis.from_url(url, **options)


def async_redis_client(
    url: str,
    *,
    health_check_interval: float = HEALTH_CHECK_SECONDS,
    retries: int = RETRIES,
    client_name: str | None = None,
) -> redis.asyncio.Redis:
    """An asyncio client, for use on one event loop (a client_name in the URL's query wins
    over the one given here)."""
    options = _options(health_check_interval=health_check_interval)
    options["retry"] = redis.asyncio.retry.Retry(_backoff(), retries)
    if client_name:
        options["client_name"] = client_name
    if _is_sentinel(url):
        target = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(
            list(target.hosts),
            sentinel_kwargs=_sentinel_options(target),
            **options,
        )
        async_master: redis.asyncio.Redis = sentinel.master_for(
            target.service_name, db=target.db, password=target.password
        )
        return async_master
    _check_scheme(url)
    return redis.asyncio.Redis.from_url(url, **options)


class OutageGuard:
    """Remembers a Redis failure for `cooldown` seconds, so that a request path that can do
    without Redis (cache, limiter, events) skips it meanwhile instead of paying timeouts and
    retries on every request; and logs the failure at most once per `log_interval`."""

    def __init__(
        self,
        logger: logging.Logger,
        cooldown: float = 5.0,
        log_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._cooldown = cooldown
        self._log_interval = log_interval
        self._clock = clock
        self._down_until = float("-inf")
        self._logged_at = float("-inf")

    @property
    def down(self) -> bool:
        """Whether Redis failed less than `cooldown` seconds ago."""
        return self._clock() < self._down_until

    def failed(self, message: str, error: BaseException) -> None:
        """Record a failure: `message` says what the caller does without Redis."""
        REDIS_ERRORS.labels(self._logger.name.rpartition(".")[2]).inc()
        now = self._clock()
        self._down_until = now + self._cooldown
        if now - self._logged_at >= self._log_interval:
            self._logged_at = now
            self._logger.warning("%s: %r", message, error)


def _options(*, health_check_interval: float) -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": READ_TIMEOUT_SECONDS,
        "socket_keepalive": True,
        "health_check_interval": health_check_interval,
    }


def _backoff() -> ExponentialWithJitterBackoff:
    # Waits of up to 0.1, 0.2, 0.4 s (full jitter): enough for a blip or a failover; an outage
    # is the OutageGuard's business.
    return ExponentialWithJitterBackoff(cap=0.5, base=0.05)


def _sentinel_options(target: SentinelTarget) -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": READ_TIMEOUT_SECONDS,
        "password": target.sentinel_password,
    }


def _is_sentinel(url: str) -> bool:
    return url.lower().startswith(f"{SENTINEL_SCHEME}://")


def _check_scheme(url: str) -> None:
    if not url.lower().startswith(("redis://", "rediss://")):
        _bad(url, f"expected redis://, rediss:// or {SENTINEL_SCHEME}://")


def _parse_host(url: str, item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # IPv6 literal: [::1] or [::1]:26379
        host, bracket, port_text = item[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            _bad(url, f"bad IPv6 Sentinel address {item!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        _bad(url, "a Sentinel host is missing")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        _bad(url, f"bad port {port_text!r} for Sentinel host {host!r}")
    return host, int(port_text)


def _bad(url: str, problem: str) -> NoReturn:
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
