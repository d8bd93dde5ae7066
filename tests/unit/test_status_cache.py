from __future__ import annotations

from dataclasses import replace

from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.ports import STATUS_TTL_SECONDS
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskState


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def task(version: int = 1, state: TaskState = TaskState.QUEUED) -> Task:
    return Task(id="t", user_id="u", spec=TaskSpec(), version=version, state=state)


def test_entries_expire_by_the_ttl_of_their_state() -> None:
    assert STATUS_TTL_SECONDS[TaskState.RUNNING] == 300
    assert STATUS_TTL_SECONDS[TaskState.SUCCEEDED] == 3600
    assert STATUS_TTL_SECONDS[TaskState.FAILED] == 1800
    clock = Clock()
    cache = InProcessStatusCache(clock=clock)
    cache.put(task())
    clock.now = 299
    assert cache.get("t") is not None
    clock.now = 301
    assert cache.get("t") is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = InProcessStatusCache()
    cache.put(task(3, TaskState.SUCCEEDED))
    cache.put(task(2, TaskState.RUNNING))
    cached = cache.get("t")
    assert cached is not None and cached.version == 3


def test_the_cache_is_bounded_and_invalidation_removes() -> None:
    cache = InProcessStatusCache(max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(replace(task(), id=name))
    assert cache.get("a") is None and cache.get("c") is not None
    cache.invalidate("c")
    assert cache.get("c") is None
