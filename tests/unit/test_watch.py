"""TaskWatcher's handover on a scripted bus: no gap, no repeat, and a RESYNC re-reads the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from imageeditor.core.ports import RESYNC, Resync
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task, TaskState
from imageeditor.server.watch import TaskWatcher

TASK = Task(id="t", user_id="alice", spec=TaskSpec())


def version(number: int, state: TaskState = TaskState.RUNNING) -> Task:
    return replace(TASK, version=number, state=state)


class EventLog:
    """The store's side: the current task and its versions."""

    def __init__(self, *tasks: Task) -> None:
        self.versions = list(tasks)
        self.reads = 0

    def get_task(self, task_id: str, user_id: str | None = None) -> Task | None:
        return self.versions[-1]

    def list_events(self, task_id: str, after_version: int) -> list[Task]:
        self.reads += 1
        return [task for task in self.versions if task.version > after_version]


class ScriptedBus:
    """A subscription that yields the script's events and runs its store changes, one step
    per turn of the loop, then waits forever."""

    def __init__(self, *script: Task | Resync | Callable[[], None]) -> None:
        self._script = script
        self.closed = False

    def subscribe(self, task_id: str) -> ScriptedBus:
        return self

    async def __aiter__(self) -> AsyncIterator[Task | Resync]:
        for step in self._script:
            await asyncio.sleep(0)
            if isinstance(step, Task | Resync):
                yield step
            else:
                step()
        await asyncio.Event().wait()

    def close(self) -> None:
        self.closed = True


async def watch(log: EventLog, bus: ScriptedBus, after_version: int = 0) -> list[int]:
    watcher = TaskWatcher(log, bus)  # type: ignore[arg-type]
    stream = watcher.watch("alice", "t", after_version)
    return await asyncio.wait_for(_versions(stream), 2)


async def _versions(stream: AsyncIterator[Task]) -> list[int]:
    return [task.version async for task in stream]


async def test_a_resync_finds_a_task_that_finished_without_an_event() -> None:
    log = EventLog(version(1), version(2))
    # The store moves on while the bus is away; it says only that it may have missed something.
    bus = ScriptedBus(lambda: log.versions.append(version(3, TaskState.SUCCEEDED)), RESYNC)
    assert await watch(log, bus) == [2, 3]
    assert bus.closed


async def test_a_resync_with_nothing_new_changes_nothing() -> None:
    log = EventLog(version(1), version(2))
    bus = ScriptedBus(RESYNC, version(2), RESYNC, version(3), version(4, TaskState.FAILED))
    assert await watch(log, bus) == [2, 3, 4]
    assert log.reads == 2


async def test_repeats_are_skipped_and_gaps_filled_from_the_log() -> None:
    log = EventLog(version(1), version(2))
    done = version(4, TaskState.SUCCEEDED)
    bus = ScriptedBus(version(2), lambda: log.versions.extend([version(3), done]), version(2), done)
    assert await watch(log, bus, after_version=1) == [2, 3, 4]
    assert log.reads == 2  # the backlog, then the gap


async def test_a_watch_past_every_version_ends_when_the_task_ends() -> None:
    log = EventLog(version(1), version(2))
    done = version(3, TaskState.SUCCEEDED)
    bus = ScriptedBus(lambda: log.versions.append(done), done)
    assert await watch(log, bus, after_version=2**62) == []
    assert bus.closed


async def test_a_watch_past_every_version_ends_on_a_resync_after_the_end() -> None:
    log = EventLog(version(1), version(2))
    bus = ScriptedBus(lambda: log.versions.append(version(3, TaskState.FAILED)), RESYNC)
    assert await watch(log, bus, after_version=2**62) == []
