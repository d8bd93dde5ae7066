"""Redis clients from one URL: redis://, rediss:// or redis+sentinel:// for a Sentinel primary
(imageeditor.core.sentinel_url).

Every client gets short socket timeouts, TCP keepalive and a few retries with jittered
exponential backoff, so a Redis outage costs an RPC a bounded delay, never a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff

from imageeditor.core.metrics import REDIS_ERRORS
from imageeditor.core.sentinel_url import (
    SENTINEL_SCHEME,
    SentinelTarget,
    bad_redis_url,
    parse_sentinel_url,
)

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0
HEALTH_CHECK_SECONDS = 30.0
RETRIES = 3


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
        bad_redis_url(url, f"expected redis://, rediss:// or {SENTINEL_SCHEME}://")
