"""Group commit: concurrent calls of one kind share one call of their batch form.

A SubmitTask costs a transaction, a rate-limit check and an announcement, each a round trip,
whatever the number of tasks in it: a store that commits a row per transaction tops out near
700 commits/s here (issue 11). So the edge gathers the submits that arrive while a commit is
under way and gives them to the next commit together: a lone call goes at once (no timer, no
added latency when the server is quiet), and under load each commit carries the calls that
queued behind the previous one. Every caller is answered after the commit that holds its
task, with its own outcome.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

MAX_GROUP = 256  # calls per commit: bounds one transaction's size and latency
# One commit at a time: the next one takes everything that arrived meanwhile. Measured with
# bench/service.py (submit case, production): 1,350-1,460 calls/s at 1; 850-1,070 at 2 and
# 870 at 4, where smaller groups and threads contending for the GIL cost more than the
# overlapped round trips gain.
CONCURRENT_COMMITS = 1


class GroupCommit(Generic[Item, Outcome]):
    """`await group(item)` runs `commit([...items])` in a thread, for as many items as have
    gathered (up to `max_group`), at most `concurrency` commits at a time. `commit` returns
    an outcome per item, in order: an outcome that is an exception is raised to its own
    caller; an exception `commit` raises goes to every caller of that commit."""

    def __init__(
        self,
        commit: Callable[[Sequence[Item]], Sequence[Outcome | BaseException]],
        *,
        max_group: int = MAX_GROUP,
        concurrency: int = CONCURRENT_COMMITS,
    ) -> None:
        self._commit = commit
        self._max_group = max_group
        self._concurrency = concurrency
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._running = 0
        self._drains: set[asyncio.Task[None]] = set()

    async def __call__(self, item: Item) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._waiting.append((item, future))
        if self._running < self._concurrency:
            self._running += 1
            drain = loop.create_task(self._drain())
            self._drains.add(drain)  # held, so the loop cannot lose it
            drain.add_done_callback(self._drains.discard)
        # A caller that goes away (deadline, cancel) does not take its item out: the item may
        # be in a commit already, and is committed like the others either way.
        return await future

    async def _drain(self) -> None:
        """Commit what has gathered, group after group, until nothing waits."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                items = [item for item, _ in group]
                # The thread gets a clean context: each item carries what it needs of its
                # caller's (imageeditor.core.service.NewTask.context).
                call = contextvars.Context().run
                try:
                    outcomes = await loop.run_in_executor(None, call, self._commit, items)
                except Exception as exc:
                    for _, future in group:
                        _settle(future, exc)
                    continue
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    _settle(future, outcome)
        finally:
            self._running -= 1


def _settle(future: asyncio.Future[Outcome], outcome: Outcome | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
