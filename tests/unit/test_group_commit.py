"""imageeditor.server.group_commit: concurrent calls share commits, and each caller gets its own
answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from imageeditor.server.group_commit import GroupCommit


class Committer:
    """Records each commit's items; holds the first commit until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        if not self.groups:
            self.release.wait(5)
        self.groups.append(list(items))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_a_lone_call_is_committed_at_once() -> None:
    committer = Committer()
    committer.release.set()
    group = GroupCommit(committer)

    assert await asyncio.wait_for(group(2), 5) == 20
    assert committer.groups == [[2]]


async def test_calls_made_during_a_commit_share_the_next_one() -> None:
    committer = Committer()
    group = GroupCommit(committer, concurrency=1)
    first = asyncio.create_task(group(0))
    await asyncio.sleep(0.05)  # the first commit is under way, and held
    later = [asyncio.create_task(group(i)) for i in (2, 4, 6)]
    await asyncio.sleep(0.05)
    committer.release.set()

    assert await first == 0
    assert [await call for call in later] == [20, 40, 60]
    assert committer.groups == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_error() -> None:
    committer = Committer()
    committer.release.set()
    group = GroupCommit(committer, concurrency=1)

    outcomes = await asyncio.gather(group(1), group(2), return_exceptions=True)

    assert [str(o) if isinstance(o, ValueError) else o for o in outcomes] == ["odd 1", 20]


async def test_a_failed_commit_fails_each_of_its_callers_and_not_the_next() -> None:
    calls = 0

    def commit(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the store is away")
        return list(items)

    group = GroupCommit(commit, concurrency=1)
    failed = await asyncio.gather(group(1), group(2), return_exceptions=True)

    assert all(isinstance(outcome, ConnectionError) for outcome in failed)
    assert await group(3) == 3


async def test_groups_are_bounded_in_size() -> None:
    committer = Committer()
    group = GroupCommit(committer, max_group=2, concurrency=1)
    first = asyncio.create_task(group(0))
    await asyncio.sleep(0.05)
    later = [asyncio.create_task(group(i)) for i in (2, 4, 6, 8, 10)]
    await asyncio.sleep(0.05)
    committer.release.set()
    await asyncio.gather(first, *later)

    assert committer.groups == [[0], [2, 4], [6, 8], [10]]


async def test_a_caller_that_goes_away_does_not_stop_its_commit() -> None:
    committer = Committer()
    group = GroupCommit(committer, concurrency=1)
    first = asyncio.create_task(group(0))
    await asyncio.sleep(0.05)
    leaving = asyncio.create_task(group(2))
    await asyncio.sleep(0.01)
    leaving.cancel()
    committer.release.set()

    assert await first == 0
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await asyncio.sleep(0.1)
    assert committer.groups == [[0], [2]]
