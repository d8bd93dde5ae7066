"""The rate limiter contract: every test runs on the in-process GCRA and on the Redis script.

Both run on real clocks (the Redis script on the Redis server's), so waits are compared
with a tolerance and the sleeps stay below a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter
from imageeditor.core.adapters.redis.connection import redis_client
from imageeditor.core.adapters.redis.rate_limiter import KEY_PREFIX, RedisRateLimiter
from imageeditor.core.ports import RateLimiter

RUN = uuid.uuid4().hex[:8]
TOLERANCE = 0.1  # seconds: the time between two calls on a busy machine


def new_key() -> str:
    return f"test-{RUN}:{uuid.uuid4()}"


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "embedded":
        yield InProcessRateLimiter()
        return
    client = redis_client(request.getfixturevalue("redis_url"))
    yield RedisRateLimiter(client)
    _delete_run_keys(client)
    client.close()


def _delete_run_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}test-{RUN}:*", count=1000))
    if keys:
        client.delete(*keys)


def test_a_burst_is_allowed_then_the_rate_holds(limiter: RateLimiter) -> None:
    key = new_key()
    assert [limiter.acquire(key, rate=4.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire(key, rate=4.0, burst=3)
    assert wait == pytest.approx(0.25, abs=TOLERANCE)
    time.sleep(wait + 0.01)
    assert limiter.acquire(key, rate=4.0, burst=3) == 0.0
    assert limiter.acquire(key, rate=4.0, burst=3) > 0


def test_one_per_second_without_burst(limiter: RateLimiter) -> None:
    key = new_key()
    assert limiter.acquire(key, 1.0, 1) == 0.0
    assert limiter.acquire(key, 1.0, 1) == pytest.approx(1.0, abs=TOLERANCE)
    time.sleep(0.4)
    assert limiter.acquire(key, 1.0, 1) == pytest.approx(0.6, abs=TOLERANCE)


def test_refusals_cost_nothing(limiter: RateLimiter) -> None:
    key = new_key()
    limiter.acquire(key, 5.0, 1)
    waits = [limiter.acquire(key, 5.0, 1) for _ in range(10)]
    assert all(0 < wait <= 0.2 for wait in waits)
    time.sleep(0.21)
    assert limiter.acquire(key, 5.0, 1) == 0.0


def test_acquire_each_takes_a_token_per_key_in_turn(limiter: RateLimiter) -> None:
    mine, other = new_key(), new_key()
    waits = limiter.acquire_each([mine, other, mine, mine, other], rate=1.0, burst=2)

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(1.0, abs=TOLERANCE)  # mine's third: refused, costs nothing
    assert waits[4] == 0.0
    assert limiter.acquire(mine, 1.0, 2) == pytest.approx(1.0, abs=TOLERANCE)
    assert limiter.acquire_each([], 1.0, 2) == []


def test_keys_are_independent(limiter: RateLimiter) -> None:
    first, second = new_key(), new_key()
    assert limiter.acquire(first, 1.0, 1) == 0.0
    assert limiter.acquire(first, 1.0, 1) > 0
    assert limiter.acquire(second, 1.0, 1) == 0.0


def test_a_rate_of_zero_means_unlimited(limiter: RateLimiter) -> None:
    key = new_key()
    assert all(limiter.acquire(key, 0.0, 1) == 0.0 for _ in range(100))


def test_concurrent_callers_get_exactly_the_burst(limiter: RateLimiter) -> None:
    key = new_key()
    allowed: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(10):
            wait = limiter.acquire(key, rate=0.01, burst=12)
            with lock:
                allowed.extend([wait] if wait == 0.0 else [])

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 12


# -- Redis only ---------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_key_expires_when_it_would_mean_nothing(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        key = new_key()
        limiter = RedisRateLimiter(client)
        for _ in range(3):
            limiter.acquire(key, rate=2.0, burst=5)
        # TAT is 3 intervals (1.5 s) ahead: after that, no key is the same as this one.
        left = client.pttl(KEY_PREFIX + key)
        assert 1000 < left <= 1500
        limiter.acquire(key, rate=2.0, burst=5)
        assert client.pttl(KEY_PREFIX + key) > left  # an allowed request pushes it on
    finally:
        _delete_run_keys(client)
        client.close()


def test_the_limiter_fails_open_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisRateLimiter(redis_client("redis://127.0.0.1:1/0"))
    assert [limiter.acquire("u", 1.0, 1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert sum("rate limiter unavailable" in r.getMessage() for r in caplog.records) == 1


def test_a_request_that_costs_many_tokens_passes_once_and_is_paid_for_after(
    limiter: RateLimiter,
) -> None:
    key = new_key()
    # 10/s, burst 3: a batch of 20 passes while a token is free, then others wait ~2 s.
    assert limiter.acquire(key, rate=10.0, burst=3, cost=20) == 0.0
    wait = limiter.acquire(key, rate=10.0, burst=3)
    assert wait == pytest.approx(1.8, abs=TOLERANCE)  # 20 tokens' time, less the burst's 0.2
    assert limiter.acquire(key, rate=10.0, burst=3, cost=20) == pytest.approx(wait, abs=TOLERANCE)


def test_a_costly_request_is_refused_when_no_token_is_free(limiter: RateLimiter) -> None:
    key = new_key()
    for _ in range(3):
        assert limiter.acquire(key, rate=2.0, burst=3) == 0.0
    assert limiter.acquire(key, rate=2.0, burst=3, cost=100) == pytest.approx(0.5, abs=TOLERANCE)
