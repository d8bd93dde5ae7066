from __future__ import annotations

import pytest

from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock)
    assert [limiter.acquire("u", rate=2.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("u", rate=2.0, burst=3)
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("u", rate=2.0, burst=3) == 0.0


def test_one_per_second_without_burst() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock)
    assert limiter.acquire("batch:u", 1.0, 1) == 0.0
    assert limiter.acquire("batch:u", 1.0, 1) == pytest.approx(1.0)
    clock.now += 0.4
    assert limiter.acquire("batch:u", 1.0, 1) == pytest.approx(0.6)


def test_keys_are_independent_and_refusals_cost_nothing() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock)
    limiter.acquire("a", 1.0, 1)
    for _ in range(5):
        assert limiter.acquire("a", 1.0, 1) > 0
    assert limiter.acquire("b", 1.0, 1) == 0.0
    clock.now += 1.0
    assert limiter.acquire("a", 1.0, 1) == 0.0


def test_wait_tells_without_counting() -> None:
    limiter = InProcessRateLimiter(Clock())
    for _ in range(3):
        assert limiter.wait("a", 1.0, 1) == 0.0
    assert limiter.acquire("a", 1.0, 1) == 0.0
    assert limiter.wait("a", 1.0, 1) == pytest.approx(1.0)


def test_only_so_many_keys_are_remembered_the_least_recent_forgotten() -> None:
    limiter = InProcessRateLimiter(Clock(), max_keys=2)
    for key in ("a", "b"):
        limiter.acquire(key, 1.0, 1)
    assert limiter.acquire("a", 1.0, 1) > 0  # both remembered
    limiter.acquire("c", 1.0, 1)  # "a" was counted least recently: forgotten
    assert limiter.acquire("a", 1.0, 1) == 0.0
    assert limiter.acquire("c", 1.0, 1) > 0
