"""Per-caller limits the edge keeps in this process: open WatchTask streams per user, and
failed authentications per peer.

Both protect the server itself (memory for streams, store lookups for keys), so they are
counted where that cost falls, in each server process: behind a load balancer a user may hold
`max_watch_streams_per_user` streams on each server.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter
from imageeditor.core.errors import ResourceExhausted
from imageeditor.core.metrics import REFUSALS, WATCH_STREAMS

STREAM_RETRY_SECONDS = 5.0


class StreamQuota:
    """How many WatchTask streams each user holds open here, at most `limit` at once."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """One stream of `user_id` for the block's duration; RESOURCE_EXHAUSTED (reason
        TOO_MANY_STREAMS) when the user already holds `limit`."""
        with self._lock:
            if self._open[user_id] >= self._limit:
                REFUSALS.labels("watch_streams").inc()
                raise ResourceExhausted(
                    f"at most {self._limit} WatchTask streams open at once per caller;"
                    " close one, or watch a batch's tasks one after another",
                    retry_after=STREAM_RETRY_SECONDS,
                    reason="TOO_MANY_STREAMS",
                    metadata={"limit": str(self._limit)},
                )
            self._open[user_id] += 1
        WATCH_STREAMS.inc()
        try:
            yield
        finally:
            WATCH_STREAMS.dec()
            with self._lock:
                self._open[user_id] -= 1
                if not self._open[user_id]:
                    del self._open[user_id]


class FailureThrottle:
    """Failed authentications per peer, with GCRA: `burst` failures at once, then `rate` a
    second. A peer over it is refused before its key is even looked up."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        peers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate, self._burst = rate, burst
        self._failures = InProcessRateLimiter(clock, max_keys=peers)

    def check(self, peer: str) -> None:
        """RESOURCE_EXHAUSTED (reason AUTH_THROTTLED) while `peer` may fail no more."""
        wait = self._failures.wait(peer, self._rate, self._burst)
        if wait > 0:
            REFUSALS.labels("auth_failures").inc()
            raise ResourceExhausted(
                "too many failed authentications from this address; try again later",
                retry_after=wait,
                reason="AUTH_THROTTLED",
            )

    def failed(self, peer: str) -> None:
        """Count one failure of `peer`."""
        self._failures.acquire(peer, self._rate, self._burst)
