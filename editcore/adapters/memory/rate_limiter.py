"""The in-process rate limiter (embedded mode): GCRA, the algorithm the Redis script will use.

GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request:
a request is allowed when it is no earlier than TAT minus the burst tolerance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class InProcessRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tat: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float, burst: int, cost: int = 1) -> float:
        """0.0 when allowed (and `cost` counted); else how many seconds until it would be."""
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        tolerance = interval * max(burst - 1, 0)
        with self._lock:
            now = self._clock()
            tat = max(self._tat.get(key, now), now)
            allow_at = tat - tolerance
            if now < allow_at:
                return allow_at - now
            self._tat[key] = tat + interval * max(cost, 1)
            return 0.0
