"""Per-user rate limits on Redis (production mode): GCRA in one Lua script.

The same algorithm as imageeditor.core.adapters.memory.rate_limiter (see there): one number per key,
the theoretical arrival time (TAT), kept in microseconds of the Redis server's clock, so every
server process shares one clock and one count. The script reads, decides and writes atomically;
a refused request changes nothing; a key expires when its TAT has passed, because by then it
would mean the same as no key at all. Needs Redis >= 5 (scripts that call TIME replicate
effects).

When Redis cannot be reached the limiter fails open: requests are allowed, without asking
Redis again for the next 5 s, and the failure is logged (at most every 30 s). Refusing every
request because the limiter's storage is away would turn a Redis outage into a full outage;
an unlimited window is the lesser harm.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis

from imageeditor.core.adapters.redis.connection import OutageGuard

logger = logging.getLogger(__name__)

KEY_PREFIX = "imageeditor:ratelimit:"
MICROSECONDS = 1_000_000

# KEYS[1] the key's TAT; ARGV[1] emission interval, ARGV[2] burst tolerance (both in µs),
# ARGV[3] the tokens to take. Returns 0 when allowed, else the µs to wait. string.format
# keeps all 16 digits of the TAT (tostring would round it to 14).
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local allow_at = tat - tolerance
if now < allow_at then
  return allow_at - now
end
local new_tat = tat + interval * tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%d', new_tat),
  'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0
"""


class RedisRateLimiter:
    """RateLimiter on Redis, shared by every server process; fails open when Redis is away."""

    def __init__(self, client: redis.Redis) -> None:
        # register_script runs EVALSHA and loads the script on NOSCRIPT (a restarted or
        # failed-over Redis has an empty script cache; a pipeline checks for it first).
        self._client = client
        self._script = client.register_script(_GCRA)
        self._outage = OutageGuard(logger)

    def acquire(self, key: str, rate: float, burst: int, cost: int = 1) -> float:
        """Take `cost` tokens for `key` (see imageeditor.core.ports.RateLimiter); 0.0 when allowed,
        else the seconds to wait."""
        return self._take([(key, max(cost, 1))], rate, burst)[0]

    def acquire_each(self, keys: Sequence[str], rate: float, burst: int) -> list[float]:
        """One token for each key in turn, in two round trips whatever the number of keys (a
        pipeline of the script, which Redis runs one after the other as separate calls would;
        redis-py asks SCRIPT EXISTS before a pipeline that runs scripts, hence a lone key
        goes alone)."""
        return self._take([(key, 1) for key in keys], rate, burst)

    def _take(self, takes: Sequence[tuple[str, int]], rate: float, burst: int) -> list[float]:
        if rate <= 0 or self._outage.down or not takes:
            return [0.0] * len(takes)
        interval = round(MICROSECONDS / rate)
        tolerance = interval * max(burst - 1, 0)
        try:
            if len(takes) == 1:
                key, cost = takes[0]
                waits = [self._script(keys=[KEY_PREFIX + key], args=[interval, tolerance, cost])]
            else:
                pipeline = self._client.pipeline(transaction=False)
                for key, cost in takes:
                    args = [interval, tolerance, cost]
                    self._script(keys=[KEY_PREFIX + key], args=args, client=pipeline)
                waits = pipeline.execute()
        except redis.RedisError as exc:
            self._outage.failed("rate limiter unavailable; allowing requests", exc)
            return [0.0] * len(takes)
        return [int(wait) / MICROSECONDS for wait in waits]
