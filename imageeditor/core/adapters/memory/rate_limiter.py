"""The in-process rate limiter (embedded mode): GCRA, the algorithm the Redis script will use.

GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request:
a request is allowed when it is no earlier than TAT minus the burst tolerance.

The edge also uses it for what it limits in each process (failed authentications per peer,
log lines per peer), where keys come from callers: so it remembers at most `max_keys` keys,
forgetting the least recently counted first (a forgotten key starts afresh).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence


class InProcessRateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float, burst: int, cost: int = 1) -> float:
        """0.0 when allowed (and `cost` counted); else how many seconds until it would be."""
        return self._take(key, rate, burst, max(cost, 1))

    def acquire_each(self, keys: Sequence[str], rate: float, burst: int) -> list[float]:
        return [self._take(key, rate, burst, 1) for key in keys]

    def wait(self, key: str, rate: float, burst: int) -> float:
        """How many seconds until `key` would be allowed (0.0: now); counts nothing."""
        return self._take(key, rate, burst, 0)

    def _take(self, key: str, rate: float, burst: int, cost: int) -> float:
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
            if cost:
                self._tat[key] = tat + interval * cost
                self._tat.move_to_end(key)
                if len(self._tat) > self._max_keys:
                    self._tat.popitem(last=False)
            return 0.0
