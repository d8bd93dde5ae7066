from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from imageeditor.core.adapters.memory.event_bus import InProcessEventBus
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task

TASK = Task(id="t", user_id="u", spec=TaskSpec())


async def test_subscribers_get_transitions_published_from_other_threads() -> None:
    bus = InProcessEventBus()
    subscription = bus.subscribe("t")
    other = bus.subscribe("other")
    publisher = threading.Thread(
        target=lambda: [bus.publish(replace(TASK, version=v)) for v in (2, 3, 4)]
    )
    publisher.start()
    received = []
    async for task in subscription:
        received.append(task.version)
        if len(received) == 3:
            break
    publisher.join()
    assert received == [2, 3, 4]
    await asyncio.sleep(0)
    assert other._queue.empty()
    subscription.close()
    other.close()
    assert bus._subscribers == {}


async def test_a_closed_subscription_receives_nothing() -> None:
    bus = InProcessEventBus()
    subscription = bus.subscribe("t")
    subscription.close()
    bus.publish(TASK)
    await asyncio.sleep(0)
    assert subscription._queue.empty()
